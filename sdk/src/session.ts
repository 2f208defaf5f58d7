/**
 * Who and where: the visitor id (localStorage, per browser), the session id (sessionStorage, per tab), the
 * replay sampling decision and the replay chunk counter `seq` — the last two kept with the session so that a
 * classic multi-page site records one session with one continuous `seq` across full page loads.
 *
 * A tab duplicated by the browser (or a same-origin iframe) gets a copy of — or shares — sessionStorage; two
 * pages continuing one session would number different chunks with the same `seq`. So a page marks the session
 * as live while it runs and releases it on `pagehide`; a page that finds the session still marked live starts a
 * new session instead of continuing it.
 */

import { isValidId, newId } from './ids';
import type { KeyValueStore } from './storage';

export const SESSION_KEY = 'observer.session';
export const VISITOR_KEY = 'observer.visitor';
const MAX_SEQ = 4294967295;

/** What sessionStorage holds under {@link SESSION_KEY}. */
export interface SessionRecord {
  id: string;
  /** The next replay chunk number. */
  seq: number;
  /** Whether this session's replay is recorded (decided once per session). */
  sampled?: boolean;
  /** The user id from `identify`. */
  uid?: string;
  /** The id of the page currently continuing this session; absent when none is. */
  live?: string;
}

export function parseSessionRecord(text: string | null): SessionRecord | null {
  if (!text) return null;
  try {
    const r = JSON.parse(text) as Partial<SessionRecord> | null;
    if (!r || !isValidId(r.id)) return null;
    if (typeof r.seq !== 'number' || !Number.isInteger(r.seq) || r.seq < 0 || r.seq > MAX_SEQ) return null;
    return {
      id: r.id,
      seq: r.seq,
      sampled: typeof r.sampled === 'boolean' ? r.sampled : undefined,
      uid: typeof r.uid === 'string' && r.uid !== '' ? r.uid : undefined,
      live: typeof r.live === 'string' ? r.live : undefined,
    };
  } catch {
    return null;
  }
}

export interface SessionOptions {
  /** Probability in 0..=1 that a new session's replay is recorded. */
  sampleRate: number;
  random?: () => number;
}

export class Session {
  readonly visitorId: string;
  /** This page load. */
  readonly pageId: string = newId();
  id = '';
  sampled = false;
  userId: string | undefined;
  private nextSeqInMemory = 0;
  private released = false;
  private readonly random: () => number;

  constructor(
    private readonly tab: KeyValueStore,
    browser: KeyValueStore,
    private readonly options: SessionOptions,
  ) {
    this.random = options.random || Math.random;
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

  private read(): SessionRecord | null {
    return parseSessionRecord(this.tab.get(SESSION_KEY));
  }

  private write(record: SessionRecord): void {
    this.tab.set(SESSION_KEY, JSON.stringify(record));
  }

  private record(): SessionRecord {
    return { id: this.id, seq: this.nextSeqInMemory, sampled: this.sampled, uid: this.userId, live: this.released ? undefined : this.pageId };
  }

  /**
   * Continues the tab's session when no other page holds it, or starts a new one, and marks it live for this
   * page. Called at start-up and when the page comes back from the back/forward cache. Returns true when a new
   * session was started.
   */
  claim(initial = false): boolean {
    const stored = this.read();
    const continues = !!stored && !stored.live && (initial || stored.id === this.id);
    if (continues && stored) {
      this.id = stored.id;
      this.nextSeqInMemory = Math.max(stored.seq, initial ? 0 : this.nextSeqInMemory);
      if (initial) {
        this.sampled = stored.sampled !== undefined ? stored.sampled : this.decideSampling();
        this.userId = stored.uid;
      }
    } else {
      this.id = newId();
      this.nextSeqInMemory = 0;
      if (initial) this.sampled = this.decideSampling();
    }
    this.released = false;
    this.write(this.record());
    return !continues;
  }

  /** The page is going away: the next page load in this tab may continue the session. */
  release(): void {
    this.released = true;
    const stored = this.read();
    if (stored && stored.id === this.id && stored.live === this.pageId) {
      delete stored.live;
      this.write(stored);
    }
  }

  private decideSampling(): boolean {
    const rate = this.options.sampleRate;
    return rate >= 1 || (rate > 0 && this.random() < rate);
  }

  /** Allocates the next replay chunk number, persisting the counter before the number is used. */
  nextSeq(): number {
    const stored = this.read();
    const mine = !stored || stored.id === this.id;
    const seq = mine && stored ? Math.max(stored.seq, this.nextSeqInMemory) : this.nextSeqInMemory;
    this.nextSeqInMemory = Math.min(MAX_SEQ, seq + 1);
    // Another page took the record over (same-origin iframe): keep counting in memory, leave its record alone.
    if (mine) this.write(this.record());
    return seq;
  }

  setUser(userId: string | undefined): void {
    this.userId = userId;
    const stored = this.read();
    if (!stored || stored.id === this.id) this.write(this.record());
  }
}
