/**
 * Sealed replay chunks on their way to `POST /api/observer/replay-events?session_id=…&seq=…`: gzipped (when the
 * browser can), sent one at a time in `seq` order, retried with backoff, bounded in memory. A chunk's JSON is fixed
 * when it is sealed, so whatever path it takes (normal send, keepalive, sessionStorage and the next page) the
 * server only ever sees one content for a `(session_id, seq)` — re-sending it is idempotent there.
 */

import { retryDelay } from '../backoff';
import { KeepaliveBudget, planKeepalive } from '../keepalive';
import type { Logger } from '../log';
import type { SpilledChunk, Spill } from '../spill';
import type { Body, Post, SendResult } from '../transport';
import { bodySize } from '../transport';
import { fromBase64, gzip as gzipText, toBase64 } from './compress';

export interface Chunk {
  sid: string;
  seq: number;
  uid?: string;
  /** The JSON array of rrweb events, until it has been gzipped. */
  json?: string;
  gz?: Uint8Array;
  /** A copy is kept in the spill (remove it when this chunk is delivered). */
  spilled?: boolean;
}

export interface OutboxDeps {
  post: Post;
  /** Observer's base URL, without trailing slash. */
  endpoint: string;
  key?: string;
  log: Logger;
  spill: Spill;
  gzip?: (text: string) => Promise<Uint8Array | undefined>;
  random?: () => number;
  /** Bound of the chunks held in memory, in bytes (JSON characters or gzip bytes). */
  maxBytes?: number;
  maxAttempts?: number;
}

export const OUTBOX_MAX_BYTES = 16 * 1024 * 1024;

export function chunkBody(chunk: Chunk): Body {
  return chunk.gz || chunk.json || '';
}

export function chunkUrl(endpoint: string, chunk: Chunk, key?: string): string {
  let url = `${endpoint}/api/observer/replay-events?session_id=${encodeURIComponent(chunk.sid)}&seq=${chunk.seq}`;
  if (chunk.uid) url += `&user_id=${encodeURIComponent(chunk.uid)}`;
  if (key) url += `&key=${encodeURIComponent(key)}`;
  return url;
}

export function toSpilled(chunk: Chunk): SpilledChunk {
  const out: SpilledChunk = { s: chunk.sid, q: chunk.seq };
  if (chunk.uid) out.u = chunk.uid;
  if (chunk.gz) out.g = toBase64(chunk.gz);
  else out.j = chunk.json;
  return out;
}

export function fromSpilled(spilled: SpilledChunk): Chunk | undefined {
  const chunk: Chunk = { sid: spilled.s, seq: spilled.q, uid: spilled.u, spilled: true };
  if (spilled.g !== undefined) {
    chunk.gz = fromBase64(spilled.g);
    if (!chunk.gz) return undefined;
  } else chunk.json = spilled.j;
  return chunk;
}

export class ReplayOutbox {
  private waiting: Chunk[] = [];
  private current: Chunk | null = null;
  /** Whether the current chunk's request has gone out (otherwise it is still being gzipped). */
  private currentSent = false;
  private running: Promise<boolean> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private closed = false;
  private readonly gzip: (text: string) => Promise<Uint8Array | undefined>;
  private readonly random: () => number;

  constructor(private readonly deps: OutboxDeps) {
    this.gzip = deps.gzip || gzipText;
    this.random = deps.random || Math.random;
  }

  get size(): number {
    return this.waiting.length + (this.current ? 1 : 0);
  }

  /** Forgets every waiting chunk (consent withdrawn, opt-out); a request in flight is not recalled. */
  clear(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.closed = true;
    this.waiting = [];
  }

  add(chunk: Chunk): void {
    if (this.closed) return;
    this.waiting.push(chunk);
    this.bound();
    this.pump();
  }

  /** Chunks from the spill go first (they are older), skipping any this page still holds. */
  restore(spilled: readonly SpilledChunk[]): void {
    const held = new Set(this.waiting.concat(this.current ? [this.current] : []).map((c) => c.sid + ':' + c.seq));
    const chunks: Chunk[] = [];
    for (const s of spilled) {
      const chunk = fromSpilled(s);
      if (chunk && !held.has(chunk.sid + ':' + chunk.seq)) chunks.push(chunk);
    }
    if (chunks.length === 0) return;
    chunks.sort((a, b) => a.seq - b.seq);
    this.waiting = chunks.concat(this.waiting);
    this.bound();
    this.pump();
  }

  private bound(): void {
    const max = this.deps.maxBytes || OUTBOX_MAX_BYTES;
    let total = this.waiting.reduce((n, c) => n + bodySize(chunkBody(c)), 0);
    let dropped = 0;
    while (total > max && this.waiting.length > 1) {
      const oldest = this.waiting.shift() as Chunk;
      total -= bodySize(chunkBody(oldest));
      dropped++;
    }
    if (dropped > 0) this.deps.log.warn(`replay: dropped ${dropped} unsent chunk(s), over ${max} bytes waiting`);
  }

  private pump(): void {
    if (this.running || this.retryTimer !== undefined || this.waiting.length === 0) return;
    this.sendNext().then(
      () => this.pump(),
      () => undefined,
    );
  }

  private sendNext(): Promise<boolean> {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.running) return this.running;
    const chunk = this.waiting.shift();
    if (!chunk) return Promise.resolve(true);
    this.current = chunk;
    this.currentSent = false;
    const run = async (): Promise<boolean> => {
      if (!chunk.gz && chunk.json !== undefined) {
        const gz = await this.gzip(chunk.json);
        if (gz) {
          chunk.gz = gz;
          chunk.json = undefined;
        }
      }
      this.currentSent = true;
      const result = await this.deps.post(chunkUrl(this.deps.endpoint, chunk, this.deps.key), chunkBody(chunk), false);
      return this.settle(chunk, result);
    };
    const done = run()
      .catch(() => false)
      .then((ok) => {
        this.current = null;
        this.running = null;
        return ok;
      });
    this.running = done;
    return done;
  }

  private settle(chunk: Chunk, result: SendResult): boolean {
    const { log } = this.deps;
    if (this.closed) return false;
    if (result.ok) {
      this.attempt = 0;
      if (chunk.spilled) this.deps.spill.removeChunk(chunk.sid, chunk.seq);
      log.debug(`replay: sent chunk seq=${chunk.seq} (${bodySize(chunkBody(chunk))} bytes${chunk.gz ? ', gzip' : ''})`);
      return true;
    }
    if (result.retry) {
      this.attempt++;
      if (this.attempt >= (this.deps.maxAttempts || 10)) {
        log.warn(`replay: dropped chunk seq=${chunk.seq} after ${this.attempt} attempts`);
        this.attempt = 0;
        return false;
      }
      this.waiting.unshift(chunk);
      this.waiting.sort((a, b) => a.seq - b.seq);
      log.warnOnce('unreachable', `Observer did not accept replay chunks (status ${result.status || 'network error'}); retrying in the background`);
      if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, retryDelay(this.attempt - 1, result.retryAfterMs, this.random));
      return false;
    }
    this.attempt = 0;
    log.warnOnce(`refused-replay-${result.status}`, `Observer refused replay chunk seq=${chunk.seq} with status ${result.status}; not retrying`, result.body);
    return false;
  }

  /** Sends every waiting chunk now (ignoring backoff); true when all were delivered. Never rejects. */
  async flush(): Promise<boolean> {
    let ok = true;
    for (let rounds = 0; rounds < 100_000; rounds++) {
      if (this.running) {
        if (!(await this.running)) ok = false;
        continue;
      }
      if (this.waiting.length === 0 || !ok) break;
      if (!(await this.sendNext())) ok = false;
    }
    return ok && this.size === 0;
  }

  /**
   * The page is being hidden or unloaded. Waiting chunks (and the current one, if it is still being gzipped) go
   * out with `keepalive` when they fit into the budget; the others are returned for the spill and leave memory.
   * A chunk whose request is already out is also returned, as insurance: leaving the page may cancel that request,
   * and sending it again later is harmless.
   */
  drainForHide(budget: KeepaliveBudget): SpilledChunk[] {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const spilled: SpilledChunk[] = [];
    const candidates = this.waiting;
    this.waiting = [];
    const current = this.current;
    if (current && this.currentSent) {
      current.spilled = true;
      spilled.push(toSpilled(current));
    } else if (current) {
      candidates.unshift(current);
    }
    const sizes = candidates.map((c) => bodySize(chunkBody(c)));
    const fits = new Set(planKeepalive(sizes, budget.remaining));
    candidates.forEach((chunk, i) => {
      if (!fits.has(i) || !budget.tryReserve(sizes[i])) {
        chunk.spilled = true;
        spilled.push(toSpilled(chunk));
        return;
      }
      this.deps
        .post(chunkUrl(this.deps.endpoint, chunk, this.deps.key), chunkBody(chunk), true)
        .then((result) => {
          budget.release(sizes[i]);
          // Still alive (only hidden): a retriable failure goes back to the queue. The current chunk is
          // handled by its own request.
          if (!result.ok && result.retry && chunk !== this.current) this.settle(chunk, result);
        })
        .catch(() => budget.release(sizes[i]));
    });
    return spilled;
  }
}
