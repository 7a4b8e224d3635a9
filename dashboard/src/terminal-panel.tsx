import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { paths } from './api-client';

type Status = 'connecting' | 'open' | 'exited' | 'error';

const shell = 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi';

function themeFor(dark: boolean) {
  return dark
    ? { background: '#15181d', foreground: '#d7dae0', cursor: '#d7dae0', selectionBackground: '#3a4150' }
    : { background: '#fbfbfc', foreground: '#1d2126', cursor: '#1d2126', selectionBackground: '#c9d6ea' };
}

/**
 * A shell in the sandbox: xterm.js on the exec WebSocket (`tty: {cols, rows}`, resized with the
 * panel). The session cookie authenticates the socket. A new session starts with "Reconnect".
 */
export function TerminalPanel({ id, running }: { id: string; running: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>('connecting');
  const [detail, setDetail] = useState('');
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    if (!running || !host.current) return;
    const dark = matchMedia('(prefers-color-scheme: dark)');
    const term = new Terminal({
      convertEol: false,
      cursorBlink: true,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
      fontSize: 13,
      theme: themeFor(dark.matches),
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current);
    fit.fit();
    const onScheme = () => {
      term.options.theme = themeFor(dark.matches);
    };
    dark.addEventListener('change', onScheme);

    setStatus('connecting');
    setDetail('');
    const ws = new WebSocket(paths.execSocket(id));
    const send = (msg: unknown) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    };
    ws.onopen = () => {
      send({ type: 'start', cmd: shell, tty: { cols: term.cols, rows: term.rows } });
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data)) as {
        type: string;
        data?: string;
        exitCode?: number;
        error?: { message: string; hint?: string };
      };
      if (msg.type === 'started') {
        setStatus('open');
        term.focus();
      } else if ((msg.type === 'stdout' || msg.type === 'stderr') && msg.data) term.write(msg.data);
      else if (msg.type === 'exit') {
        setStatus('exited');
        setDetail(`exit code ${msg.exitCode}`);
      } else if (msg.type === 'error') {
        setStatus('error');
        setDetail([msg.error?.message, msg.error?.hint].filter(Boolean).join(' — '));
      }
    };
    ws.onclose = (e) => {
      setStatus((s) => (s === 'open' || s === 'connecting' ? (e.code === 1000 ? 'exited' : 'error') : s));
      if (e.code !== 1000 && e.code !== 1005) setDetail((d) => d || `connection closed (${e.code})`);
    };
    const input = term.onData((data) => send({ type: 'stdin', data }));
    const resize = term.onResize(({ cols, rows }) => send({ type: 'resize', cols, rows }));
    const observer = new ResizeObserver(() => {
      try {
        fit.fit();
      } catch {
        // hidden panel: nothing to fit
      }
    });
    observer.observe(host.current);
    return () => {
      observer.disconnect();
      input.dispose();
      resize.dispose();
      dark.removeEventListener('change', onScheme);
      // This session is over: its late events must not touch the next one's status.
      ws.onclose = null;
      ws.onmessage = null;
      ws.close();
      term.dispose();
    };
  }, [id, running, generation]);

  return (
    <section class="card terminal" aria-labelledby="terminal-title">
      <div class="section-head">
        <h2 id="terminal-title">Terminal</h2>
        <span class="muted small" data-terminal-status={running ? status : 'not-running'}>
          {running ? status : 'not running'}
          {detail ? ` · ${detail}` : ''}
        </span>
        <span class="spacer" />
        {running ? (
          <button type="button" onClick={() => setGeneration((g) => g + 1)}>
            {status === 'open' ? 'New session' : 'Reconnect'}
          </button>
        ) : null}
      </div>
      {running ? (
        <div class="term-host" ref={host} />
      ) : (
        <p class="empty">The terminal needs a running sandbox. Start it with the Start button above.</p>
      )}
    </section>
  );
}
