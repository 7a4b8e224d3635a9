import type { UploadIncomplete } from './upload-send';

const shown = 20;

/** Which binary files of an upload did not land, grouped by the API's message and hint. */
export function UploadFailureNote({ error }: { error: UploadIncomplete }) {
  return (
    <div class="error-note upload-failures" role="alert">
      <strong>{error.message}</strong>
      {error.failures.map((f) => (
        <div key={`${f.message}:${f.paths[0]}`} class="upload-failure">
          <p>
            {f.message}
            {f.hint ? ` — ${f.hint}` : ''}
          </p>
          <ul>
            {f.paths.slice(0, shown).map((p) => (
              <li key={p}>
                <code>{p}</code>
              </li>
            ))}
            {f.paths.length > shown ? <li>and {f.paths.length - shown} more</li> : null}
          </ul>
        </div>
      ))}
      <p>
        The sandbox is in the list; upload these files again with <code>previewd files put</code> or{' '}
        <code>POST …/files/batch</code>.
      </p>
    </div>
  );
}
