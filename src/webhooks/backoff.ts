/**
 * The retry schedule: after failed attempt n (1-based) the next waits base·2^(n-1), capped at
 * `maxMs`, then jittered to between half and all of it (so many hooks failing at once do not
 * retry in step). A delivery whose next attempt would start after `giveUpAt` is failed instead.
 */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

export function retryDelayMs(
  attempts: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 40);
  const full = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(full / 2 + (full / 2) * Math.min(Math.max(random(), 0), 1));
}

/** The next attempt's time, or undefined when the delivery should be failed now. */
export function nextAttemptAt(
  nowMs: number,
  attempts: number,
  giveUpAtMs: number,
  policy: RetryPolicy,
  random?: () => number,
): number | undefined {
  const at = nowMs + retryDelayMs(attempts, policy, random);
  return at > giveUpAtMs ? undefined : at;
}
