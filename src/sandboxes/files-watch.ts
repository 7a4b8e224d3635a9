import { type FSWatcher, watch } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import type { SandboxProvider } from '../providers/provider.js';

/** Directories not watched: dependency trees and VCS data change in bulk and are not "the code". */
export const UNWATCHED_DIRS = new Set(['node_modules', '.git', '__pycache__', '.venv']);
const MAX_DIRS = 4096;
const MAX_PATHS = 200;
/** Paths looked at (lstat) per flush to find new directories; past it, one bounded rescan. */
const MAX_PROBES = 256;
/**
 * Events taken per burst. Past it the sandbox's watches are closed until the burst is flushed
 * (the change is reported as truncated, and the tree is watched afresh then): a sandbox renaming
 * in a loop would otherwise cost previewd one callback per rename, without end.
 */
const MAX_EVENTS_PER_BURST = 5_000;

interface Watched {
  root: string;
  watchers: Map<string, FSWatcher>;
  pending: Set<string>;
  truncated: boolean;
  /** Host paths to look at once things are quiet (a new directory gets its watch then). */
  toProbe: Set<string>;
  /** More changed than MAX_PROBES: walk the tree once instead. */
  rescan: boolean;
  /** Events since the last flush. */
  events: number;
  /** The directories watched when a flood closed the watches: any other one found is new. */
  known?: Set<string>;
  timer?: NodeJS.Timeout;
  firstAt?: number;
  lastAt?: number;
}

/**
 * Watches running sandboxes' workspaces on the host (the bind mount is the same directory, so
 * inotify sees what any process inside does) and publishes debounced `files.changed` events.
 * One inotify watch per directory, node_modules/.git excepted; new directories are added as they
 * appear. Links are never followed.
 */
export class FilesWatch {
  private readonly watched = new Map<string, Watched>();

  constructor(
    private readonly deps: { provider: SandboxProvider; bus: EventBus; log: Logger; debounceMs: number },
  ) {}

  async watch(sandboxId: string): Promise<void> {
    if (this.watched.has(sandboxId)) return;
    const root = this.deps.provider.files(sandboxId).root;
    const w: Watched = {
      root,
      watchers: new Map(),
      pending: new Set(),
      truncated: false,
      toProbe: new Set(),
      rescan: false,
      events: 0,
    };
    this.watched.set(sandboxId, w);
    await this.addTree(sandboxId, w, root);
  }

  unwatch(sandboxId: string): void {
    const w = this.watched.get(sandboxId);
    if (!w) return;
    this.watched.delete(sandboxId);
    if (w.timer) clearTimeout(w.timer);
    for (const watcher of w.watchers.values()) watcher.close();
  }

  stop(): void {
    for (const id of [...this.watched.keys()]) this.unwatch(id);
  }

  /**
   * Watches `dir` and the directories below it; with `announce`, everything found counts as
   * changed; with `rescan`, directories already watched are walked into too.
   */
  private async addTree(
    sandboxId: string,
    w: Watched,
    dir: string,
    announce = false,
    rescan = false,
  ): Promise<void> {
    if (this.watched.get(sandboxId) !== w || w.watchers.size >= MAX_DIRS) return;
    if (w.watchers.has(dir)) {
      if (!rescan) return;
    } else {
      let watcher: FSWatcher;
      try {
        watcher = watch(dir, { persistent: false }, (_event, name) => {
          if (name) this.changed(sandboxId, w, join(dir, name.toString()));
        });
      } catch {
        return;
      }
      watcher.on('error', () => {
        watcher.close();
        w.watchers.delete(dir);
      });
      w.watchers.set(dir, watcher);
    }
    const names = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of names) {
      if (UNWATCHED_DIRS.has(entry.name)) continue;
      const child = join(dir, entry.name);
      // A directory made while a flood had the watches closed is new: it and what it holds count
      // as changed, like one a watch saw appear.
      const appeared = rescan && entry.isDirectory() && w.known !== undefined && !w.known.has(child);
      // Files made in a new directory before its watch existed are reported from the walk.
      if (announce || appeared) this.changed(sandboxId, w, child, false);
      if (entry.isDirectory()) await this.addTree(sandboxId, w, child, announce || appeared, rescan);
    }
  }

  /**
   * Called for every inotify event, so it does no I/O: a sandbox renaming files in a loop makes
   * hundreds of thousands of events a second, and one lstat each would fill libuv's thread pool
   * and stall every file operation of previewd. Paths are looked at once, when things are quiet.
   */
  private changed(sandboxId: string, w: Watched, hostPath: string, probe = true): void {
    if (this.watched.get(sandboxId) !== w) return;
    if (++w.events > MAX_EVENTS_PER_BURST) {
      // A flood: stop listening until the flush watches the tree afresh.
      w.known ??= new Set(w.watchers.keys());
      for (const watcher of w.watchers.values()) watcher.close();
      w.watchers.clear();
      w.truncated = true;
      w.rescan = true;
      this.schedule(sandboxId, w);
      return;
    }
    const rel = relative(w.root, hostPath).split(sep).join('/');
    if (rel.split('/').some((seg) => UNWATCHED_DIRS.has(seg))) return;
    if (w.pending.size < MAX_PATHS) w.pending.add(rel);
    else if (!w.pending.has(rel)) w.truncated = true;
    // A new directory gets its own watch (and its content counts as changed), at the flush.
    if (probe && !w.rescan) {
      if (w.toProbe.size < MAX_PROBES) w.toProbe.add(hostPath);
      else if (!w.toProbe.has(hostPath)) w.rescan = true;
    }
    this.schedule(sandboxId, w);
  }

  private probe(sandboxId: string, w: Watched, hostPath: string): void {
    void lstat(hostPath)
      .then((st) => {
        if (st.isDirectory() && !w.watchers.has(hostPath)) return this.addTree(sandboxId, w, hostPath, true);
        return undefined;
      })
      .catch(() => {
        const gone = w.watchers.get(hostPath);
        if (gone) {
          gone.close();
          w.watchers.delete(hostPath);
        }
      });
  }

  private schedule(sandboxId: string, w: Watched): void {
    // Debounce: publish once things are quiet, or after 4× the delay under a steady stream. One
    // timer per burst, re-armed when it fires early, not one per event.
    const now = Date.now();
    w.firstAt ??= now;
    w.lastAt = now;
    if (!w.timer) this.arm(sandboxId, w, this.deps.debounceMs);
  }

  private arm(sandboxId: string, w: Watched, wait: number): void {
    w.timer = setTimeout(
      () => {
        w.timer = undefined;
        const now = Date.now();
        const quietAt = (w.lastAt ?? now) + this.deps.debounceMs;
        const deadline = (w.firstAt ?? now) + 4 * this.deps.debounceMs;
        if (now < quietAt && now < deadline) this.arm(sandboxId, w, Math.min(quietAt, deadline) - now);
        else void this.flush(sandboxId, w);
      },
      Math.max(0, wait),
    );
    w.timer.unref();
  }

  private async flush(sandboxId: string, w: Watched): Promise<void> {
    const paths = [...w.pending].sort();
    const truncated = w.truncated;
    const toProbe = [...w.toProbe];
    const rescan = w.rescan;
    w.events = 0;
    w.pending.clear();
    w.truncated = false;
    w.toProbe.clear();
    w.rescan = false;
    w.firstAt = undefined;
    w.lastAt = undefined;
    w.timer = undefined;
    // New directories get their watches: a bounded rescan after a flood, else each path once.
    if (rescan) {
      void this.addTree(sandboxId, w, w.root, false, true).finally(() => {
        if (w.watchers.size > 0) w.known = undefined;
      });
    } else for (const hostPath of toProbe) this.probe(sandboxId, w, hostPath);
    if (paths.length === 0) return;
    await this.deps.bus
      .publish({ type: 'files.changed', sandboxId, data: { paths, truncated } })
      .catch((err) => this.deps.log.warn({ err, sandboxId }, 'could not publish files.changed'));
  }
}
