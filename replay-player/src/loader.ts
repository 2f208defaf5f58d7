// Progressive chunk loading: fetches a session's chunks a few at a time and
// hands their events on strictly in `seq` order, so the player can start
// after the first chunk and grow while it plays.
//
// A chunk that cannot be loaded (after one retry), is not valid, or is
// missing from the manifest's `seq` sequence leaves a gap: the incremental
// events after it would patch a DOM the player never saw, so they are
// skipped until the next full snapshot (type 2, with the Meta before it),
// and the gap is reported for the timeline. The screen keeps the last good
// frame during the gap instead of going blank.
import { ApiFailure } from './api';

export const EventType = { FullSnapshot: 2, IncrementalSnapshot: 3, Meta: 4, Custom: 5, Plugin: 6 } as const;

export interface RrwebEvent {
  type: number;
  timestamp: number;
  data?: any;
  [key: string]: unknown;
}

export interface ChunkInfo {
  seq: number;
  first_timestamp: number;
  last_timestamp: number;
  events: number;
  bytes: number;
}

export interface Manifest {
  session_id: string;
  chunks: ChunkInfo[];
  first_timestamp: number;
  last_timestamp: number;
  duration_ms: number;
  /** Optional (newer servers): the user id, first URL and start time the server knows for the session. */
  user_id?: string | null;
  url?: string | null;
  start?: number | null;
  /** Optional (newer servers): whether the session is still recording, and the highest seq stored. */
  live?: boolean;
  last_seq?: number;
}

/** A stretch of the session that cannot be shown (absolute ms timestamps). */
export interface Gap {
  start: number;
  end: number;
  /** The `seq`s that are missing or could not be loaded. */
  seqs: number[];
}

export interface ErrorMark {
  timestamp: number;
  message: string;
}

export interface LoaderEvents {
  /** Events to play, in order; the first call starts with Meta + FullSnapshot. */
  onEvents(events: RrwebEvent[]): void;
  /** A gap was found or grew (same object, updated in place). */
  onGap(gap: Gap): void;
  /** An rrweb custom event with tag `error`, also from skipped parts. */
  onError(mark: ErrorMark): void;
  /**
   * An rrweb custom event with tag `identify` (the SDK's `identify(userId)`), also from skipped parts, in
   * order; `userId` is null when the id was cleared.
   */
  onIdentify?(userId: string | null, timestamp: number): void;
  /**
   * Every other custom event and every plugin event (console messages, network requests: the side panels),
   * also from skipped parts, in chunk order.
   */
  onActivity?(event: RrwebEvent): void;
  /** Everything up to `timestamp` has been handed on (or is a known gap). */
  onProgress(timestamp: number): void;
  /** A failure no retry can fix (the token stopped working): loading stops. */
  onFatal(failure: ApiFailure): void;
  onDone(): void;
}

export interface LoaderOptions {
  /** Chunks fetched at the same time, and so how far loading runs ahead. */
  concurrency: number;
  /** Extra attempts for a chunk after a network error or 5xx. */
  retries: number;
  retryDelayMs: number;
}

const DEFAULTS: LoaderOptions = { concurrency: 3, retries: 1, retryDelayMs: 500 };

type Fetched = { events: RrwebEvent[] } | { failure: ApiFailure };

export async function loadSession(
  manifest: Manifest,
  fetchChunk: (seq: number) => Promise<unknown>,
  on: LoaderEvents,
  options: Partial<LoaderOptions> = {},
): Promise<void> {
  const loader = new ChunkLoader(manifest.first_timestamp, fetchChunk, on, options);
  if (await loader.feed(manifest.chunks)) loader.finish(manifest.last_timestamp);
}

/**
 * Loads chunks in `seq` order, continuing across calls of {@link feed}, so a
 * live session's later chunks (./live.ts) go through the same gap logic.
 */
export class ChunkLoader {
  private readonly options: LoaderOptions;
  private needFullSnapshot = true;
  private lastTimestamp: number;
  private lastMeta: RrwebEvent | null = null;
  private lastSeq: number | null = null;
  private gap: Gap | null = null;

  constructor(
    first: number,
    private readonly fetchChunk: (seq: number) => Promise<unknown>,
    private readonly on: LoaderEvents,
    options: Partial<LoaderOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    this.lastTimestamp = first;
  }

  /** The highest seq handed on so far (or found missing). */
  get seq(): number | null {
    return this.lastSeq;
  }

  private async attempt(seq: number): Promise<Fetched> {
    const { retries, retryDelayMs } = this.options;
    for (let tries = 0; ; tries++) {
      try {
        const body = await this.fetchChunk(seq);
        if (!isEventArray(body)) return { failure: new ApiFailure('server', `chunk ${seq} is not an rrweb event array`) };
        return { events: body };
      } catch (e) {
        const failure = e instanceof ApiFailure ? e : new ApiFailure('network', String(e));
        const retriable = failure.kind === 'network' || (failure.kind === 'server' && failure.status >= 500);
        if (!retriable || tries >= retries) return { failure };
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs * (tries + 1)));
      }
    }
  }

  private openGap(seqs: number[], until: number): void {
    if (!this.gap) this.gap = { start: this.lastTimestamp, end: until, seqs: [] };
    this.gap.seqs.push(...seqs);
    this.gap.end = Math.max(this.gap.end, until);
    this.needFullSnapshot = true;
    this.on.onGap(this.gap);
  }

  /** Loads `chunks` (those after the last seq handed on); false when loading had to stop (access lost). */
  async feed(manifestChunks: ChunkInfo[]): Promise<boolean> {
    const { concurrency } = this.options;
    const on = this.on;
    const chunks = manifestChunks.filter((c) => this.lastSeq === null || c.seq > this.lastSeq).sort((a, b) => a.seq - b.seq);
    // Chunk i is requested once chunk i - concurrency has been handed on:
    // at most `concurrency` requests in flight and in memory.
    const pending: (Promise<Fetched> | undefined)[] = [];
    let requested = 0;

    for (let i = 0; i < chunks.length; i++) {
      while (requested < chunks.length && requested < i + concurrency) {
        pending[requested] = this.attempt(chunks[requested].seq);
        requested++;
      }
      const chunk = chunks[i];
      const previousSeq = this.lastSeq ?? chunk.seq;
      if (chunk.seq > previousSeq + 1) {
        const missing = [];
        for (let seq = previousSeq + 1; seq < chunk.seq && missing.length < 1000; seq++) missing.push(seq);
        this.openGap(missing, chunk.first_timestamp);
      }
      this.lastSeq = chunk.seq;

      const fetched = await pending[i]!;
      pending[i] = undefined;
      if ('failure' in fetched) {
        if (fetched.failure.isAccess) {
          on.onFatal(fetched.failure);
          return false;
        }
        this.openGap([chunk.seq], chunk.last_timestamp);
        on.onProgress(chunk.last_timestamp);
        continue;
      }

      let events = fetched.events;
      for (const event of events) {
        if (event.type === EventType.Plugin) {
          on.onActivity?.(event);
          continue;
        }
        if (event.type !== EventType.Custom) continue;
        if (event.data?.tag === 'error') {
          on.onError({ timestamp: event.timestamp, message: errorMessage(event.data?.payload) });
        } else if (event.data?.tag === 'identify' && on.onIdentify) {
          const userId: unknown = event.data?.payload?.user_id;
          on.onIdentify(typeof userId === 'string' && userId !== '' ? userId : null, event.timestamp);
        } else {
          on.onActivity?.(event);
        }
      }
      if (this.needFullSnapshot) {
        const full = events.findIndex((e) => e.type === EventType.FullSnapshot);
        if (full < 0) {
          // Nothing here can be drawn without the DOM it patches.
          this.openGap([], chunk.last_timestamp);
          on.onProgress(chunk.last_timestamp);
          continue;
        }
        let from = full;
        if (full > 0 && events[full - 1].type === EventType.Meta) from = full - 1;
        const resumed = events.slice(from);
        if (resumed[0].type !== EventType.Meta) {
          // rrweb sizes its iframe from a Meta event; every FullSnapshot has
          // one right before it, but a cut chunk might not: borrow the last.
          const lastMeta = this.lastMeta;
          resumed.unshift({
            type: EventType.Meta,
            timestamp: resumed[0].timestamp,
            data: { href: lastMeta?.data?.href ?? '', width: lastMeta?.data?.width ?? 1280, height: lastMeta?.data?.height ?? 800 },
          });
        }
        if (this.gap) {
          this.gap.end = resumed[0].timestamp;
          on.onGap(this.gap);
          this.gap = null;
        }
        events = resumed;
        this.needFullSnapshot = false;
      }
      for (const event of events) if (event.type === EventType.Meta) this.lastMeta = event;
      on.onEvents(events);
      this.lastTimestamp = Math.max(this.lastTimestamp, events[events.length - 1].timestamp, chunk.last_timestamp);
      on.onProgress(this.lastTimestamp);
    }
    return true;
  }

  /** No more chunks will come: a gap still open runs to `last`, and loading is done. */
  finish(last: number): void {
    if (this.gap) {
      // Nothing after it could be shown: the gap runs to the end.
      this.gap.end = Math.max(this.gap.end, last);
      this.on.onGap(this.gap);
    }
    this.on.onDone();
  }
}

function isEventArray(body: unknown): body is RrwebEvent[] {
  return (
    Array.isArray(body) &&
    body.length > 0 &&
    body.every((e) => e && typeof e === 'object' && typeof e.type === 'number' && typeof e.timestamp === 'number')
  );
}

function errorMessage(payload: unknown): string {
  if (payload && typeof payload === 'object') {
    const p = payload as Record<string, unknown>;
    const message = typeof p.message === 'string' ? p.message : '';
    const name = typeof p.name === 'string' ? p.name : '';
    if (message) return message.length > 300 ? `${message.slice(0, 300)}…` : message;
    if (name) return name;
  }
  return 'error';
}
