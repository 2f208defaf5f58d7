/** One running SDK: wires session, queues, replay, automatic tracking and the page lifecycle together. */

import { watchErrors, type UncaughtInfo } from './autotrack/errors';
import type { RecordPlugin } from './capture/console';
import { watchNetwork, type NetworkRecord } from './capture/network';
import { watchVitals, type WebVital, type WebVitalsApi } from './capture/vitals';
import { watchNavigation } from './autotrack/navigation';
import type { Settings } from './config';
import { applyBeforeSend, type ItemKind } from './control/before-send';
import { CLAIM_CHECK_MS, OfflineStore } from './control/offline';
import { KeepaliveBudget } from './keepalive';
import { createLogger, type Logger } from './log';
import {
  boundedObject,
  describeError,
  LIMITS,
  optionalDimension,
  optionalText,
  stripHash,
  truncate,
  type AnalyticsEvent,
  type ErrorReport,
} from './payload';
import { BatchQueue } from './queue';
import { ReplayOutbox } from './replay/outbox';
import { DEFAULT_RECORDER_SETTINGS, Recorder } from './replay/recorder';
import type { RecordFn } from './replay/types';
import { HANDOVER_MS, HEARTBEAT_MS, Session, SESSION_KEY, VISITOR_KEY } from './session';
import { Spill } from './spill';
import { safeStore, type KeyValueStore } from './storage';
import { createFetchPost, type Post } from './transport';

/** A page view waits this long after a History API navigation, so the app can set the new title. */
const PAGE_VIEW_DELAY_MS = 100;
/** After the page was hidden, still alive this much later means it was only hidden (tab switch), not left. */
const STILL_ALIVE_MS = 1000;
/** Identical errors within this window are reported once (an error thrown in a loop). */
const ERROR_DEDUPE_MS = 1000;

export interface ClientDeps {
  win: Window;
  post?: Post;
  loadRecord: () => Promise<RecordFn | undefined>;
  /** rrweb's console record plugin factory (with the replay bundle); absent: no console in the replay. */
  loadConsolePlugin?: () => Promise<((levels: readonly string[]) => RecordPlugin) | undefined>;
  /** Google's web-vitals; absent or resolving undefined: no `web_vital` events. */
  loadWebVitals?: () => Promise<WebVitalsApi | undefined>;
}

export class Client {
  readonly log: Logger;
  private readonly session: Session;
  private readonly spill: Spill;
  private readonly errors: BatchQueue<ErrorReport>;
  private readonly events: BatchQueue<AnalyticsEvent>;
  private readonly outbox: ReplayOutbox;
  private readonly budget = new KeepaliveBudget();
  private readonly tab: KeyValueStore;
  private readonly browser: KeyValueStore;
  private readonly store: OfflineStore;
  /** Shut down (consent withdrawn, opt-out): timers that were already set do nothing. */
  private off = false;
  /** Left (`pagehide`) and not restored: a dying page may still get events (`online`) but must not claim items. */
  private left = false;
  private recorder: Recorder | undefined;
  private recorderReady: Promise<void> = Promise.resolve();
  private adopting: Promise<void> = Promise.resolve();
  private lastPageUrl: string | undefined;
  /** The URL of the page load (or back/forward cache restore) that Web Vitals belong to. */
  private vitalsUrl: string | undefined;
  private pageViewTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly recentErrors = new Map<string, number>();
  private readonly cleanups: Array<() => void> = [];

  constructor(
    private readonly settings: Settings,
    private readonly deps: ClientDeps,
  ) {
    const win = deps.win;
    this.log = createLogger(settings.debug);
    const tab = (this.tab = safeStore(() => win.sessionStorage));
    const browser = (this.browser = safeStore(() => win.localStorage));
    if (!tab.persistent) this.log.debug('sessionStorage unavailable: session and replay continuity limited to this page');
    this.session = new Session(tab, browser, {
      sampleRate: settings.replay.sampleRate,
      pageStart: pageStartTime(win),
      discarded: (win.document as Document & { wasDiscarded?: boolean }).wasDiscarded === true,
    });
    this.spill = new Spill(tab);
    // Without localStorage, the tab's sessionStorage still carries unsent items to the tab's next page load.
    this.store = new OfflineStore(browser.persistent ? browser : tab, this.session.pageId, this.log);
    const post = deps.post || createFetchPost(win.fetch ? win.fetch.bind(win) : undefined);
    const keyQuery = settings.key ? `?key=${encodeURIComponent(settings.key)}` : '';
    // Nothing leaves with a provisional session id: a pending start settles before the first batch is taken.
    const beforeSend = () => this.settleSession();
    const common = { post, log: this.log, beforeSend, store: this.store };
    this.errors = new BatchQueue<ErrorReport>('errors', { ...common, url: `${settings.endpoint}/api/observer/errors${keyQuery}`, admit: (item) => this.admit('error', item) });
    this.events = new BatchQueue<AnalyticsEvent>('events', { ...common, url: `${settings.endpoint}/api/observer/events${keyQuery}`, admit: (item) => this.admit('event', item) });
    this.session.onAdopt = (from, to) => {
      const restamp = <T extends { session_id?: string }>(item: T): T => (item.session_id === from ? { ...item, session_id: to } : item);
      this.errors.update(restamp);
      this.events.update(restamp);
    };
    this.outbox = new ReplayOutbox({ post, endpoint: settings.endpoint, key: settings.key, log: this.log, spill: this.spill });
  }

  start(): void {
    const { win } = this.deps;
    const { settings, session } = this;
    // What a previous page of this tab (or, for errors and events, of the origin) could not send goes first.
    this.reclaimSpill();
    this.adoptStored();
    this.log.debug(
      `session ${session.id}${session.isPending ? ' (provisional: another page holds the tab\'s session)' : ''}, visitor ${session.visitorId}, replay ${settings.replay.enabled && session.sampled ? 'recorded' : 'off'}`,
    );
    this.scheduleSettle();
    if (settings.autoTrack.errors) {
      this.cleanups.push(watchErrors(win, (info) => this.onUncaught(info)));
    }
    if (settings.replay.enabled && session.sampled) this.record();
    if (settings.network.enabled) {
      this.cleanups.push(
        watchNetwork(win, {
          ignore: (url) => this.ignoresUrl(url),
          onRequest: (record, startedAt, aborted) => this.onRequest(record, startedAt, aborted),
        }),
      );
    }
    if (settings.webVitals && this.deps.loadWebVitals) {
      this.vitalsUrl = this.currentUrl();
      const load = this.deps.loadWebVitals;
      void watchVitals(load, (vital) => this.trackVital(vital)).then((ok) => {
        if (!ok) this.log.debug('web-vitals not available (core build without window.webVitals): no Web Vitals');
      });
    }
    if (settings.autoTrack.pageViews) {
      this.trackPageView(win.document.referrer);
      this.cleanups.push(watchNavigation(win, () => this.onNavigate()));
    }
    this.watchLifecycle();
  }

  // ---- replay control ---------------------------------------------------------------------------------------

  private record(): void {
    if (!this.recorder) {
      const { replay } = this.settings;
      this.recorder = new Recorder(this.session, this.outbox, this.log, {
        ...DEFAULT_RECORDER_SETTINGS,
        maskAllInputs: replay.maskAllInputs,
        blockSelector: replay.blockSelector,
        maskTextSelector: replay.maskTextSelector,
      });
    }
    this.recorderReady = this.recorder.start(this.deps.loadRecord, () => this.loadPlugins());
  }

  /** `replay.start()`: records this session from now on (whatever the sampling said), with a new full snapshot. */
  startReplay(): void {
    this.session.setSampled(true);
    this.record();
  }

  /** `replay.stop()`: stops recording for the rest of the session and sends what was recorded. */
  stopReplay(): Promise<boolean> {
    this.session.setSampled(false);
    if (this.recorder) this.recorder.stop();
    return this.outbox.flush();
  }

  // ---- consent ----------------------------------------------------------------------------------------------

  /**
   * Stops everything at once and forgets what is unsent and the ids (consent withdrawn, opt-out): rrweb stops, the
   * queues, the spill and the offline store are emptied, listeners and timers go. A request in flight is not
   * recalled.
   */
  shutdown(): void {
    this.off = true;
    for (const cleanup of this.cleanups) {
      try {
        cleanup();
      } catch {
        // keep going
      }
    }
    if (this.pageViewTimer !== undefined) clearTimeout(this.pageViewTimer);
    if (this.recorder) this.recorder.discard();
    this.errors.clear();
    this.events.clear();
    this.outbox.clear();
    this.spill.take();
    this.store.clear();
    this.tab.remove(SESSION_KEY);
    this.browser.remove(VISITOR_KEY);
  }

  // ---- page lifecycle -------------------------------------------------------------------------------------

  private watchLifecycle(): void {
    const { win } = this.deps;
    const doc = win.document;
    const guard = (fn: () => void) => () => {
      try {
        fn();
      } catch (e) {
        this.log.warn('lifecycle handler failed', e);
      }
    };
    const beat = guard(() => {
      this.session.heartbeat(doc.visibilityState === 'hidden');
      this.store.refresh();
    });
    const onVisibility = guard(() => {
      beat();
      if (doc.visibilityState === 'hidden') this.onHide(false);
      else this.reclaimSpill();
    });
    const onPageHide = guard(() => this.onHide(true));
    const onPageShow = (event: Event) =>
      guard(() => {
        if ((event as PageTransitionEvent).persisted) this.onRestore();
      })();
    // Back online: what waits here, and what pages closed while offline left behind, goes now.
    const onOnline = guard(() => {
      this.adoptStored();
      this.errors.wake();
      this.events.wake();
    });
    doc.addEventListener('visibilitychange', onVisibility);
    win.addEventListener('pagehide', onPageHide);
    win.addEventListener('pageshow', onPageShow);
    win.addEventListener('online', onOnline);
    // The live mark's heartbeat (browsers slow this down in hidden pages and stop it in the back/forward cache).
    beat();
    const heartbeat = setInterval(beat, HEARTBEAT_MS);
    this.cleanups.push(() => {
      clearInterval(heartbeat);
      doc.removeEventListener('visibilitychange', onVisibility);
      win.removeEventListener('pagehide', onPageHide);
      win.removeEventListener('pageshow', onPageShow);
      win.removeEventListener('online', onOnline);
    });
  }

  /**
   * Hidden (tab switch, minimise) or leaving (`pagehide`): what is queued goes out with `keepalive` within the
   * budget, in order errors, events, replay (errors and events not while offline). Errors and events that do not
   * go stay in the offline store (control/offline.ts), released for any page of the origin when leaving; replay
   * chunks go to the tab's sessionStorage spill. If the page is still alive a moment later, it takes the spill
   * back and sends it normally.
   */
  private onHide(leaving: boolean): void {
    this.settleSession();
    this.firePendingPageView();
    if (this.recorder) this.recorder.seal();
    const errors = this.errors.drainForHide(this.budget, leaving);
    const events = this.events.drainForHide(this.budget, leaving);
    const replay = this.outbox.drainForHide(this.budget);
    if (errors.length + events.length > 0) this.log.debug(`page ${leaving ? 'left' : 'hidden'}: kept ${errors.length} errors, ${events.length} events for later`);
    if (replay.length > 0) {
      const { dropped, persisted } = this.spill.save({ errors: [], events: [], replay });
      this.log.debug(`page ${leaving ? 'left' : 'hidden'}: kept ${replay.length} replay chunks for later`);
      if (dropped > 0) this.log.warn(`sessionStorage bound reached: dropped ${dropped} unsent items`);
      if (!persisted) this.log.warnOnce('spill-memory', 'sessionStorage refused the unsent data: it is lost if the page is left');
    }
    if (leaving) this.left = true;
    if (leaving) this.session.release();
    else setTimeout(() => this.reclaimSpill(), STILL_ALIVE_MS);
  }

  /**
   * Takes over the errors and events that no running page owns (pages closed while offline, or that crashed):
   * claimed now, read back a moment later, and queued if the claim held (control/offline.ts).
   */
  private adoptStored(): void {
    if (this.left || this.store.claim() === 0) return;
    // flush() waits for it: what is being taken over counts as queued.
    this.adopting = new Promise((resolve) => setTimeout(resolve, CLAIM_CHECK_MS)).then(() => {
      if (this.off) return;
      try {
        const items = this.store.claimed();
        for (const queue of [this.errors, this.events] as Array<BatchQueue<object>>) {
          const mine = items.filter((r) => r.k === queue.name);
          queue.restore(
            mine.map((r) => r.d),
            mine.map((r) => r.i),
          );
        }
        if (items.length > 0) this.log.debug(`sending ${items.length} errors and events kept by earlier pages`);
      } catch (e) {
        this.log.warn('taking over stored items failed', e);
      }
    });
  }

  /** Back from the back/forward cache: this page continues (or, if another page took over, starts) the session. */
  private onRestore(): void {
    this.left = false;
    const claimed = this.session.claim();
    if (claimed !== 'continued') this.log.debug(`session ${this.session.id} (${claimed} after restore)`);
    this.scheduleSettle();
    this.reclaimSpill();
    this.adoptStored();
    if (this.recorder) this.recorder.takeFullSnapshot();
    if (this.settings.autoTrack.pageViews) this.trackPageView(this.deps.win.document.referrer);
    if (this.vitalsUrl !== undefined) this.vitalsUrl = this.currentUrl();
  }

  /** A pending session start settles at the latest {@link HANDOVER_MS} after it began. */
  private scheduleSettle(): void {
    if (!this.session.isPending) return;
    setTimeout(() => {
      if (this.off) return;
      try {
        this.settleSession();
      } catch (e) {
        this.log.warn('session settle failed', e);
      }
    }, HANDOVER_MS);
  }

  /** Ends a pending session start (see session.ts): continue the previous page's session if it was released. */
  private settleSession(): void {
    if (!this.session.isPending) return;
    const continued = this.session.settle();
    this.log.debug(continued ? `session ${this.session.id} continued (the previous page released it late)` : `session ${this.session.id} (new: another page holds the tab's session)`);
  }

  private reclaimSpill(): void {
    if (this.off) return;
    const data = this.spill.take();
    const total = data.errors.length + data.events.length + data.replay.length;
    if (total === 0) return;
    this.log.debug(`sending ${total} items kept from a previous page`);
    this.errors.restore(data.errors as ErrorReport[]);
    this.events.restore(data.events as AnalyticsEvent[]);
    this.outbox.restore(data.replay);
  }

  // ---- events -----------------------------------------------------------------------------------------------

  /** What is queued of an error or event: nothing when this session is sampled out, else what `beforeSend` says. */
  private admit<T extends object>(kind: ItemKind, item: T): T | null {
    const rate = this.settings.sampleRate[kind === 'error' ? 'errors' : 'events'];
    if (!(this.session.draw < rate)) return null;
    return applyBeforeSend(this.settings.beforeSend, item, kind, this.log);
  }

  private currentUrl(): string {
    return truncate(stripHash(this.deps.win.location.href), LIMITS.url);
  }

  private ids(): Pick<AnalyticsEvent, 'session_id' | 'visitor_id' | 'user_id'> {
    return { session_id: this.session.id, visitor_id: this.session.visitorId, user_id: this.session.userId };
  }

  private withService(extra?: unknown): Record<string, unknown> | undefined {
    const base = this.settings.service ? { service: this.settings.service } : {};
    const merged = extra && typeof extra === 'object' && !Array.isArray(extra) ? { ...base, ...(extra as object) } : base;
    return Object.keys(merged).length > 0 ? boundedObject(merged) : undefined;
  }

  private trackPageView(referrer: string): void {
    const { win } = this.deps;
    const url = this.currentUrl();
    this.lastPageUrl = url;
    const screen = win.screen || ({} as Screen);
    this.events.push({
      type: 'page_view',
      url,
      referrer: optionalText(stripHash(referrer || ''), LIMITS.url),
      title: optionalText(win.document.title, LIMITS.title),
      screen_width: optionalDimension(screen.width),
      screen_height: optionalDimension(screen.height),
      language: optionalText(win.navigator && win.navigator.language, LIMITS.language),
      ...this.ids(),
      timestamp: Date.now(),
      properties: this.withService(),
    });
  }

  /**
   * A page view for the current URL, unless one is pending or the last one was for this URL: a router hook
   * (sdk/src/solid) and the History API autotrack can both report one navigation, and it counts once.
   */
  pageView(): void {
    this.onNavigate();
  }

  private onNavigate(): void {
    // Hash-only changes (in-page anchors) are not page views; redirect chains settle into one.
    if (this.pageViewTimer !== undefined || this.currentUrl() === this.lastPageUrl) return;
    this.pageViewTimer = setTimeout(() => this.firePendingPageView(), PAGE_VIEW_DELAY_MS);
  }

  private firePendingPageView(): void {
    if (this.pageViewTimer === undefined) return;
    clearTimeout(this.pageViewTimer);
    this.pageViewTimer = undefined;
    try {
      // The first page view of a page (autotrack off, a router hook reports it) keeps the document's referrer.
      if (this.currentUrl() !== this.lastPageUrl) this.trackPageView(this.lastPageUrl === undefined ? this.deps.win.document.referrer : this.lastPageUrl);
    } catch (e) {
      this.log.warn('page view failed', e);
    }
  }

  track(name: unknown, properties?: unknown): void {
    const eventName = typeof name === 'string' ? name.trim() : '';
    if (eventName === '') {
      this.log.warn('track() needs a non-empty event name');
      return;
    }
    this.events.push({
      type: 'custom',
      name: truncate(eventName, LIMITS.name),
      url: this.currentUrl(),
      ...this.ids(),
      timestamp: Date.now(),
      properties: this.withService(properties),
    });
  }

  identify(userId: unknown): void {
    const id = userId === null || userId === undefined || userId === '' ? undefined : truncate(String(userId), LIMITS.userId);
    this.session.setUser(id);
    if (this.recorder) this.recorder.addIdentify(id);
    this.log.debug(id ? `identified as ${id}` : 'user id cleared');
  }

  private trackVital(vital: WebVital): void {
    this.events.push({
      type: 'web_vital',
      ...vital,
      url: this.vitalsUrl || this.currentUrl(),
      ...this.ids(),
      timestamp: Date.now(),
      properties: this.withService(),
    });
  }

  // ---- capture: console and network ---------------------------------------------------------------------------

  private async loadPlugins(): Promise<unknown[]> {
    const { console: options } = this.settings;
    if (!options.enabled || !this.deps.loadConsolePlugin || options.levels.length === 0) return [];
    const plugin = await this.deps.loadConsolePlugin();
    if (!plugin) {
      this.log.debug('no console capture in the core build');
      return [];
    }
    return [plugin(options.levels)];
  }

  /** Observer's own requests and `ignoreUrls` are neither recorded nor reported. */
  private ignoresUrl(url: string): boolean {
    if (url.startsWith(this.settings.endpoint + '/api/observer/')) return true;
    return this.settings.network.ignoreUrls.some((rule) => (typeof rule === 'string' ? url.includes(rule) : rule.test(url)));
  }

  /** A request finished: recorded in the replay where it started, and reported when it failed. */
  private onRequest(record: NetworkRecord, startedAt: number, aborted: boolean): void {
    if (this.recorder) this.recorder.addCustom('network', record, startedAt);
    const options = this.settings.network;
    if (!options.recordErrors || aborted) return;
    const noResponse = record.status === 0 && record.error !== undefined;
    if (!noResponse && record.status < options.errorStatusFrom) return;
    const type = noResponse ? 'NetworkError' : 'HttpError';
    const message = `${record.method} ${record.url} failed: ${noResponse ? record.error : record.status}`;
    const extra: Record<string, unknown> = { mechanism: record.initiator, method: record.method, url: record.url, status: record.status, duration_ms: record.duration_ms };
    this.captureError({ name: type, message }, extra, undefined);
  }

  // ---- errors -----------------------------------------------------------------------------------------------

  private onUncaught(info: UncaughtInfo): void {
    const extra: Record<string, unknown> = { mechanism: info.mechanism };
    if (info.filename) extra.filename = info.filename;
    if (info.lineno) extra.lineno = info.lineno;
    if (info.colno) extra.colno = info.colno;
    let error = info.error;
    if (error === undefined && info.mechanism === 'onerror') error = { message: info.message || 'Script error.' };
    if (info.mechanism === 'unhandledrejection' && (error === null || typeof error !== 'object')) {
      const d = describeError(error);
      error = { name: 'UnhandledRejection', message: d.message };
    }
    this.captureError(error, extra, undefined);
  }

  captureException(error: unknown, context?: unknown): void {
    this.captureError(error, { mechanism: 'captureException' }, context);
  }

  private captureError(error: unknown, extra: Record<string, unknown>, context: unknown): void {
    const d = describeError(error);
    const now = Date.now();
    const key = `${d.type}|${d.message}|${(d.stack || '').slice(0, 500)}`;
    const last = this.recentErrors.get(key);
    this.recentErrors.set(key, now);
    if (last !== undefined && now - last < ERROR_DEDUPE_MS) return;
    if (this.recentErrors.size > 100) this.recentErrors.clear();

    const ctx = this.withService(context && typeof context === 'object' && !Array.isArray(context) ? { ...extra, ...(context as object) } : extra);
    const message = truncate(d.message, LIMITS.message);
    const type = optionalText(d.type, LIMITS.type);
    const stack = optionalText(d.stack, LIMITS.stack);
    const sent = this.errors.push({
      message,
      type,
      stack,
      url: this.currentUrl(),
      timestamp: now,
      ...this.ids(),
      release: this.settings.release,
      environment: this.settings.environment,
      context: ctx,
    });
    // The replay marks what was sent, as beforeSend left it (a dropped or sampled-out error is not marked).
    if (sent && this.recorder) this.recorder.addError(sent);
  }

  // ---- flush ------------------------------------------------------------------------------------------------

  /** Sends everything queued now; resolves true when all of it was delivered. Never rejects. */
  async flush(): Promise<boolean> {
    try {
      this.firePendingPageView();
      this.settleSession();
      await Promise.all([this.recorderReady, this.adopting]);
      if (this.recorder) this.recorder.seal();
      const results = await Promise.all([this.errors.flush(), this.events.flush(), this.outbox.flush()]);
      return results.every(Boolean);
    } catch (e) {
      this.log.warn('flush failed', e);
      return false;
    }
  }
}

/** When this page started loading, in ms since the epoch (the clock `Date.now()` uses). */
function pageStartTime(win: Window): number {
  const now = Date.now();
  try {
    // performance.now() counts from the navigation start; `performance.timeOrigin` can drift from Date.now().
    const perf = win.performance;
    const elapsed = perf && typeof perf.now === 'function' ? perf.now() : 0;
    return elapsed > 0 && elapsed < now ? now - elapsed : now;
  } catch {
    return now;
  }
}
