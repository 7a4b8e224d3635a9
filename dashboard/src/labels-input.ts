/** Largest label key and value the page sends (the server has its own bounds too). */
const MAX_KEY = 63;
const MAX_VALUE = 256;
const MAX_LABELS = 32;

/**
 * `team=web, purpose=demo` (commas or spaces between pairs) as a labels object. Throws an Error
 * that names the bad pair, so the form can show it before sending.
 */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const pairs = text
    .split(/[\s,]+/)
    .map((p) => p.trim())
    .filter(Boolean);
  if (pairs.length > MAX_LABELS) throw new Error(`At most ${MAX_LABELS} labels.`);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    const value = eq > 0 ? pair.slice(eq + 1) : '';
    if (!key || key.length > MAX_KEY || value.length > MAX_VALUE)
      throw new Error(`"${pair}" is not a label: write key=value (key up to ${MAX_KEY} characters).`);
    labels[key] = value;
  }
  return labels;
}
