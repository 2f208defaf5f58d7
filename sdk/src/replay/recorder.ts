/**
 * Records the page with rrweb and cuts the event stream into chunks: after ~5 s, at ~512 KB of JSON, before every
 * checkout (so a chunk that holds a full snapshot starts with it), and ~1 s after a full snapshot (so the biggest
 * piece is gzipped and on its way early, and fits the keepalive budget if the visitor leaves soon).
 */

import type { Logger } from '../log';
import { LIMITS, truncate } from '../payload';
import type { Session } from '../session';
import type { ReplayOutbox } from './outbox';
import { EVENT_CUSTOM, EVENT_FULL_SNAPSHOT, EVENT_META, type RecordFn, type RrwebEvent } from './types';

export interface RecorderSettings {
  maskAllInputs: boolean;
  blockSelector?: string;
  maskTextSelector?: string;
  /** A full snapshot at least this often. */
  checkoutEveryNms: number;
  /** Seal a chunk when its JSON reaches this many characters. */
  maxChunkChars: number;
  /** Seal a chunk this long after its first event. */
  chunkMs: number;
  /** …or this long after a full snapshot. */
  snapshotChunkMs: number;
}

export const DEFAULT_RECORDER_SETTINGS: Omit<RecorderSettings, 'maskAllInputs'> = {
  checkoutEveryNms: 5 * 60 * 1000,
  maxChunkChars: 512 * 1024,
  chunkMs: 5000,
  snapshotChunkMs: 1000,
};

/** The payload of the rrweb custom event (tag `error`) that marks an error on the replay timeline. */
export interface ReplayErrorPayload {
  message: string;
  type?: string;
  stack?: string;
}

/** The payload of the rrweb custom event (tag `identify`) that records `identify(userId)` in the replay. */
export interface ReplayIdentifyPayload {
  /** null: the user id was cleared. */
  user_id: string | null;
}

export class Recorder {
  private parts: string[] = [];
  /** An `identify` that came before rrweb could take custom events; added after its first full snapshot. */
  private pendingIdentify: ReplayIdentifyPayload | undefined;
  /** The last user id recorded on this page (repeated `identify` calls with the same id are recorded once). */
  private identified: string | null | undefined;
  private chars = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDue = 0;
  private record: RecordFn | undefined;
  private stopRecording: (() => void) | undefined;
  /** The timestamp the custom event being added right now gets (rrweb stamps custom events with the time of the call). */
  private stampNext: number | undefined;
  /** Counts start/stop calls: a start whose rrweb arrives after a later stop (or start) does nothing. */
  private generation = 0;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly session: Session,
    private readonly outbox: ReplayOutbox,
    private readonly log: Logger,
    private readonly settings: RecorderSettings,
    private readonly now: () => number = Date.now,
  ) {}

  get recording(): boolean {
    return this.stopRecording !== undefined;
  }

  /**
   * Starts rrweb (a new Meta + FullSnapshot); does nothing when it runs or is starting. Resolves (never rejects)
   * once recording runs or it is clear that it cannot.
   */
  start(loadRecord: () => Promise<RecordFn | undefined>, loadPlugins?: () => Promise<unknown[]>): Promise<void> {
    if (this.recording || this.starting) return this.starting || Promise.resolve();
    const generation = ++this.generation;
    const starting = this.begin(loadRecord, loadPlugins, generation).then(() => {
      if (this.starting === starting) this.starting = undefined;
    });
    this.starting = starting;
    return starting;
  }

  private async begin(
    loadRecord: () => Promise<RecordFn | undefined>,
    loadPlugins: (() => Promise<unknown[]>) | undefined,
    generation: number,
  ): Promise<void> {
    try {
      const [record, plugins] = await Promise.all([loadRecord(), loadPlugins ? loadPlugins().catch(() => []) : Promise.resolve([])]);
      if (generation !== this.generation) return;
      if (typeof record !== 'function') {
        this.log.warn('replay: rrweb is not available (core build without window.rrweb); not recording');
        return;
      }
      this.record = record;
      const s = this.settings;
      const stop = record({
        emit: (event, isCheckout) => this.onEvent(event, isCheckout),
        maskAllInputs: s.maskAllInputs,
        blockSelector: s.blockSelector,
        maskTextSelector: s.maskTextSelector,
        checkoutEveryNms: s.checkoutEveryNms,
        plugins: plugins.length > 0 ? plugins : undefined,
      });
      this.stopRecording = stop || (() => undefined);
      this.log.debug(`replay: recording session ${this.session.id}`);
    } catch (e) {
      this.log.warn('replay: could not start rrweb', e);
    }
  }

  private onEvent(event: RrwebEvent, isCheckout?: boolean): void {
    try {
      // A checkout starts with a Meta event: seal what came before, so the new chunk opens with Meta + FullSnapshot.
      if (isCheckout && event.type === EVENT_META) this.seal();
      if (this.stampNext !== undefined && event.type === EVENT_CUSTOM) event.timestamp = this.stampNext;
      const json = JSON.stringify(event);
      if (json === undefined) return;
      // rrweb takes custom events only once its first snapshot is done (right after this emit returns).
      if (event.type === EVENT_FULL_SNAPSHOT && this.pendingIdentify) Promise.resolve().then(() => this.addPendingIdentify());
      this.parts.push(json);
      this.chars += json.length + 1;
      if (this.chars >= this.settings.maxChunkChars) {
        this.seal();
        return;
      }
      const wait = event.type === EVENT_FULL_SNAPSHOT ? this.settings.snapshotChunkMs : this.settings.chunkMs;
      const due = this.now() + wait;
      if (this.timer === undefined || due < this.timerDue) {
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timerDue = due;
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.seal();
        }, wait);
      }
    } catch (e) {
      this.log.warn('replay: could not buffer an event', e);
    }
  }

  /** Turns the buffered events into a chunk with the next `seq` and hands it to the outbox. */
  seal(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.parts.length === 0) return;
    const json = '[' + this.parts.join(',') + ']';
    this.parts = [];
    this.chars = 0;
    this.outbox.add({ sid: this.session.id, seq: this.session.nextSeq(), uid: this.session.userId, json });
  }

  /** Marks an error on the replay timeline (rrweb custom event, tag `error`). */
  addError(payload: ReplayErrorPayload): void {
    if (!this.record || !this.record.addCustomEvent || !this.recording) return;
    try {
      const data: ReplayErrorPayload = { message: truncate(payload.message, LIMITS.message) };
      if (payload.type) data.type = payload.type;
      if (payload.stack) data.stack = truncate(payload.stack, LIMITS.replayStack);
      this.record.addCustomEvent('error', data);
    } catch {
      // rrweb refuses custom events before its first snapshot (page still loading): the error is still reported.
    }
  }

  /**
   * Records a custom event (tag and payload as given) at `timestamp` (ms since the epoch) instead of now: a
   * network request is placed on the timeline where it started. Dropped before rrweb's first snapshot.
   */
  addCustom(tag: string, payload: unknown, timestamp?: number): void {
    if (!this.record || !this.record.addCustomEvent || !this.recording) return;
    this.stampNext = timestamp;
    try {
      this.record.addCustomEvent(tag, payload);
    } catch {
      // rrweb refuses custom events before its first snapshot
    } finally {
      this.stampNext = undefined;
    }
  }

  /**
   * Records `identify(userId)` in the replay (rrweb custom event, tag `identify`, payload `{user_id}`), so a
   * player can tell who the session belongs to from the recording. Before rrweb takes custom events (the page
   * is still loading) the latest call waits for the first full snapshot.
   */
  addIdentify(userId: string | undefined): void {
    const payload: ReplayIdentifyPayload = { user_id: userId === undefined ? null : truncate(userId, LIMITS.userId) };
    if (payload.user_id === this.identified) return;
    this.pendingIdentify = payload;
    this.addPendingIdentify();
  }

  private addPendingIdentify(): void {
    const payload = this.pendingIdentify;
    if (!payload || !this.record || !this.record.addCustomEvent || !this.recording) return;
    try {
      this.record.addCustomEvent('identify', payload);
      this.identified = payload.user_id;
      this.pendingIdentify = undefined;
    } catch {
      // Not recording yet (rrweb throws before its first snapshot): it stays pending until then.
    }
  }

  /** A page restored from the back/forward cache starts over with a full snapshot. */
  takeFullSnapshot(): void {
    if (!this.record || !this.record.takeFullSnapshot || !this.recording) return;
    try {
      this.record.takeFullSnapshot(true);
    } catch (e) {
      this.log.warn('replay: could not take a full snapshot', e);
    }
  }

  /** Stops rrweb and seals what was recorded (the outbox sends it). */
  stop(): void {
    this.generation++;
    this.starting = undefined;
    try {
      if (this.stopRecording) this.stopRecording();
    } catch {
      // ignore
    }
    this.stopRecording = undefined;
    this.seal();
  }

  /** Stops rrweb and forgets what was recorded and not sealed yet (consent withdrawn, opt-out). */
  discard(): void {
    this.parts = [];
    this.chars = 0;
    this.stop();
  }
}
