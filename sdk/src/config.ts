/** `init()` options, their defaults, and their validation. */

import type { ItemKind } from './control/before-send';
import { LIMITS, truncate, type AnalyticsEvent, type ErrorReport } from './payload';

/**
 * Scrubs or drops an error or event before it is queued: return the item (changed or not), or `null` to drop it.
 * Runs synchronously; if it throws, the item is dropped.
 */
export type BeforeSend = (item: ErrorReport | AnalyticsEvent, kind: ItemKind) => ErrorReport | AnalyticsEvent | null | undefined;

export interface ReplayOptions {
  /** Record session replays. Default `true`. */
  enabled?: boolean;
  /** Share of sessions recorded, 0..1, decided once per session (tab). Default `1`. */
  sampleRate?: number;
  /** Mask the value of every input, textarea and select (`*`). Default `true`. */
  maskAllInputs?: boolean;
  /** CSS selector of elements left out of the recording entirely (shown as a placeholder of the same size). */
  blockSelector?: string;
  /** CSS selector of elements whose text is masked (`*`). */
  maskTextSelector?: string;
}

export interface AutoTrackOptions {
  /** A `page_view` event on load and on every History API navigation. Default `true`. */
  pageViews?: boolean;
  /** Report uncaught errors and unhandled promise rejections. Default `true`. */
  errors?: boolean;
}

export interface NetworkOptions {
  /** Record fetch and XHR requests into the replay. Default `true`. */
  enabled?: boolean;
  /** Also report failed requests (network error, or status ≥ `errorStatusFrom`) as errors. Default `true`. */
  recordErrors?: boolean;
  /** Lowest HTTP status reported as an `HttpError`. Default `500`. */
  errorStatusFrom?: number;
  /** Requests whose URL contains one of these strings (or matches one of these RegExps) are neither recorded nor reported. */
  ignoreUrls?: Array<string | RegExp>;
}

export interface ConsoleOptions {
  /** Record console messages into the replay. Default `true`. */
  enabled?: boolean;
  /** Console methods recorded. Default `log`, `info`, `warn`, `error`, `debug`, `assert`, `trace`. */
  levels?: string[];
}

export interface ObserverOptions {
  /** Observer's base URL, e.g. `https://observer.example.com` (a relative URL is resolved against the page). */
  endpoint: string;
  /** Ingest key, when Observer requires one (`OBSERVER_INGEST_KEYS`); sent as `?key=`. */
  key?: string;
  /** Name of the app; sent as `context.service` (errors) and `properties.service` (events). */
  serviceName?: string;
  /** Release or version of the app; sent with errors. */
  release?: string;
  /** Environment (`production`, `staging`, …); sent with errors. */
  environment?: string;
  /** Log what the SDK does to the console. Default `false`: the SDK is silent. */
  debug?: boolean;
  /** Session replay options, or `false` to turn replay off. */
  replay?: ReplayOptions | boolean;
  /** Automatic tracking. */
  autoTrack?: AutoTrackOptions;
  /** Console messages in the replay (rrweb's console record plugin), or `false`. Default `true`. */
  console?: ConsoleOptions | boolean;
  /** fetch / XHR requests in the replay and failed ones as errors, or `false`. Default `true`. */
  network?: NetworkOptions | boolean;
  /** LCP, INP, CLS, FCP and TTFB of each page view as `web_vital` events (npm `web-vitals`). Default `true`. */
  webVitals?: boolean;
  /**
   * Share of sessions whose errors and events are sent, 0..1 — one number for both, or one per kind. Decided
   * once per session (tab) with one random draw, so a session sends all of its errors (events) or none. Default `1`.
   */
  sampleRate?: number | { errors?: number; events?: number };
  /** Scrub or drop errors and events (see {@link BeforeSend}). */
  beforeSend?: BeforeSend;
  /** `"pending"`: record, store and send nothing until `consent(true)`. Default `"granted"`. */
  consent?: 'granted' | 'pending';
}

export interface Settings {
  endpoint: string;
  key?: string;
  service?: string;
  release?: string;
  environment?: string;
  debug: boolean;
  replay: { enabled: boolean; sampleRate: number; maskAllInputs: boolean; blockSelector?: string; maskTextSelector?: string };
  autoTrack: { pageViews: boolean; errors: boolean };
  console: { enabled: boolean; levels: string[] };
  network: { enabled: boolean; recordErrors: boolean; errorStatusFrom: number; ignoreUrls: Array<string | RegExp> };
  webVitals: boolean;
  sampleRate: { errors: number; events: number };
  beforeSend?: BeforeSend;
  consent: 'granted' | 'pending';
}

export const DEFAULT_CONSOLE_LEVELS = ['log', 'info', 'warn', 'error', 'debug', 'assert', 'trace'];

/** `true`, `false` or an options object with an `enabled` switch, as one object. */
function section<T extends { enabled?: boolean }>(value: T | boolean | undefined): T {
  return (typeof value === 'boolean' ? { enabled: value } : value && typeof value === 'object' ? value : {}) as T;
}

/** A rate in 0..=1 (`fallback` when not a finite number). */
function rate(value: unknown, fallback: number): number {
  return typeof value === 'number' && isFinite(value) ? Math.min(1, Math.max(0, value)) : fallback;
}

function text(value: unknown, max?: number): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  return max === undefined ? value : truncate(value, max);
}

/** Validates options; returns the settings, or a message saying what is wrong. */
export function resolveSettings(options: ObserverOptions | undefined, base?: string): Settings | string {
  if (!options || typeof options !== 'object') return 'init() needs an options object';
  let endpoint: string;
  try {
    const url = new URL(String(options.endpoint || ''), base);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return `endpoint must be an http(s) URL, got "${options.endpoint}"`;
    endpoint = (url.origin + url.pathname).replace(/\/+$/, '');
  } catch {
    return `endpoint must be Observer's base URL, got "${options.endpoint}"`;
  }
  const replay = typeof options.replay === 'boolean' ? { enabled: options.replay } : options.replay || {};
  const autoTrack = options.autoTrack || {};
  const consoleOptions = section<ConsoleOptions>(options.console);
  const network = section<NetworkOptions>(options.network);
  const sample = options.sampleRate;
  const all = rate(sample, 1);
  const each = (sample && typeof sample === 'object' ? sample : {}) as { errors?: unknown; events?: unknown };
  return {
    endpoint,
    key: text(options.key),
    service: text(options.serviceName, 256),
    release: text(options.release, LIMITS.release),
    environment: text(options.environment, LIMITS.environment),
    debug: options.debug === true,
    replay: {
      enabled: replay.enabled !== false,
      sampleRate: rate(replay.sampleRate, 1),
      maskAllInputs: replay.maskAllInputs !== false,
      blockSelector: text(replay.blockSelector),
      maskTextSelector: text(replay.maskTextSelector),
    },
    autoTrack: { pageViews: autoTrack.pageViews !== false, errors: autoTrack.errors !== false },
    console: {
      enabled: consoleOptions.enabled !== false,
      levels: Array.isArray(consoleOptions.levels) ? consoleOptions.levels.filter((l) => typeof l === 'string') : DEFAULT_CONSOLE_LEVELS,
    },
    network: {
      enabled: network.enabled !== false,
      recordErrors: network.recordErrors !== false,
      errorStatusFrom: typeof network.errorStatusFrom === 'number' && network.errorStatusFrom >= 100 ? network.errorStatusFrom : 500,
      ignoreUrls: Array.isArray(network.ignoreUrls) ? network.ignoreUrls.filter((u) => typeof u === 'string' || u instanceof RegExp) : [],
    },
    webVitals: options.webVitals !== false,
    sampleRate: { errors: rate(each.errors, all), events: rate(each.events, all) },
    beforeSend: typeof options.beforeSend === 'function' ? options.beforeSend : undefined,
    consent: options.consent === 'pending' ? 'pending' : 'granted',
  };
}
