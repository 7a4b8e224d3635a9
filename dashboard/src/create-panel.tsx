import { useEffect, useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import { GitCreateForm } from './git-create-form';
import type { CreateSandboxRequest, Sandbox, Template } from './types';
import { type CollectedFiles, filesFromDrop, filesFromList, filesFromZip } from './upload-files';
import { createFromFiles, type UploadProgress } from './upload-send';

/**
 * Create a sandbox from a template, from a Git repository, or from a dropped / chosen folder or
 * zip (every file, text and binary, in one zip body of the create: all there before the app starts).
 */
export function CreatePanel({ onCreated }: { onCreated: (s: Sandbox) => void }) {
  const [templates, setTemplates] = useState<Template[] | null>(null);
  const [templatesError, setTemplatesError] = useState<unknown>(null);
  const [template, setTemplate] = useState('vite-react');
  const [isPrivate, setPrivate] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [upload, setUpload] = useState<CollectedFiles | null>(null);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [dragging, setDragging] = useState(false);

  useEffect(() => {
    api
      .templates()
      .then((t) => setTemplates(t.templates))
      .catch(setTemplatesError);
  }, []);

  const visibility = isPrivate ? 'private' : 'public';

  const createFromTemplate = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // The names come from GET /v1/templates: the server's own list.
      onCreated(
        await api.createSandbox({ template: template as CreateSandboxRequest['template'], visibility }),
      );
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const take = async (read: () => Promise<CollectedFiles>) => {
    setError(null);
    try {
      const files = await read();
      if (!Object.keys(files.files).length && !Object.keys(files.binary).length)
        throw new Error('No files found in what was dropped (node_modules, .git and the like are left out).');
      setUpload(files);
    } catch (err) {
      setError(err);
    }
  };

  const createFromUpload = async () => {
    if (!upload) return;
    setBusy(true);
    setError(null);
    setProgress({ ratio: 0, label: 'Starting the upload…' });
    try {
      onCreated(await createFromFiles(upload, { visibility }, setProgress));
      setUpload(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };

  const textCount = upload ? Object.keys(upload.files).length : 0;
  const binaryCount = upload ? Object.keys(upload.binary).length : 0;

  return (
    <section class="card create" aria-labelledby="create-title">
      <h2 id="create-title">New sandbox</h2>
      <div class="create-grid">
        <form onSubmit={createFromTemplate} class="create-template">
          <label for="template">Template</label>
          <div class="row">
            <select
              id="template"
              value={template}
              onChange={(e) => setTemplate((e.target as HTMLSelectElement).value)}
              disabled={!templates}
            >
              {(templates ?? [{ name: 'vite-react', dependencies: 'npm', warm: false }]).map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name}
                  {t.dependencies === 'npm' && !t.warm ? ' (first start installs dependencies)' : ''}
                </option>
              ))}
            </select>
            <button type="submit" class="primary" disabled={busy || !templates}>
              Create
            </button>
          </div>
          <label class="check">
            <input type="checkbox" checked={isPrivate} onChange={() => setPrivate(!isPrivate)} /> Private
            preview (needs a token)
          </label>
          {templatesError ? <ErrorNote error={templatesError} /> : null}
        </form>
        <GitCreateForm visibility={visibility} onCreated={onCreated} />
        <section
          aria-label="Create from a folder or a zip"
          class={`dropzone${dragging ? ' dragging' : ''}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault();
            setDragging(false);
            if (e.dataTransfer) {
              const data = e.dataTransfer;
              void take(() => filesFromDrop(data));
            }
          }}
        >
          <p>
            Drop a project folder or a <code>.zip</code> here, or choose one:
          </p>
          <div class="row">
            <label class="button">
              Folder…
              <input
                type="file"
                class="visually-hidden"
                // @ts-expect-error: webkitdirectory is not in the DOM typings. A boolean: Preact sets
                // it as the DOM property, where "" would mean false (no folder picker).
                webkitdirectory={true}
                multiple
                onChange={(e) => {
                  const files = (e.target as HTMLInputElement).files;
                  if (files) void take(() => filesFromList(files));
                }}
              />
            </label>
            <label class="button">
              Zip…
              <input
                type="file"
                accept=".zip,application/zip"
                class="visually-hidden"
                onChange={(e) => {
                  const file = (e.target as HTMLInputElement).files?.[0];
                  if (file) void take(() => filesFromZip(file));
                }}
              />
            </label>
          </div>
          {upload ? (
            <div class="upload-summary">
              <p>
                {textCount + binaryCount} file(s) ready ({textCount} text, {binaryCount} binary).
              </p>
              <div class="row">
                <button type="button" class="primary" disabled={busy} onClick={createFromUpload}>
                  Create from upload
                </button>
                <button type="button" class="ghost" disabled={busy} onClick={() => setUpload(null)}>
                  Cancel
                </button>
              </div>
            </div>
          ) : null}
          {progress !== null ? (
            <div class="upload-progress">
              <progress max={1} value={progress.ratio} aria-label="Upload progress">
                {Math.round(progress.ratio * 100)}%
              </progress>
              <p aria-live="polite">{progress.label}</p>
            </div>
          ) : null}
        </section>
      </div>
      {error ? <ErrorNote error={error} /> : null}
    </section>
  );
}
