/**
 * Observer browser SDK: errors, analytics events and rrweb session replay, sent to an Observer server.
 *
 * Every public function is safe to call at any time: before `init` it does nothing, and nothing it does — nor any
 * listener or timer it installs — ever throws into the host page.
 */

import { Client } from './client';
import { resolveSettings, type ObserverOptions } from './config';
import { loadConsolePlugin } from './capture/console-source';
import { loadWebVitals } from './capture/vitals-source';
import { loadRecord } from './replay/rrweb-source';

export type { AutoTrackOptions, ConsoleOptions, NetworkOptions, ObserverOptions, ReplayOptions } from './config';

declare const __OBSERVER_VERSION__: string;

/** The SDK version. */
export const version: string = typeof __OBSERVER_VERSION__ === 'string' ? __OBSERVER_VERSION__ : 'dev';

/** Marks a page that already runs an Observer SDK (two copies — say script tag and npm — would record twice). */
const RUNNING_FLAG = '__observerSdk';

let client: Client | undefined;

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
    client = new Client(settings, { win: window, loadRecord, loadConsolePlugin, loadWebVitals });
    client.start();
  } catch (e) {
    if (options && options.debug) warn('init failed', e);
  }
}

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
