/** The app's `beforeSend(item, kind)`: scrub or drop an error or event before it is queued. */

import type { Logger } from '../log';
import { safeStringify } from '../payload';

export type ItemKind = 'error' | 'event';

/** The documented fields of each kind (payload.ts); anything else `beforeSend` adds is removed (Observer refuses unknown fields, and with them the whole batch). */
const FIELDS: Record<ItemKind, string> = {
  error: 'message type stack url timestamp session_id visitor_id user_id release environment context',
  event: 'type name url referrer title screen_width screen_height language session_id visitor_id user_id timestamp properties',
};

/**
 * Runs `fn` on a copy of `item`. Returns what to queue — a plain JSON copy of what `fn` returned, keeping only
 * the kind's fields and those `item` had — or null to drop it: `fn` returned null/undefined or something other
 * than an object (a Promise included), or threw. A throwing `beforeSend` drops the item: it may have been about to
 * remove something that must not leave the page. Never throws.
 */
export function applyBeforeSend<T extends object>(fn: ((item: never, kind: ItemKind) => unknown) | undefined, item: T, kind: ItemKind, log: Logger): T | null {
  if (!fn) return item;
  let copy: Record<string, unknown> | undefined;
  try {
    const out: unknown = fn(JSON.parse(JSON.stringify(item)) as never, kind);
    if (out === null || out === undefined) return null;
    if (typeof out === 'object' && !Array.isArray(out) && typeof (out as { then?: unknown }).then !== 'function') {
      copy = JSON.parse(safeStringify(out) as string) as Record<string, unknown>;
      const allowed = (FIELDS[kind] + ' ' + Object.keys(item).join(' ')).split(' ');
      for (const key of Object.keys(copy)) if (!allowed.includes(key)) delete copy[key];
      const required = kind === 'error' ? copy.message : copy.type;
      if (typeof required !== 'string' || required === '') copy = undefined;
    }
  } catch {
    copy = undefined;
  }
  if (!copy) log.warn(`beforeSend threw or returned no valid ${kind}: dropped`);
  return (copy as T) || null;
}
