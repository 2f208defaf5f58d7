// Where a replay link (`/replay/{id}?t=…`) starts playback.
//
// `?t=` is either an offset in seconds from the start of the recording
// (`?t=90`, `?t=3.5`) or the absolute time of a moment, such as an error
// in Grafana, in milliseconds since the Unix epoch
// (`?t=1763830241123`). Values from 10^11 on are epoch milliseconds:
// 10^11 ms is March 1973, long before any recording, and 10^11 s is over
// 3000 years, longer than any recording. An absolute time starts
// `LEAD_MS` before the moment, to show what led to it, but not before the
// recording starts.

export const EPOCH_MS_FROM = 1e11;
export const LEAD_MS = 5000;

/**
 * The absolute ms timestamp to start at, for the raw `?t=` value and a
 * recording spanning `first`..`last` (ms). Missing or invalid → `first`.
 */
export function startTime(raw: string | null, first: number, last: number): number {
  const t = raw === null || raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(t) || t <= 0) return first;
  const at = t >= EPOCH_MS_FROM ? t - LEAD_MS : first + t * 1000;
  return Math.min(Math.max(at, first), Math.max(first, last));
}
