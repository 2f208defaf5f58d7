/**
 * Errors and events on their way, written down in localStorage (`observer.queue`, one JSON value for the origin)
 * so that what a page could not deliver — offline, Observer unreachable, the tab closed — is sent by the next page
 * load of the origin, in any tab. It is the durable side of `queue.ts` (`DurableStore`); replay chunks keep using
 * the tab's spill (spill.ts).
 *
 * Every item has an id and is written down before it is sent (with a count of sends started) and removed only
 * after a 2xx (or a final refusal). Each stored item carries a **lease**: the page id that owns it and until when.
 * The owner refreshes its leases while it runs and releases what it leaves unsent on `pagehide`. Another page
 * takes over (`claim`) only released items or items whose lease ran out (the owner crashed or was killed), then
 * reads them back after {@link CLAIM_CHECK_MS} and keeps only those still marked as its own: when two pages claim
 * at once, the last write wins in both, so one of them sends. Before each send the owner checks that the items are
 * still its own (a hidden page whose timers were frozen past its lease may have lost them).
 *
 * Duplicates, bounded: a page that dies between a send and the removal of what it sent (crash, or a request still
 * in flight when the tab closes) leaves those items leased; they are sent again by a page loaded after the lease
 * ran out ({@link LEASE_MS}), at most once per lease period, and an item whose sends reach {@link MAX_SENDS} is
 * dropped. Items sent with keepalive while a page is left are removed first (sent at most once: their answer is
 * never seen). The store is bounded ({@link OFFLINE_MAX_ITEMS}, {@link OFFLINE_MAX_CHARS}): the oldest items are
 * dropped first, and counted in the stored `dropped`.
 */

import type { Logger } from '../log';
import type { DurableStore, Parcel } from '../queue';
import type { KeyValueStore } from '../storage';

export const OFFLINE_KEY = 'observer.queue';
export const OFFLINE_MAX_ITEMS = 500;
/** Characters of the stored JSON (browsers allow about 5 M per origin, shared with the app). */
export const OFFLINE_MAX_CHARS = 1024 * 1024;
/** How long an owner's claim holds without being refreshed. */
export const LEASE_MS = 30_000;
/** A claim is read back this much later: by then a concurrent claim from another tab has arrived. */
export const CLAIM_CHECK_MS = 500;
/** Sends started for one item, over all pages, before it is dropped. */
export const MAX_SENDS = 20;
/** Older items are dropped (Observer refuses timestamps more than 7 days old). */
const MAX_AGE_MS = 7 * 86_400_000;

/** One stored item. */
export interface StoredItem {
  /** id */
  i: string;
  /** queue: `errors` or `events` */
  k: string;
  /** when it was first written (ms) */
  t: number;
  /** sends started */
  n: number;
  /** owner page id */
  o: string;
  /** lease end (ms); 0: released */
  l: number;
  /** the item */
  d: object;
}

interface Stored {
  /** Items dropped to stay within the bounds, ever (until the store is cleared). */
  dropped: number;
  q: StoredItem[];
}

function parse(text: string | null): Stored {
  try {
    const s = text ? (JSON.parse(text) as Partial<Stored>) : null;
    if (s && Array.isArray(s.q)) {
      const q = s.q.filter((r) => r && typeof r.i === 'string' && typeof r.k === 'string' && typeof r.d === 'object' && r.d !== null);
      return { dropped: Number(s.dropped) || 0, q };
    }
  } catch {
    // a corrupt store is dropped
  }
  return { dropped: 0, q: [] };
}

export class OfflineStore implements DurableStore {
  private claiming = new Set<string>();
  private refreshedAt = 0;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly page: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly maxItems = OFFLINE_MAX_ITEMS,
    private readonly maxChars = OFFLINE_MAX_CHARS,
  ) {}

  private read(): Stored {
    const s = parse(this.kv.get(OFFLINE_KEY));
    const oldest = this.now() - MAX_AGE_MS;
    s.q = s.q.filter((r) => r.t > oldest);
    return s;
  }

  /** Writes within the bounds, dropping the oldest items first. */
  private write(s: Stored): void {
    let chars = JSON.stringify(s).length;
    let dropped = 0;
    while (s.q.length > 0 && (s.q.length > this.maxItems || chars > this.maxChars)) {
      chars -= JSON.stringify(s.q.shift()).length + 1;
      dropped++;
    }
    if (dropped > 0) {
      s.dropped += dropped;
      this.log.warn(`offline store full: dropped the ${dropped} oldest items (${s.dropped} so far)`);
    }
    if (s.q.length === 0 && s.dropped === 0) this.kv.remove(OFFLINE_KEY);
    else this.kv.set(OFFLINE_KEY, JSON.stringify(s));
  }

  private mine(r: StoredItem | undefined): r is StoredItem {
    return !!r && r.o === this.page;
  }

  sending<P extends Parcel>(kind: string, parcels: P[]): P[] {
    const s = this.read();
    const byId = new Map(s.q.map((r) => [r.i, r]));
    const lease = this.now() + LEASE_MS;
    const out = parcels.filter((p) => {
      let r = byId.get(p.id);
      // Written down before but gone (delivered by another page, or dropped) or taken over: not ours to send.
      if (p.stored ? !this.mine(r) : r && !this.mine(r)) return false;
      if (!r) s.q.push((r = { i: p.id, k: kind, t: this.now(), n: 0, o: this.page, l: 0, d: p.item as object }));
      if (r.n >= MAX_SENDS) {
        s.q.splice(s.q.indexOf(r), 1);
        this.log.warn(`dropped an item sent ${r.n} times`);
        return false;
      }
      Object.assign(r, { n: r.n + 1, l: lease, d: p.item as object });
      p.stored = true;
      return true;
    });
    this.write(s);
    return out;
  }

  forget(parcels: Parcel[]): void {
    const ids = new Set(parcels.map((p) => p.id));
    const s = this.read();
    const before = s.q.length;
    s.q = s.q.filter((r) => !(ids.has(r.i) && this.mine(r)));
    if (s.q.length !== before) this.write(s);
  }

  keep(kind: string, parcels: Parcel[], release: boolean): void {
    const s = this.read();
    const byId = new Map(s.q.map((r) => [r.i, r]));
    const lease = release ? 0 : this.now() + LEASE_MS;
    for (const p of parcels) {
      const r = byId.get(p.id);
      if (p.stored && !this.mine(r)) continue;
      if (r) Object.assign(r, { o: this.page, l: lease, d: p.item as object });
      else s.q.push({ i: p.id, k: kind, t: this.now(), n: 0, o: this.page, l: lease, d: p.item as object });
      p.stored = true;
    }
    this.write(s);
  }

  /**
   * Marks as this page's the items no running page owns (released, or lease run out); returns how many. Read them
   * back with {@link claimed} after {@link CLAIM_CHECK_MS}.
   */
  claim(): number {
    const s = this.read();
    const now = this.now();
    for (const r of s.q) {
      // This page's own leased items are in its memory already.
      if (r.l === 0 || (r.l <= now && r.o !== this.page)) {
        r.o = this.page;
        r.l = now + LEASE_MS;
        this.claiming.add(r.i);
      }
    }
    if (this.claiming.size > 0) this.write(s);
    return this.claiming.size;
  }

  /** The claimed items that are still this page's (another page's concurrent claim may have won). */
  claimed(): StoredItem[] {
    const ids = this.claiming;
    this.claiming = new Set();
    return this.read().q.filter((r) => ids.has(r.i) && this.mine(r));
  }

  /** Extends this page's leases (called with the heartbeat; writes at most every third of a lease). */
  refresh(): void {
    const now = this.now();
    if (now - this.refreshedAt < LEASE_MS / 3) return;
    this.refreshedAt = now;
    const s = this.read();
    const held = s.q.filter((r) => this.mine(r) && r.l > 0);
    for (const r of held) r.l = now + LEASE_MS;
    if (held.length > 0) this.write(s);
  }

  /** Forgets everything stored (opt-out, consent withdrawn): other tabs' items too — the choice is the browser's. */
  clear(): void {
    this.kv.remove(OFFLINE_KEY);
  }
}
