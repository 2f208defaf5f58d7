/** When to try a failed request again: exponential backoff with jitter, or the server's `Retry-After`. */

export interface BackoffSettings {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Upper bound of the exponential delay. */
  maxMs: number;
  /** Upper bound for a server-sent `Retry-After`. */
  maxRetryAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = {
  baseMs: 1000,
  maxMs: 60_000,
  maxRetryAfterMs: 10 * 60_000,
};

/**
 * Parses a `Retry-After` header value: delta-seconds (`"120"`) or an HTTP date. Returns milliseconds from `now`
 * (0 for a date in the past), or undefined when the header is absent or malformed.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value == null) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (/^[+-]?\d/.test(text)) return undefined; // negative or fractional seconds: not valid delta-seconds
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Delay before retry number `attempt` (0 for the first retry). Without `retryAfterMs`: "equal jitter" —
 * half of min(max, base·2^attempt) plus a random share of the other half, so clients that failed together
 * spread out. With `retryAfterMs`: the server's value (capped at `maxRetryAfterMs`), never earlier, plus up to
 * one second of jitter.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
  settings: BackoffSettings = DEFAULT_BACKOFF,
): number {
  if (retryAfterMs !== undefined) {
    return Math.min(retryAfterMs, settings.maxRetryAfterMs) + Math.floor(random() * 1000);
  }
  const exp = Math.min(settings.maxMs, settings.baseMs * Math.pow(2, Math.max(0, attempt)));
  return Math.floor(exp / 2 + random() * (exp / 2));
}
