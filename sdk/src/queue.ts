/**
 * Batching delivery of errors and events: a bounded in-memory queue, batches of up to 100 items (or ~512 KiB)
 * sent after ~2 s, one request at a time, retried with backoff on network errors, 408, 429 and 5xx. While the
 * browser says it is offline nothing is sent (and no attempt is counted). With a {@link DurableStore} every batch
 * is written down before it is sent and forgotten after the answer (control/offline.ts).
 */

import { retryDelay } from './backoff';
import { newId } from './ids';
import { KeepaliveBudget, planKeepalive } from './keepalive';
import type { Logger } from './log';
import type { Post, SendResult } from './transport';
import { utf8Length } from './transport';

export interface QueueSettings {
  /** Items per request (the server's `OBSERVER_MAX_BATCH_ITEMS` default is 100). */
  maxItems: number;
  /** Bytes per request (the server allows 1 MiB). */
  maxBatchBytes: number;
  /** How long the first queued item waits for company. */
  lingerMs: number;
  /** Items kept in memory; when full, the oldest is dropped. */
  capacity: number;
  /** Attempts per batch before it is dropped. */
  maxAttempts: number;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  maxItems: 100,
  maxBatchBytes: 512 * 1024,
  lingerMs: 2000,
  capacity: 1000,
  maxAttempts: 10,
};

export interface QueueDeps<T> {
  post: Post;
  /** The full URL to POST batches to (with `?key=` when there is a key). */
  url: string;
  log: Logger;
  random?: () => number;
  /** Called before queued items are taken for sending (the session may settle and re-stamp them, see `update`). */
  beforeSend?: () => void;
  /** Decides, as an item is pushed, what is queued: the item, a scrubbed copy, or null (sampled out, dropped). */
  admit?: (item: T) => T | null;
  /** Where items on their way are written down so that they survive the page (control/offline.ts). */
  store?: DurableStore;
  /** Whether the browser may be online (default: `navigator.onLine !== false`). */
  online?: () => boolean;
}

/** An item with its id, as the queue and its durable store see it. */
export interface Parcel {
  id: string;
  item: unknown;
  /** Written to the durable store at least once (from then on the store decides whether it still exists). */
  stored?: boolean;
}

/** The durable side of a queue (implemented by control/offline.ts `OfflineStore`). */
export interface DurableStore {
  /** A batch is about to be sent: write it down under this page's lease; returns the parcels this page may send. */
  sending<P extends Parcel>(kind: string, parcels: P[]): P[];
  /** Delivered, refused for good, or sent with keepalive: remove. */
  forget(parcels: Parcel[]): void;
  /** Not sent now: keep for later, under this page's lease, or released for any page (`release`). */
  keep(kind: string, parcels: Parcel[], release: boolean): void;
}

/** Items pushed while offline are written down this long after the first of them. */
const KEEP_DELAY_MS = 1000;

const defaultOnline = (): boolean => typeof navigator === 'undefined' || navigator.onLine !== false;

interface Entry<T> extends Parcel {
  item: T;
  json: string;
  bytes: number;
  /** Timestamps already removed after the server refused them (clock skew). */
  retimed?: boolean;
}

/** Splits off the first batch: at most `maxItems` entries and `maxBytes` of body (`[`, `]` and commas included), never empty. */
export function takeBatch<E extends { bytes: number }>(entries: readonly E[], maxItems: number, maxBytes: number): E[] {
  const batch: E[] = [];
  let size = 2;
  for (const entry of entries) {
    if (batch.length >= maxItems) break;
    const add = entry.bytes + (batch.length > 0 ? 1 : 0);
    if (batch.length > 0 && size + add > maxBytes) break;
    batch.push(entry);
    size += add;
  }
  return batch;
}

export function batchBody(entries: ReadonlyArray<{ json: string }>): string {
  return '[' + entries.map((e) => e.json).join(',') + ']';
}

/** Whether a 400 complains only about `timestamp` (the client clock is more than 1 h ahead or 7 days behind). */
export function isTimestampRejection(result: SendResult): boolean {
  if (result.ok || result.retry || result.status !== 400) return false;
  const details = result.body && result.body.details;
  return !!details && details.length > 0 && details.every((d) => d.field === 'timestamp');
}

export class BatchQueue<T extends { timestamp?: number }> {
  private entries: Array<Entry<T>> = [];
  private inflight: Promise<boolean> | null = null;
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  private keepTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  /** The last attempt ended in a network error (Observer unreachable): leaving pages keep items instead of keepalive. */
  private failing = false;
  private closed = false;
  private readonly settings: QueueSettings;
  private readonly random: () => number;
  private readonly online: () => boolean;

  constructor(
    readonly name: string,
    private readonly deps: QueueDeps<T>,
    settings: Partial<QueueSettings> = {},
  ) {
    this.settings = { ...DEFAULT_QUEUE_SETTINGS, ...settings };
    this.random = deps.random || Math.random;
    this.online = deps.online || defaultOnline;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Queues `item` as `admit` lets it through; returns what was queued (null: nothing). */
  push(item: T): T | null {
    const admitted = this.deps.admit ? this.deps.admit(item) : item;
    if (!admitted || this.closed) return null;
    this.enqueue([admitted], false);
    // Offline or failing: written down within a second (one write for a burst), so that a crashed or killed
    // page does not lose it.
    if (this.deps.store && (this.failing || !this.online()) && this.keepTimer === undefined) {
      this.keepTimer = setTimeout(() => {
        this.keepTimer = undefined;
        if (this.deps.store) this.deps.store.keep(this.name, this.entries.filter((e) => !e.stored), false);
      }, KEEP_DELAY_MS);
    }
    this.schedule();
    return admitted;
  }

  /** Forgets everything queued and stops (consent withdrawn, opt-out); answers to requests in flight are ignored. */
  clear(): void {
    this.closed = true;
    this.clearTimers();
    clearTimeout(this.keepTimer);
    this.entries = [];
  }

  /** The browser is back online: send now. */
  wake(): void {
    this.attempt = 0;
    this.clearTimers();
    this.schedule();
  }

  /**
   * Replaces queued items that have not been sent yet with `fn(item)` (when it returns another object): a pending
   * session start that turned out to continue the previous page's session re-stamps its session id this way.
   */
  update(fn: (item: T) => T): void {
    this.entries = this.entries.map((entry) => {
      const item = fn(entry.item);
      if (item === entry.item) return entry;
      const json = JSON.stringify(item);
      return json === undefined ? entry : { ...entry, item, json, bytes: utf8Length(json) };
    });
  }

  private beforeSend(): void {
    try {
      if (this.deps.beforeSend) this.deps.beforeSend();
    } catch (e) {
      this.deps.log.warn(`${this.name}: preparing a send failed`, e);
    }
  }

  /**
   * Puts items back at the front: from a previous page's spill, or (with their `ids`) taken over from the durable
   * store.
   */
  restore(items: readonly T[], ids?: readonly string[]): void {
    if (items.length === 0 || this.closed) return;
    this.enqueue(items, true, ids);
    this.schedule();
  }

  private enqueue(items: readonly T[], front: boolean, ids?: readonly string[]): Array<Entry<T>> {
    const fresh: Array<Entry<T>> = [];
    items.forEach((item, i) => {
      const json = JSON.stringify(item);
      if (json !== undefined) fresh.push({ id: ids ? ids[i] : newId(), stored: !!ids, item, json, bytes: utf8Length(json) });
    });
    this.entries = front ? fresh.concat(this.entries) : this.entries.concat(fresh);
    const over = this.entries.length - this.settings.capacity;
    if (over > 0) {
      this.entries.splice(0, over);
      this.deps.log.warn(`${this.name} queue full (${this.settings.capacity}): dropped the ${over} oldest`);
    }
    return fresh;
  }

  private schedule(): void {
    if (this.inflight || this.retryTimer !== undefined || this.entries.length === 0 || !this.online()) return;
    if (this.entries.length >= this.settings.maxItems) {
      this.kick();
    } else if (this.lingerTimer === undefined) {
      this.lingerTimer = setTimeout(() => this.kick(), this.settings.lingerMs);
    }
  }

  private kick(): void {
    if (this.inflight) return;
    // After a failure a retry timer is set (schedule then waits for it); after a refusal the next batch goes.
    this.sendNext().then(
      () => this.schedule(),
      () => undefined,
    );
  }

  private clearTimers(): void {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.lingerTimer = undefined;
    this.retryTimer = undefined;
  }

  /** Sends the first batch now. Resolves true when it was delivered. */
  private sendNext(): Promise<boolean> {
    this.clearTimers();
    if (this.inflight) return this.inflight;
    if (this.entries.length === 0) return Promise.resolve(true);
    if (!this.online()) return Promise.resolve(false);
    this.beforeSend();
    let batch = takeBatch(this.entries, this.settings.maxItems, this.settings.maxBatchBytes);
    this.entries = this.entries.slice(batch.length);
    // What another page took over meanwhile (or what the store dropped) is not sent from here.
    if (this.deps.store) batch = this.deps.store.sending(this.name, batch);
    if (batch.length === 0) return Promise.resolve(true);
    const done = this.deps
      .post(this.deps.url, batchBody(batch), false)
      .then((result) => this.settle(batch, result))
      .catch(() => false)
      .then((ok) => {
        this.inflight = null;
        return ok;
      });
    this.inflight = done;
    return done;
  }

  /** Handles a batch's outcome; returns whether it was delivered. */
  private settle(batch: Array<Entry<T>>, result: SendResult): boolean {
    const { log, store } = this.deps;
    if (this.closed) return false;
    this.failing = !result.ok && result.status === 0;
    if (result.ok || !result.retry) {
      if (store) store.forget(batch);
    }
    if (result.ok) {
      this.attempt = 0;
      log.debug(`sent ${batch.length} ${this.name}`);
      return true;
    }
    if (result.retry) {
      this.attempt++;
      if (this.attempt >= this.settings.maxAttempts) {
        // With a durable store the batch waits there for a later page load (or the browser coming back online).
        if (store) store.keep(this.name, batch, true);
        log.warn(`${this.name}: ${store ? 'kept' : 'dropped'} ${batch.length} after ${this.attempt} attempts`);
        this.attempt = 0;
        this.schedule();
        return false;
      }
      this.entries = batch.concat(this.entries);
      const delay = retryDelay(this.attempt - 1, result.retryAfterMs, this.random);
      if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
      log.warnOnce('unreachable', `Observer did not accept ${this.name} (status ${result.status || 'network error'}); retrying in the background`);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, delay);
      return false;
    }
    this.attempt = 0;
    if (isTimestampRejection(result) && batch.some((e) => !e.retimed)) {
      // The browser's clock is off by more than the server tolerates: let the server stamp the receive time.
      log.warnOnce('clock', 'Observer refused client timestamps (clock skew); resending without them');
      const retimed = batch.map((e): Entry<T> => {
        const item = { ...e.item };
        delete item.timestamp;
        const json = JSON.stringify(item);
        return { id: e.id, item, json, bytes: utf8Length(json), retimed: true };
      });
      this.entries = retimed.concat(this.entries);
      this.schedule();
      return false;
    }
    log.warnOnce(`refused-${this.name}-${result.status}`, `Observer refused ${this.name} with status ${result.status}; not retrying`, result.body);
    return false;
  }

  /**
   * Sends everything queued now, ignoring backoff, and resolves when done: true when all of it was delivered,
   * false when something failed (it stays queued for retry, or was refused). Never rejects.
   */
  async flush(): Promise<boolean> {
    let ok = true;
    for (let rounds = 0; rounds < 10_000; rounds++) {
      if (this.inflight) {
        if (!(await this.inflight)) ok = false;
        continue;
      }
      if (this.entries.length === 0 || !ok) break;
      if (!(await this.sendNext())) ok = false;
    }
    return ok && this.entries.length === 0;
  }

  /**
   * The page is being hidden or unloaded: sends the queued batches that fit into the keepalive budget with
   * `keepalive: true` (none while offline or failing: a keepalive request's failure is never seen), and returns
   * the items of those that do not. With a durable store these are kept there — under this page's lease when it
   * is only hidden (it stays queued here too), released for the next page load when `leaving`. A batch already
   * in flight is left alone (its lease stands: see control/offline.ts).
   */
  drainForHide(budget: KeepaliveBudget, leaving = true): T[] {
    this.clearTimers();
    // Everything unsent is written down below.
    clearTimeout(this.keepTimer);
    this.keepTimer = undefined;
    if (this.entries.length > 0) this.beforeSend();
    const { store } = this.deps;
    const offline = this.failing || !this.online();
    const batches: Array<Array<Entry<T>>> = [];
    let rest = this.entries;
    while (rest.length > 0) {
      const batch = takeBatch(rest, this.settings.maxItems, this.settings.maxBatchBytes);
      batches.push(batch);
      rest = rest.slice(batch.length);
    }
    this.entries = [];
    const bodies = batches.map(batchBody);
    const fits = new Set(offline ? [] : planKeepalive(bodies.map(utf8Length), budget.remaining));
    const unsent: Array<Entry<T>> = [];
    batches.forEach((batch, i) => {
      const bytes = utf8Length(bodies[i]);
      if (!fits.has(i) || !budget.tryReserve(bytes)) {
        unsent.push(...batch);
        return;
      }
      // A keepalive request's answer may never be seen: sent at most once, never kept for a resend.
      if (store) {
        store.forget(batch);
        for (const e of batch) e.stored = false;
      }
      this.deps
        .post(this.deps.url, bodies[i], true)
        .then((result) => {
          budget.release(bytes);
          // Still alive (the tab was only hidden): failures go back into the queue like any other.
          if (!result.ok) this.settle(batch, result);
        })
        .catch(() => budget.release(bytes));
    });
    if (store && unsent.length > 0) store.keep(this.name, unsent, leaving);
    if (!leaving && store) {
      this.entries = unsent.concat(this.entries);
      this.schedule();
    }
    return unsent.map((e) => e.item);
  }
}
