import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api-client';
import { CodeEditor } from './code-editor';
import { ErrorNote } from './error-note';
import type { FileEntry } from './types';

const hiddenDirs = new Set(['node_modules', '.git', '__pycache__', '.venv']);
const byTypeThenName = (a: FileEntry, b: FileEntry) =>
  a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'directory' ? -1 : 1;

interface OpenFile {
  path: string;
  /** What is on disk (last load or save). */
  disk: string;
  draft: string;
  saving: boolean;
  savedAt?: string;
  error?: unknown;
  /** The file changed on disk while it had unsaved edits. */
  conflict?: boolean;
}

/**
 * The workspace: a lazily expanded tree (`files/list` per directory) and an editor that saves
 * through `PUT …/files?path=`. `changed` carries the paths of `files.changed` events.
 */
export function FilePanel({ id, changed }: { id: string; changed: { paths: string[]; seq: number } }) {
  const [dirs, setDirs] = useState<Map<string, FileEntry[]>>(new Map());
  const [expanded, setExpanded] = useState<Set<string>>(new Set(['']));
  const [treeError, setTreeError] = useState<unknown>(null);
  const [file, setFile] = useState<OpenFile | null>(null);
  const fileRef = useRef(file);
  fileRef.current = file;

  const loadDir = useCallback(
    async (path: string) => {
      try {
        const { entries } = await api.listFiles(id, path, false);
        setDirs((prev) => new Map(prev).set(path, entries.sort(byTypeThenName)));
        setTreeError(null);
      } catch (err) {
        setTreeError(err);
      }
    },
    [id],
  );

  useEffect(() => {
    void loadDir('');
  }, [loadDir]);

  const open = async (path: string) => {
    if (fileRef.current?.draft !== fileRef.current?.disk && !confirm('Discard unsaved changes?')) return;
    try {
      const text = await api.readFile(id, path);
      setFile({ path, disk: text, draft: text, saving: false });
    } catch (err) {
      setFile({ path, disk: '', draft: '', saving: false, error: err });
    }
  };

  const save = useCallback(async () => {
    const current = fileRef.current;
    if (!current || current.saving) return;
    const text = current.draft;
    setFile({ ...current, saving: true, error: undefined });
    try {
      await api.writeFile(id, current.path, text);
      setFile((f) =>
        f && f.path === current.path
          ? { ...f, disk: text, saving: false, conflict: false, savedAt: new Date().toLocaleTimeString() }
          : f,
      );
    } catch (err) {
      setFile((f) => (f && f.path === current.path ? { ...f, saving: false, error: err } : f));
    }
  }, [id]);

  // Files changed on disk: refresh the directories shown, and the open file when it has no edits.
  useEffect(() => {
    if (!changed.seq) return;
    const parents = new Set(
      changed.paths.map((p) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '')),
    );
    for (const dir of parents) if (expanded.has(dir)) void loadDir(dir);
    const current = fileRef.current;
    if (current && changed.paths.includes(current.path)) {
      api
        .readFile(id, current.path)
        .then((text) => {
          setFile((f) => {
            if (!f || f.path !== current.path || text === f.disk) return f;
            if (f.draft !== f.disk) return { ...f, conflict: true };
            return { ...f, disk: text, draft: text };
          });
        })
        .catch(() => undefined);
    }
  }, [changed.seq]);

  const toggleDir = (path: string) => {
    setExpanded((prev) => {
      const next = new Set(prev);
      if (next.has(path)) next.delete(path);
      else {
        next.add(path);
        if (!dirs.has(path)) void loadDir(path);
      }
      return next;
    });
  };

  const renderDir = (path: string, depth: number) => {
    const entries = dirs.get(path);
    if (!entries) return <li class="muted small">Loading…</li>;
    if (!entries.length) return <li class="muted small">(empty)</li>;
    return entries.map((e) => {
      const pad = { paddingLeft: `${depth * 0.9 + 0.3}rem` };
      if (e.type === 'directory') {
        const isOpen = expanded.has(e.path);
        return (
          <li key={e.path}>
            <button
              type="button"
              class="tree-item dir"
              style={pad}
              aria-expanded={isOpen}
              onClick={() => toggleDir(e.path)}
              title={hiddenDirs.has(e.name) ? 'Installed dependencies: large' : e.path}
            >
              {isOpen ? '▾' : '▸'} {e.name}/
            </button>
            {isOpen ? <ul>{renderDir(e.path, depth + 1)}</ul> : null}
          </li>
        );
      }
      return (
        <li key={e.path}>
          <button
            type="button"
            class="tree-item file"
            style={pad}
            data-path={e.path}
            aria-current={file?.path === e.path ? 'true' : undefined}
            onClick={() => open(e.path)}
          >
            {e.name}
          </button>
        </li>
      );
    });
  };

  const dirty = file ? file.draft !== file.disk : false;

  return (
    <section class="card files" aria-labelledby="files-title">
      <div class="section-head">
        <h2 id="files-title">Files</h2>
        <span class="spacer" />
        <button type="button" class="ghost" onClick={() => void loadDir('')}>
          Refresh
        </button>
      </div>
      <div class="files-grid">
        <nav class="tree" aria-label="Workspace files">
          {treeError ? <ErrorNote error={treeError} onRetry={() => void loadDir('')} /> : null}
          <ul>{renderDir('', 0)}</ul>
        </nav>
        <div class="editor">
          {file ? (
            <>
              <div class="editor-bar">
                <span class="mono" data-open-file={file.path}>
                  {file.path}
                  {dirty ? ' •' : ''}
                </span>
                <span class="spacer" />
                <span
                  class="muted small"
                  data-save-status={file.saving ? 'saving' : dirty ? 'dirty' : 'saved'}
                >
                  {file.saving
                    ? 'Saving…'
                    : dirty
                      ? 'Unsaved (Ctrl/Cmd-S)'
                      : file.savedAt
                        ? `Saved at ${file.savedAt}`
                        : ''}
                </span>
                <button type="button" class="primary" disabled={!dirty || file.saving} onClick={save}>
                  Save
                </button>
              </div>
              {file.conflict ? (
                <div class="error-note" role="alert">
                  <strong>This file changed on disk.</strong> Saving overwrites it;{' '}
                  <button type="button" onClick={() => open(file.path)}>
                    reload it
                  </button>{' '}
                  to drop your edits.
                </div>
              ) : null}
              {file.error ? <ErrorNote error={file.error} /> : null}
              <CodeEditor
                path={file.path}
                content={file.disk}
                onChange={(text) => setFile((f) => (f ? { ...f, draft: text } : f))}
                onSave={save}
              />
            </>
          ) : (
            <p class="empty">
              Pick a file on the left to edit it. Saving writes it to the workspace at once.
            </p>
          )}
        </div>
      </div>
    </section>
  );
}
