/**
 * Observer browser SDK: errors, analytics events and rrweb session replay, sent to an Observer server.
 *
 * Every public function is safe to call at any time: before `init` it does nothing, and nothing it does — nor any
 * listener or timer it installs — ever throws into the host page.
 */

import { Client } from './client';
import { resolveSettings, type ObserverOptions, type Settings } from './config';
import { loadConsolePlugin } from './capture/console-source';
import { loadWebVitals } from './capture/vitals-source';
import { forgetStored, isOptedOut, setOptOut, watchOptOut } from './control/consent';
import { loadRecord } from './replay/rrweb-source';

export type { AutoTrackOptions, BeforeSend, ConsoleOptions, NetworkOptions, ObserverOptions, ReplayOptions } from './config';
export type { ItemKind } from './control/before-send';
export type { AnalyticsEvent, ErrorReport } from './payload';

declare const __OBSERVER_VERSION__: string;

/** The SDK version. */
export const version: string = typeof __OBSERVER_VERSION__ === 'string' ? __OBSERVER_VERSION__ : 'dev';

/** Marks a page that already runs an Observer SDK (two copies — say script tag and npm — would record twice). */
const RUNNING_FLAG = '__observerSdk';

let client: Client | undefined;
/** The settings of a successful `init`, kept while the SDK waits for consent (or after an opt-out, for `optIn`). */
let configured: Settings | undefined;
/** This page's consent answer (`consent()`), which may come before `init`. */
let consentGiven: boolean | undefined;
/** This page's opt-out choice (also persisted): wins when storage is blocked. */
let optedOut: boolean | undefined;

function warn(message: string, detail?: unknown): void {
  try {
    // eslint-disable-next-line no-console
    if (typeof console !== 'undefined') console.warn('[observer] ' + message, detail === undefined ? '' : detail);
  } catch {
    // ignore
  }
}

/** Starts the SDK. Only the first call counts. */
export function init(options: ObserverOptions): void {
  try {
    if (client) {
      client.log.warn('init() was called again; ignored');
      return;
    }
    if (typeof window === 'undefined' || typeof document === 'undefined') return;
    const settings = resolveSettings(options, window.location.href);
    if (typeof settings === 'string') {
      if (options && options.debug) warn(settings);
      return;
    }
    const flags = window as unknown as Record<string, unknown>;
    if (flags[RUNNING_FLAG]) {
      if (settings.debug) warn('another copy of the Observer SDK already runs on this page; this one stays idle');
      return;
    }
    if (typeof window.fetch !== 'function') {
      if (settings.debug) warn('this browser has no fetch(); the SDK stays idle');
      return;
    }
    flags[RUNNING_FLAG] = true;
    configured = settings;
    watchOptOut(window, () => stop(true));
    boot();
  } catch (e) {
    if (options && options.debug) warn('init failed', e);
  }
}

/** Starts the client once `init` was called, consent allows it and the visitor has not opted out. */
function boot(): void {
  const settings = configured;
  if (client || !settings) return;
  if (isOptedOut(window, optedOut)) {
    if (settings.debug) warn('the visitor opted out: the SDK stays idle');
    return;
  }
  if (consentGiven === false || (settings.consent === 'pending' && consentGiven !== true)) {
    if (settings.debug) warn('waiting for consent: nothing is recorded, stored or sent');
    return;
  }
  client = new Client(settings, { win: window, loadRecord, loadConsolePlugin, loadWebVitals });
  client.start();
}

/** Stops and forgets everything (see Client.shutdown). */
function stop(forget: boolean): void {
  if (client) client.shutdown();
  // Not running on this page, but an earlier page may have left ids and unsent items: forget them too.
  else if (forget && typeof window !== 'undefined') forgetStored(window);
  client = undefined;
}

/**
 * The visitor's consent for this page (from your consent banner or CMP; not stored by the SDK). `true` starts
 * the SDK when `init` said `consent: "pending"` (or when called before `init`); `false` keeps it off, or stops
 * it at once and forgets what is unsent and the ids when it runs.
 */
export function consent(granted: boolean): void {
  try {
    consentGiven = granted === true;
    if (consentGiven) boot();
    else stop(false);
  } catch (e) {
    if (client) client.log.warn('consent failed', e);
  }
}

/**
 * The visitor opts out, on this page and on every later page load of the site in this browser (localStorage
 * `observer.optout`), until {@link optIn}: recording stops at once, nothing unsent is sent, stored ids and unsent
 * items are removed. Works before `init` too.
 */
export function optOut(): void {
  try {
    optedOut = true;
    setOptOut(window, true);
    stop(true);
  } catch {
    // never into the host page
  }
}

/** Undoes {@link optOut}, and counts as the visitor's consent for this page: the SDK starts (if `init` was called). */
export function optIn(): void {
  try {
    optedOut = false;
    setOptOut(window, false);
    consent(true);
  } catch {
    // never into the host page
  }
}

/** Replay control. Before `init` (or without consent) they do nothing. */
export const replay = {
  /**
   * Records the session from now on, whatever `replay.sampleRate` decided, starting with a full snapshot; the
   * decision holds for the rest of the session (tab). Does nothing when already recording.
   */
  start(): void {
    try {
      if (client) client.startReplay();
    } catch (e) {
      if (client) client.log.warn('replay.start failed', e);
    }
  },
  /**
   * Stops recording for the rest of the session (tab) and sends what was recorded. Resolves `true` once that was
   * delivered. Never rejects.
   */
  stop(): Promise<boolean> {
    try {
      return client ? client.stopReplay() : Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  },
};

/** Reports an error (any thrown value). `context` is an object sent as the error's `context`. */
export function captureException(error: unknown, context?: Record<string, unknown>): void {
  try {
    if (client) client.captureException(error, context);
  } catch (e) {
    if (client) client.log.warn('captureException failed', e);
  }
}

/** Records a custom analytics event. `properties` is an object sent as the event's `properties`. */
export function track(name: string, properties?: Record<string, unknown>): void {
  try {
    if (client) client.track(name, properties);
  } catch (e) {
    if (client) client.log.warn('track failed', e);
  }
}

/** Sets the user id sent with everything from now on (and on replay chunks); `null` clears it. */
export function identify(userId: string | null | undefined): void {
  try {
    if (client) client.identify(userId);
  } catch (e) {
    if (client) client.log.warn('identify failed', e);
  }
}

/**
 * Records a page view for the current URL (for routers the History API autotrack cannot see, or with
 * `autoTrack.pageViews: false`). A URL already reported as the last page view is not reported twice.
 */
export function pageView(): void {
  try {
    if (client) client.pageView();
  } catch (e) {
    if (client) client.log.warn('pageView failed', e);
  }
}

/**
 * Sends everything queued — errors, events and the replay recorded so far — now. Resolves `true` when all of it
 * was delivered, `false` otherwise (what failed stays queued and is retried). Never rejects.
 */
export function flush(): Promise<boolean> {
  try {
    return client ? client.flush() : Promise.resolve(true);
  } catch {
    return Promise.resolve(false);
  }
}
