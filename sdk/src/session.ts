/**
 * Who and where: the visitor id (localStorage, per browser), the session id (sessionStorage, per tab), the
 * replay sampling decision and the replay chunk counter `seq` — the last two kept with the session so that a
 * classic multi-page site records one session with one continuous `seq` across full page loads.
 *
 * A tab duplicated by the browser, a window opened with `window.open`, or a same-origin iframe gets a copy of — or
 * shares — sessionStorage; two pages continuing one session would number different chunks with the same `seq`. So
 * a page marks the session as live while it runs (its page id and a heartbeat timestamp, refreshed every second)
 * and releases it on `pagehide`. A new page decides from the mark:
 *
 * - no mark, a released one, or a stale one (a visible page that stopped beating {@link LIVE_TTL_MS} before this
 *   page started loading: it died without `pagehide`) → it continues the session;
 * - a fresh mark → another page may still be running. It cannot yet tell a duplicate (whose copy of the mark
 *   never changes) from the previous page of this tab whose `pagehide` simply runs late (bfcache, a process swap:
 *   the old page is unloaded after the new one started). So the start is **pending**: the page uses a provisional
 *   new session id in memory, writes nothing, and settles at the first moment the id matters (the first replay
 *   chunk, the first request, hiding, `flush()`) or after {@link HANDOVER_MS}: if the holder has released the
 *   mark meanwhile, the page continues that session (and the caller re-stamps what it queued); otherwise the new
 *   session stands.
 *
 * Freshness is judged against the time this page **started loading**, not the time its script runs: a duplicated
 * tab's copy of sessionStorage is taken before its navigation starts, so however slowly the copy loads, a mark
 * that was fresh then still counts. A hidden page's mark does not expire at all (browsers throttle or freeze the
 * timers of hidden pages, so a missing heartbeat proves nothing there) — except for a tab the browser discarded
 * and now reloads (`document.wasDiscarded`).
 */

import { isValidId, newId } from './ids';
import type { KeyValueStore } from './storage';

export const SESSION_KEY = 'observer.session';
export const VISITOR_KEY = 'observer.visitor';
const MAX_SEQ = 4294967295;
/** How often a running page refreshes its live mark. */
export const HEARTBEAT_MS = 1000;
/** A visible page's mark this much older than the reference time is released (that page died without `pagehide`). */
export const LIVE_TTL_MS = 3000;
/** A pending start settles at the latest this long after it began. */
export const HANDOVER_MS = 1500;

/** What sessionStorage holds under {@link SESSION_KEY}. */
export interface SessionRecord {
  id: string;
  /** The next replay chunk number. */
  seq: number;
  /** Whether this session's replay is recorded (decided once per session; `replay.start()`/`stop()` change it). */
  sampled?: boolean;
  /** The session's random draw in [0, 1): its errors and events are sent when it is below their `sampleRate`. */
  draw?: number;
  /** The user id from `identify`. */
  uid?: string;
  /** The id of the page currently continuing this session; absent when none is. */
  live?: string;
  /** When the live page last showed it runs (ms since the epoch). A mark without one (older SDK) never expires. */
  beat?: number;
  /** The live page was hidden at its last heartbeat: its mark does not expire. */
  hidden?: boolean;
}

export function parseSessionRecord(text: string | null): SessionRecord | null {
  if (!text) return null;
  try {
    const r = JSON.parse(text) as Partial<SessionRecord> | null;
    if (!r || !isValidId(r.id)) return null;
    if (typeof r.seq !== 'number' || !Number.isInteger(r.seq) || r.seq < 0 || r.seq > MAX_SEQ) return null;
    const live = typeof r.live === 'string' ? r.live : undefined;
    return {
      id: r.id,
      seq: r.seq,
      sampled: typeof r.sampled === 'boolean' ? r.sampled : undefined,
      draw: typeof r.draw === 'number' && r.draw >= 0 && r.draw < 1 ? r.draw : undefined,
      uid: typeof r.uid === 'string' && r.uid !== '' ? r.uid : undefined,
      live,
      beat: live && typeof r.beat === 'number' && Number.isFinite(r.beat) ? r.beat : undefined,
      hidden: live && r.hidden === true ? true : undefined,
    };
  } catch {
    return null;
  }
}

/** Whether the page that marked `record` live must be taken as running at time `at` (ms since the epoch). */
export function isHeld(record: SessionRecord, at: number): boolean {
  if (!record.live) return false;
  if (record.beat === undefined || record.hidden) return true;
  return at - record.beat < LIVE_TTL_MS;
}

export interface SessionOptions {
  /** Probability in 0..=1 that a new session's replay is recorded. */
  sampleRate: number;
  random?: () => number;
  /** The clock (ms since the epoch). */
  now?: () => number;
  /** When this page started loading (ms since the epoch; default: now). Marks are judged against it at start-up. */
  pageStart?: number;
  /** The browser discarded this tab and reloads it (`document.wasDiscarded`): the old page's mark is void. */
  discarded?: boolean;
}

/** How {@link Session.claim} went. */
export type ClaimResult = 'continued' | 'new' | 'pending';

interface Pending {
  /** The stored session this page continues if its holder releases it. */
  from: string;
  /** The page id holding it. */
  holder: string;
  /** The seq this page would count on from (a page restored from the back/forward cache keeps its own). */
  seq: number;
  /** `identify` was called while pending: keep this page's user id over the stored one. */
  userSet: boolean;
}

export class Session {
  readonly visitorId: string;
  /** This page load. */
  readonly pageId: string = newId();
  id = '';
  sampled = false;
  /** See {@link SessionRecord.draw}. */
  draw = 0;
  userId: string | undefined;
  /**
   * Called when a pending start settles by continuing the stored session: what was stamped with the provisional
   * id `from` belongs to `to`.
   */
  onAdopt: ((from: string, to: string) => void) | undefined;
  private nextSeqInMemory = 0;
  private released = false;
  private hidden = false;
  private pending: Pending | undefined;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(
    private readonly tab: KeyValueStore,
    browser: KeyValueStore,
    private readonly options: SessionOptions,
  ) {
    this.random = options.random || Math.random;
    this.now = options.now || Date.now;
    const stored = browser.get(VISITOR_KEY);
    if (isValidId(stored)) {
      this.visitorId = stored;
    } else {
      this.visitorId = newId();
      browser.set(VISITOR_KEY, this.visitorId);
    }
    this.claim(true);
  }

  /** Whether this tab's session is kept across page loads (false: sessionStorage unusable, memory only). */
  get persistent(): boolean {
    return this.tab.persistent;
  }

  /** Whether the start waits to see if another page releases the session (see the module comment). */
  get isPending(): boolean {
    return this.pending !== undefined;
  }

  private read(): SessionRecord | null {
    return parseSessionRecord(this.tab.get(SESSION_KEY));
  }

  private write(record: SessionRecord): void {
    this.tab.set(SESSION_KEY, JSON.stringify(record));
  }

  private record(): SessionRecord {
    const r: SessionRecord = { id: this.id, seq: this.nextSeqInMemory, sampled: this.sampled, draw: this.draw, uid: this.userId };
    if (!this.released) {
      r.live = this.pageId;
      r.beat = this.now();
      if (this.hidden) r.hidden = true;
    }
    return r;
  }

  /**
   * Continues the tab's session when no other page holds it, starts a new one when another does, or — when a
   * fresh mark may belong to a page that is only late in leaving — starts pending (see the module comment).
   * Called at start-up and when the page comes back from the back/forward cache.
   */
  claim(initial = false): ClaimResult {
    const stored = this.read();
    this.pending = undefined;
    this.released = false;
    const adoptable = !!stored && (initial || stored.id === this.id);
    const at = initial ? (this.options.pageStart ?? this.now()) : this.now();
    const free = !!stored && (!isHeld(stored, at) || stored.live === this.pageId || (initial && !!this.options.discarded));
    if (stored && adoptable && free) {
      this.id = stored.id;
      this.nextSeqInMemory = Math.max(stored.seq, initial ? 0 : this.nextSeqInMemory);
      if (initial) {
        this.sampled = stored.sampled !== undefined ? stored.sampled : this.decideSampling();
        this.draw = stored.draw !== undefined ? stored.draw : this.random();
        this.userId = stored.uid;
      }
      this.write(this.record());
      return 'continued';
    }
    const previousSeq = this.nextSeqInMemory;
    this.id = newId();
    this.nextSeqInMemory = 0;
    if (initial) {
      // A duplicate of the stored session inherits its sampling decision and user: same visitor, same tab state.
      this.sampled = stored && stored.sampled !== undefined ? stored.sampled : this.decideSampling();
      this.draw = stored && stored.draw !== undefined ? stored.draw : this.random();
      this.userId = stored ? stored.uid : undefined;
    }
    if (stored && adoptable && stored.live) {
      // Nothing is written while pending: the holder may still write its last seq and its release.
      this.pending = { from: stored.id, holder: stored.live, seq: initial ? 0 : previousSeq, userSet: false };
      return 'pending';
    }
    this.write(this.record());
    return 'new';
  }

  /**
   * Ends a pending start (nothing to do otherwise): continues the stored session if its holder has released it,
   * else keeps the new session. Returns true when it continued the stored session.
   */
  settle(): boolean {
    const p = this.pending;
    if (!p) return false;
    this.pending = undefined;
    const stored = this.read();
    // Only an explicit release counts here: a copy of sessionStorage (duplicated tab) never changes, so a mark
    // that merely got old proves nothing.
    if (stored && stored.id === p.from && !stored.live) {
      const provisional = this.id;
      this.id = stored.id;
      this.nextSeqInMemory = Math.max(stored.seq, p.seq);
      if (stored.sampled !== undefined) this.sampled = stored.sampled;
      if (stored.draw !== undefined) this.draw = stored.draw;
      if (!p.userSet) this.userId = stored.uid;
      if (!this.released) this.write(this.record());
      if (this.onAdopt) this.onAdopt(provisional, this.id);
      return true;
    }
    if (!this.released) this.write(this.record());
    return false;
  }

  /** Refreshes this page's live mark (every {@link HEARTBEAT_MS}, and when the page is hidden or shown). */
  heartbeat(hidden: boolean): void {
    this.hidden = hidden;
    if (this.pending || this.released) return;
    const stored = this.read();
    // Only a mark this page still holds: after a release, or when another page took the record over, it stays.
    if (!stored || stored.id !== this.id || stored.live !== this.pageId) return;
    stored.beat = this.now();
    if (hidden) stored.hidden = true;
    else delete stored.hidden;
    this.write(stored);
  }

  /** The page is going away: the next page load in this tab may continue the session. */
  release(): void {
    this.released = true;
    // A page that leaves while pending has marked nothing.
    this.pending = undefined;
    const stored = this.read();
    if (stored && stored.id === this.id && stored.live === this.pageId) {
      delete stored.live;
      delete stored.beat;
      delete stored.hidden;
      this.write(stored);
    }
  }

  private decideSampling(): boolean {
    const rate = this.options.sampleRate;
    return rate >= 1 || (rate > 0 && this.random() < rate);
  }

  /** Allocates the next replay chunk number, persisting the counter before the number is used. */
  nextSeq(): number {
    this.settle();
    const stored = this.read();
    const mine = !stored || stored.id === this.id;
    const seq = mine && stored ? Math.max(stored.seq, this.nextSeqInMemory) : this.nextSeqInMemory;
    this.nextSeqInMemory = Math.min(MAX_SEQ, seq + 1);
    // Another page took the record over (same-origin iframe): keep counting in memory, leave its record alone.
    if (mine) this.write(this.record());
    return seq;
  }

  /** `replay.start()` / `stop()`: the replay decision for the rest of the session (settles a pending start first). */
  setSampled(sampled: boolean): void {
    this.settle();
    this.sampled = sampled;
    const stored = this.read();
    if (!this.released && (!stored || stored.id === this.id)) this.write(this.record());
  }

  setUser(userId: string | undefined): void {
    this.userId = userId;
    if (this.pending) {
      this.pending.userSet = true;
      return;
    }
    const stored = this.read();
    if (!stored || stored.id === this.id) this.write(this.record());
  }
}
