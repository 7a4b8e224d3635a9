import { useEffect, useState } from 'preact/hooks';

/** History routing: `/` is the list, `/sandboxes/<id>` a sandbox, `/snapshots` the snapshots. */
export type Route = { name: 'list' } | { name: 'sandbox'; id: string } | { name: 'snapshots' };

export function parseRoute(pathname: string): Route {
  if (/^\/snapshots\/?$/.test(pathname)) return { name: 'snapshots' };
  const match = /^\/sandboxes\/([0-9a-z]+)\/?$/.exec(pathname);
  return match ? { name: 'sandbox', id: match[1]! } : { name: 'list' };
}

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  if (path === location.pathname) return;
  history.pushState(null, '', path);
  for (const fn of listeners) fn();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname));
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return route;
}

/** A click on an in-app link: plain clicks route in the page, modified clicks open as usual. */
export function linkClick(path: string) {
  return (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(path);
  };
}
