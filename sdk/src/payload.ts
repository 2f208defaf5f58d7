/** The wire types Observer accepts (docs/api.md) and the client-side limits that keep a batch from being refused. */

import { utf8Length } from './transport';

/** One item of `POST /api/observer/errors`. Only documented fields: the server refuses unknown ones. */
export interface ErrorReport {
  message: string;
  type?: string;
  stack?: string;
  url?: string;
  timestamp?: number;
  session_id?: string;
  visitor_id?: string;
  user_id?: string;
  release?: string;
  environment?: string;
  context?: Record<string, unknown>;
}

/** One item of `POST /api/observer/events`. */
export interface AnalyticsEvent {
  type: 'page_view' | 'custom' | 'web_vital';
  name?: string;
  url?: string;
  referrer?: string;
  title?: string;
  screen_width?: number;
  screen_height?: number;
  language?: string;
  session_id?: string;
  visitor_id?: string;
  user_id?: string;
  timestamp?: number;
  properties?: Record<string, unknown>;
  /** `web_vital` only. */
  value?: number;
  rating?: 'good' | 'needs-improvement' | 'poor';
  navigation_type?: string;
}

/** Server-side limits (characters unless noted), mirrored so that one oversized field cannot get a whole batch refused. */
export const LIMITS = {
  message: 8192,
  type: 256,
  stack: 65_536,
  url: 2048,
  title: 1024,
  name: 256,
  language: 35,
  userId: 256,
  release: 128,
  environment: 64,
  screen: 100_000,
  /** `context` / `properties` serialised, in bytes. */
  objectBytes: 16 * 1024,
  /** Stack kept in the replay's custom `error` event. */
  replayStack: 1000,
} as const;

/** Cuts `text` to at most `max` UTF-16 units (so at most `max` characters), never inside a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end);
}

/** A non-empty string cut to `max`, or undefined. */
export function optionalText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  return truncate(value, max);
}

/** An integer in 0..=max, or undefined. */
export function optionalDimension(value: unknown, max: number = LIMITS.screen): number | undefined {
  if (typeof value !== 'number' || !isFinite(value)) return undefined;
  return Math.min(max, Math.max(0, Math.round(value)));
}

/** JSON.stringify that survives cycles, BigInt, throwing getters and toJSON. Returns undefined for a non-serialisable root. */
export function safeStringify(value: unknown): string | undefined {
  const seen: unknown[] = [];
  try {
    return JSON.stringify(value, function (this: unknown, _key, val: unknown) {
      if (typeof val === 'bigint') return val.toString();
      if (typeof val === 'object' && val !== null) {
        // `seen` holds the ancestors of the current value: JSON.stringify visits depth-first.
        while (seen.length > 0 && seen[seen.length - 1] !== this) seen.pop();
        if (seen.includes(val)) return '[Circular]';
        seen.push(val);
      }
      return val;
    });
  } catch {
    return undefined;
  }
}

/**
 * A plain JSON copy of `value` (an object) whose serialisation is at most `maxBytes`. When it is larger, keeps
 * the leading keys that fit and adds `"_truncated": true`. Returns undefined for anything that is not an object.
 */
export function boundedObject(value: unknown, maxBytes: number = LIMITS.objectBytes): Record<string, unknown> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const text = safeStringify(value);
  if (text === undefined) return undefined;
  let copy: Record<string, unknown>;
  try {
    copy = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (utf8Length(text) <= maxBytes) return copy;
  const out: Record<string, unknown> = { _truncated: true };
  let used = utf8Length('{"_truncated":true}');
  for (const key of Object.keys(copy)) {
    const entry = utf8Length(JSON.stringify(key) + ':' + JSON.stringify(copy[key])) + 1;
    if (used + entry > maxBytes) continue;
    out[key] = copy[key];
    used += entry;
  }
  return out;
}

/** The message, type and stack of anything thrown or rejected. */
export function describeError(error: unknown): { message: string; type?: string; stack?: string } {
  if (error !== null && typeof error === 'object') {
    const e = error as { message?: unknown; name?: unknown; stack?: unknown };
    const type = typeof e.name === 'string' && e.name !== '' ? e.name : undefined;
    const stack = typeof e.stack === 'string' && e.stack !== '' ? e.stack : undefined;
    let message = typeof e.message === 'string' ? e.message : '';
    if (message === '' && !type && !stack) message = safeStringify(error) || String(error);
    return { message: message || type || 'Error', type, stack };
  }
  if (typeof error === 'string') return { message: error || 'Error' };
  return { message: safeStringify(error) || String(error) };
}

/** The URL without its fragment: fragments may carry tokens (`#access_token=…`) and are not sent. */
export function stripHash(url: string): string {
  const i = url.indexOf('#');
  return i === -1 ? url : url.slice(0, i);
}
