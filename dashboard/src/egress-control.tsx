import { useEffect, useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import type { EgressPolicy, Sandbox } from './types';

const entries = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((e) => e.trim())
    .filter(Boolean);

/**
 * The sandbox's egress policy: allow (the internet), deny (nothing but DNS) or list (only the
 * allowed CIDRs, hosts and *.domain wildcards), each minus the denied ones. Saved at once, in force
 * for the sandbox's next connections.
 */
export function EgressControl({ sandbox, onChanged }: { sandbox: Sandbox; onChanged: (s: Sandbox) => void }) {
  const policy = sandbox.network;
  const [mode, setMode] = useState<EgressPolicy['egress']>(policy.egress);
  const [allow, setAllow] = useState(policy.allow.join(', '));
  const [deny, setDeny] = useState(policy.deny.join(', '));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const key = `${policy.egress}|${policy.allow.join(',')}|${policy.deny.join(',')}`;
  useEffect(() => {
    setMode(policy.egress);
    setAllow(policy.allow.join(', '));
    setDeny(policy.deny.join(', '));
  }, [key]);

  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      onChanged(
        await api.setNetwork(sandbox.id, { egress: mode, allow: entries(allow), deny: entries(deny) }),
      );
      setSaved(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="egress" aria-label="Egress policy" onSubmit={save}>
      <label>
        Egress
        <select
          name="egress"
          value={mode}
          onChange={(e) => setMode((e.currentTarget as HTMLSelectElement).value as EgressPolicy['egress'])}
        >
          <option value="allow">allow: the internet</option>
          <option value="list">list: only these</option>
          <option value="deny">deny: nothing but DNS</option>
        </select>
      </label>
      {mode === 'list' ? (
        <label>
          Allow
          <input
            name="allow"
            class="mono"
            placeholder="*.npmjs.org, 203.0.113.0/24"
            value={allow}
            onInput={(e) => setAllow((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
      ) : null}
      {mode !== 'deny' ? (
        <label>
          Deny
          <input
            name="deny"
            class="mono"
            placeholder="ads.example.com"
            value={deny}
            onInput={(e) => setDeny((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
      ) : null}
      <button type="submit" disabled={busy}>
        {busy ? 'Saving…' : 'Save egress'}
      </button>
      {saved ? <span class="notice">Saved: in force for new connections.</span> : null}
      {error ? <ErrorNote error={error} /> : null}
    </form>
  );
}
