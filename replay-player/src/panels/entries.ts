// What the side panels show, read from rrweb events. A recording comes from
// the recorded site's browser, so nothing in it is trusted: every field is
// type-checked, strings are capped, and the panels put them in the DOM as
// text only.
import type { RrwebEvent } from '../loader';

/** rrweb's console record plugin (`@rrweb/rrweb-plugin-console-record`) names its events so. */
export const CONSOLE_PLUGIN = 'rrweb/console@1';
const PLUGIN_EVENT = 6;
const CUSTOM_EVENT = 5;

/** Display caps: a line, one trace frame, the frames kept, a URL. */
const MAX_TEXT = 5000;
const MAX_FRAME = 500;
const MAX_FRAMES = 50;
const MAX_URL = 2000;

/** The levels with a filter of their own; every other console method (debug, trace, table, assert…) is "other". */
export const CONSOLE_LEVELS = ['log', 'info', 'warn', 'error', 'other'] as const;
export type ConsoleFilterLevel = (typeof CONSOLE_LEVELS)[number];

export interface ConsoleEntry {
  timestamp: number;
  /** The console method as recorded (`log`, `debug`, `assert`, …). */
  level: string;
  /** The filter it falls under. */
  group: ConsoleFilterLevel;
  text: string;
  trace: string[];
}

export type Initiator = 'fetch' | 'xhr' | 'other';

export interface NetworkEntry {
  timestamp: number;
  initiator: Initiator;
  method: string;
  url: string;
  /** 0: no response (network error). */
  status: number;
  durationMs: number | null;
  requestBytes: number | null;
  responseBytes: number | null;
  error: string | null;
  failed: boolean;
}

/**
 * A console plugin event (type 6, `data.plugin == "rrweb/console@1"`,
 * `data.payload = {level, payload: string[], trace: string[]}`), else null.
 */
export function consoleEntry(event: RrwebEvent): ConsoleEntry | null {
  if (event.type !== PLUGIN_EVENT || event.data?.plugin !== CONSOLE_PLUGIN) return null;
  const p: unknown = event.data?.payload;
  if (!isRecord(p)) return null;
  const level = typeof p.level === 'string' && p.level ? cap(p.level, 20) : 'log';
  const args = Array.isArray(p.payload) ? p.payload : [];
  const trace = Array.isArray(p.trace) ? p.trace : [];
  return {
    timestamp: event.timestamp,
    level,
    group: (CONSOLE_LEVELS as readonly string[]).includes(level) && level !== 'other' ? (level as ConsoleFilterLevel) : 'other',
    text: cap(consoleText(args), MAX_TEXT),
    trace: trace
      .slice(0, MAX_FRAMES)
      .filter((frame): frame is string => typeof frame === 'string')
      .map((frame) => cap(frame, MAX_FRAME)),
  };
}

/**
 * The plugin stores each argument as `JSON.stringify` of it (its own
 * stringify: cycles, DOM nodes and errors made safe), so a string argument
 * arrives quoted. Strings are shown bare, as a browser console shows them;
 * anything else as its JSON.
 */
export function consoleText(args: unknown[]): string {
  const parts: string[] = [];
  let length = 0;
  for (const arg of args) {
    if (length > MAX_TEXT) break;
    let part: string;
    if (typeof arg !== 'string') part = String(arg);
    else {
      part = arg;
      if (arg.startsWith('"')) {
        try {
          const parsed: unknown = JSON.parse(arg);
          if (typeof parsed === 'string') part = parsed;
        } catch {
          // Not JSON after all: shown as it is.
        }
      }
    }
    parts.push(part);
    length += part.length + 1;
  }
  return parts.join(' ');
}

/** A custom event with tag `network` (the SDK's fetch/XHR recording), else null. */
export function networkEntry(event: RrwebEvent): NetworkEntry | null {
  if (event.type !== CUSTOM_EVENT || event.data?.tag !== 'network') return null;
  const p: unknown = event.data?.payload;
  if (!isRecord(p)) return null;
  const status = count(p.status) ?? 0;
  const error = typeof p.error === 'string' && p.error ? cap(p.error, MAX_TEXT) : null;
  return {
    timestamp: event.timestamp,
    initiator: p.initiator === 'fetch' || p.initiator === 'xhr' ? p.initiator : 'other',
    method: typeof p.method === 'string' && p.method ? cap(p.method.toUpperCase(), 16) : 'GET',
    url: typeof p.url === 'string' ? cap(p.url, MAX_URL) : '',
    status,
    durationMs: count(p.duration_ms),
    requestBytes: count(p.request_bytes),
    responseBytes: count(p.response_bytes),
    error,
    failed: status === 0 || status >= 400,
  };
}

/** "512 B", "1.5 KB", "2.0 MB". */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '—';
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** "87 ms", "1.24 s". */
export function formatMs(ms: number | null): string {
  if (ms === null) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A finite number ≥ 0, else null. */
function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

function cap(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
