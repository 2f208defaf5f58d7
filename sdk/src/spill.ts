/**
 * What could not be sent when the page was hidden or unloaded, kept in sessionStorage (bounded) and sent by the
 * next page load of the same tab — or by this page, if it was only hidden and is still alive a moment later.
 */

import type { KeyValueStore } from './storage';

export const SPILL_KEY = 'observer.spill';
/** Upper bound of the spill, in characters of its JSON (sessionStorage quotas are about 5 M characters per origin). */
export const SPILL_MAX_CHARS = 2 * 1024 * 1024;

/** A replay chunk at rest: session id, seq, user id, and either its JSON or its gzip bytes in base64. */
export interface SpilledChunk {
  s: string;
  q: number;
  u?: string;
  j?: string;
  g?: string;
}

export interface SpillData<E = object, V = object> {
  errors: E[];
  events: V[];
  replay: SpilledChunk[];
}

export function emptySpill<E, V>(): SpillData<E, V> {
  return { errors: [], events: [], replay: [] };
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isChunk(value: unknown): value is SpilledChunk {
  if (!isObject(value)) return false;
  const c = value as Partial<SpilledChunk>;
  return typeof c.s === 'string' && typeof c.q === 'number' && (typeof c.j === 'string' || typeof c.g === 'string');
}

export function parseSpill(text: string | null): SpillData {
  const out = emptySpill<object, object>();
  if (!text) return out;
  try {
    const data = JSON.parse(text) as Partial<SpillData>;
    if (Array.isArray(data.errors)) out.errors = data.errors.filter(isObject);
    if (Array.isArray(data.events)) out.events = data.events.filter(isObject);
    if (Array.isArray(data.replay)) out.replay = data.replay.filter(isChunk);
  } catch {
    // a corrupt spill is dropped
  }
  return out;
}

/**
 * Merges `add` into `existing` within `maxChars`: errors first, then events, then replay chunks in seq order (a
 * chunk present in both is kept once). What does not fit is dropped; returns the result and how many were.
 */
export function mergeSpill(existing: SpillData, add: SpillData, maxChars: number = SPILL_MAX_CHARS): { data: SpillData; dropped: number } {
  const data = emptySpill<object, object>();
  let used = JSON.stringify(data).length;
  let dropped = 0;
  const admit = (entry: unknown): boolean => {
    const size = JSON.stringify(entry).length + 1;
    if (used + size > maxChars) {
      dropped++;
      return false;
    }
    used += size;
    return true;
  };
  for (const e of existing.errors.concat(add.errors)) if (admit(e)) data.errors.push(e);
  for (const e of existing.events.concat(add.events)) if (admit(e)) data.events.push(e);
  const seen = new Set<string>();
  const chunks = existing.replay.concat(add.replay).sort((a, b) => a.q - b.q);
  for (const c of chunks) {
    const id = c.s + ':' + c.q;
    if (seen.has(id)) continue;
    seen.add(id);
    if (admit(c)) data.replay.push(c);
  }
  return { data, dropped };
}

export class Spill {
  constructor(
    private readonly store: KeyValueStore,
    private readonly maxChars: number = SPILL_MAX_CHARS,
  ) {}

  /**
   * Adds to what is kept. Returns how many items or chunks had to be dropped to stay within the bound, and whether
   * the spill reached sessionStorage (false: it is kept in memory only, for a page that was merely hidden).
   */
  save(add: SpillData): { dropped: number; persisted: boolean } {
    if (add.errors.length + add.events.length + add.replay.length === 0) return { dropped: 0, persisted: true };
    const { data, dropped } = mergeSpill(parseSpill(this.store.get(SPILL_KEY)), add, this.maxChars);
    return { dropped, persisted: this.store.set(SPILL_KEY, JSON.stringify(data)) };
  }

  /** Takes out everything kept (it is the caller's from now on). */
  take(): SpillData {
    const text = this.store.get(SPILL_KEY);
    if (text === null) return emptySpill();
    this.store.remove(SPILL_KEY);
    return parseSpill(text);
  }

  /** Forgets a replay chunk that was delivered after all (its page stayed alive). */
  removeChunk(sessionId: string, seq: number): void {
    const text = this.store.get(SPILL_KEY);
    if (text === null) return;
    const data = parseSpill(text);
    const before = data.replay.length;
    data.replay = data.replay.filter((c) => !(c.s === sessionId && c.q === seq));
    if (data.replay.length === before) return;
    if (data.errors.length + data.events.length + data.replay.length === 0) this.store.remove(SPILL_KEY);
    else this.store.set(SPILL_KEY, JSON.stringify(data));
  }
}
