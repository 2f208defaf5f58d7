/**
 * Console messages in the replay, recorded by rrweb's own console record plugin (npm
 * `@rrweb/rrweb-plugin-console-record`), so the events have the plugin's format (`{level, payload, trace}` under
 * plugin `rrweb/console@1`) that rrweb's console replay plugin and the player read.
 *
 * The plugin is not given the page's console directly. It would serialise a DOM node as its `outerHTML` (page
 * content that rrweb's masking hides from the replay) and a string of any length as it is. So the plugin patches a
 * stand-in logger, and this module patches the console: the page's call goes to the original method unchanged,
 * then a bounded copy of the arguments goes to the plugin — strings cut, DOM nodes described by tag, id and
 * classes, cycles, getters that throw and deep or wide objects handled — within a rate limit, so a console call
 * in a loop cannot flood the replay. The SDK's own debug lines (`[observer] …`) are not recorded.
 */

import { truncate } from '../payload';

/** What `getRecordConsolePlugin` (the plugin's factory) returns: an rrweb record plugin. */
export interface RecordPlugin {
  name: string;
  observer?: (cb: (payload: unknown) => void, win: Window, options: unknown) => () => void;
  options?: unknown;
}

export type ConsolePluginFactory = (options?: Record<string, unknown>) => RecordPlugin;

/** Bounds of what one console call puts into the replay. */
export const CONSOLE_LIMITS = {
  /** Characters of one string (an argument, or a string inside an object). */
  stringChars: 1000,
  /** Characters of one serialised argument in the plugin's payload. */
  argChars: 2000,
  /** Characters of all arguments of one message together. */
  messageChars: 8000,
  /** Arguments of one call. */
  args: 20,
  /** Keys of one object, items of one array. */
  keys: 30,
  /** Nesting below an argument. */
  depth: 3,
  /** Stack frames of a message's `trace`, and characters of each. */
  traceFrames: 10,
  frameChars: 300,
  /** Messages at once, then `perSecond` more each second (a token bucket); beyond that they are counted, not recorded. */
  burst: 100,
  perSecond: 10,
  /** Messages per page load; then the plugin records one "threshold reached" line and stops. */
  perPage: 5000,
} as const;

const OWN_PREFIX = '[observer] ';

function describeNode(node: Node): string {
  const el = node as Element;
  if (node.nodeType !== 1 || typeof el.tagName !== 'string') return `[${node.nodeName}]`;
  let text = '<' + el.tagName.toLowerCase();
  if (el.id) text += '#' + el.id;
  const cls = typeof el.className === 'string' ? el.className.trim() : '';
  if (cls) text += '.' + cls.split(/\s+/).slice(0, 5).join('.');
  return truncate(text, 200) + '>';
}

/**
 * A copy of a console argument that is plain, bounded data: what the plugin then serialises. Never throws
 * (a getter that throws gives `"[unreadable]"`).
 */
export function boundedArg(value: unknown, depth = 0, ancestors: unknown[] = []): unknown {
  const L = CONSOLE_LIMITS;
  try {
    if (typeof value === 'string') return value.length > L.stringChars ? truncate(value, L.stringChars) + `… (${value.length} chars)` : value;
    if (value === null || typeof value === 'number' || typeof value === 'boolean' || value === undefined) return value;
    if (typeof value === 'bigint') return value.toString() + 'n';
    if (typeof value === 'symbol') return value.toString();
    if (typeof value === 'function') return `[Function ${(value as { name?: string }).name || 'anonymous'}]`;
    if (typeof Node !== 'undefined' && value instanceof Node) return describeNode(value);
    if (typeof Event !== 'undefined' && value instanceof Event) {
      const target = value.target;
      return { type: value.type, target: target && typeof Node !== 'undefined' && target instanceof Node ? describeNode(target) : String(target) };
    }
    if (value instanceof Error) {
      const text = value.stack && value.stack.includes(value.message) ? value.stack : `${value.name}: ${value.message}\n${value.stack || ''}`;
      return boundedArg(text, depth, ancestors);
    }
    if (ancestors.includes(value)) return '[Circular]';
    if (depth >= L.depth) return Array.isArray(value) ? `[Array(${value.length})]` : '[Object]';
    const inner = ancestors.concat([value]);
    if (Array.isArray(value)) {
      const out = value.slice(0, L.keys).map((item) => boundedArg(item, depth + 1, inner));
      if (value.length > L.keys) out.push(`… ${value.length - L.keys} more`);
      return out;
    }
    const out: Record<string, unknown> = {};
    let count = 0;
    for (const key in value as object) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
      if (count++ >= L.keys) {
        out['…'] = 'more keys';
        break;
      }
      let item: unknown;
      try {
        item = (value as Record<string, unknown>)[key];
      } catch {
        item = '[unreadable]';
      }
      out[truncate(key, 100)] = boundedArg(item, depth + 1, inner);
    }
    return out;
  } catch {
    return '[unreadable]';
  }
}

/** The plugin's payload strings and trace, cut to the limits (each string stays valid JSON). */
export function boundLogData(data: { payload?: unknown; trace?: unknown }): void {
  const L = CONSOLE_LIMITS;
  if (Array.isArray(data.payload)) {
    let left = L.messageChars;
    data.payload = data.payload.slice(0, L.args).map((item) => {
      let text = typeof item === 'string' ? item : String(item);
      const max = Math.max(0, Math.min(L.argChars, left));
      if (text.length > max) text = JSON.stringify(truncate(text, max) + '…');
      left -= text.length;
      return text;
    });
  }
  if (Array.isArray(data.trace)) {
    data.trace = data.trace.slice(0, L.traceFrames).map((frame) => truncate(String(frame), L.frameChars));
  }
}

/** A token bucket: `take()` is true while messages are within the rate. */
export function rateLimiter(burst: number, perSecond: number, now: () => number = Date.now): { take(): boolean } {
  let tokens = burst;
  let last = now();
  return {
    take() {
      const t = now();
      tokens = Math.min(burst, tokens + ((t - last) / 1000) * perSecond);
      last = t;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}

/**
 * The console record plugin, fed bounded copies of the arguments. `factory` is the plugin's
 * `getRecordConsolePlugin`. rrweb calls the plugin's observer once per recorded window (the page and each
 * same-origin iframe); the rate limit is shared by all of them.
 */
export function createConsolePlugin(factory: ConsolePluginFactory, levels: readonly string[], now: () => number = Date.now): RecordPlugin {
  const inner = factory({
    level: levels,
    lengthThreshold: CONSOLE_LIMITS.perPage,
    // Above what boundedArg lets through, so the plugin never falls back to `[object Object]` for our copies.
    stringifyOptions: { numOfKeysLimit: 100, depthOfLimit: 10, stringLengthLimit: CONSOLE_LIMITS.stringChars },
  });
  const limiter = rateLimiter(CONSOLE_LIMITS.burst, CONSOLE_LIMITS.perSecond, now);
  let dropped = 0;
  /** Set while our wrapper calls the stand-in: the trace then starts with the wrapper's own frame. */
  let fromWrapper = false;
  let noticeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Says in the replay how many messages the rate limit left out (a second after the first one was). */
  const reportDropped = (standIn: Record<string, (...args: unknown[]) => void>, level: string) => {
    if (noticeTimer !== undefined) clearTimeout(noticeTimer);
    noticeTimer = undefined;
    if (dropped === 0) return;
    const count = dropped;
    dropped = 0;
    (standIn.warn || standIn[level])(`[observer] ${count} console message(s) not recorded (over ${CONSOLE_LIMITS.perSecond}/s)`);
  };
  const observer = (cb: (payload: unknown) => void, win: Window, options: unknown): (() => void) => {
    const target = (win && (win as Window & { console?: Console }).console) as unknown as Record<string, unknown> | undefined;
    const innerObserver = inner.observer;
    if (!target || !innerObserver) return () => undefined;
    const bounded = (payload: unknown) => {
      if (payload && typeof payload === 'object') {
        const data = payload as { payload?: unknown; trace?: unknown };
        if (fromWrapper && Array.isArray(data.trace)) data.trace = data.trace.slice(1);
        boundLogData(data);
      }
      cb(payload);
    };
    // The plugin patches this stand-in; our console wrappers below call it with bounded copies.
    const standIn: Record<string, (...args: unknown[]) => void> = {};
    for (const level of levels) standIn[level] = () => undefined;
    const stopInner = innerObserver(bounded, win, { ...(options as object), logger: standIn });
    const restore: Array<() => void> = [];
    for (const level of levels) {
      const original = target[level];
      if (typeof original !== 'function') continue;
      const wrapped = function (this: unknown, ...args: unknown[]) {
        const result = (original as (...a: unknown[]) => unknown).apply(this, args);
        try {
          if (typeof args[0] === 'string' && args[0].startsWith(OWN_PREFIX)) return result;
          if (!limiter.take()) {
            if (dropped++ === 0) noticeTimer = setTimeout(() => reportDropped(standIn, level), 1000);
            return result;
          }
          const copies = args.slice(0, CONSOLE_LIMITS.args).map((a) => boundedArg(a));
          fromWrapper = true;
          reportDropped(standIn, level);
          standIn[level](...copies);
        } catch {
          // never into the host page
        } finally {
          fromWrapper = false;
        }
        return result;
      };
      target[level] = wrapped;
      restore.push(() => {
        if (target[level] === wrapped) target[level] = original;
      });
    }
    return () => {
      if (noticeTimer !== undefined) clearTimeout(noticeTimer);
      noticeTimer = undefined;
      restore.forEach((fn) => fn());
      stopInner();
    };
  };
  return { name: inner.name, observer, options: inner.options };
}
