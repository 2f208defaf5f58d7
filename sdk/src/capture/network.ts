/**
 * fetch and XHR requests, seen by wrapping `window.fetch` and `XMLHttpRequest.prototype.open/send`. Each finished
 * request is handed to `onRequest` as a {@link NetworkRecord}: method, URL with the query's values masked, status,
 * duration and sizes when the browser knows them without reading a body. Bodies and headers are never read.
 *
 * The wrappers are transparent: the original is called with the same `this` and arguments, its result (the same
 * response, stream, abort and exception behaviour) is what the page gets, and nothing of ours can throw into it.
 * `sendBeacon` is not wrapped: it has no answer to record.
 */

import { LIMITS, truncate } from '../payload';
import { utf8Length } from '../transport';

/** The payload of the rrweb custom event (tag `network`) that records one request in the replay. */
export interface NetworkRecord {
  initiator: 'fetch' | 'xhr';
  method: string;
  /** Without fragment and credentials; every query value replaced by `*`. */
  url: string;
  /** HTTP status; 0 when no response came (network error, abort, timeout, or an opaque `no-cors` response). */
  status: number;
  duration_ms: number;
  request_bytes: number | null;
  response_bytes: number | null;
  /** Only when the request failed without a response (its error's name and message). */
  error?: string;
}

export interface NetworkWatch {
  /** Whether a request to this absolute URL is left alone (Observer's own endpoint, `ignoreUrls`). */
  ignore(url: string): boolean;
  /** A request finished; `startedAt` is its start, in ms since the epoch. `aborted`: the page cancelled it. */
  onRequest(record: NetworkRecord, startedAt: number, aborted: boolean): void;
}

/** String request bodies longer than this are not measured (counting UTF-8 bytes is a pass over the string). */
const MAX_MEASURED_CHARS = 1_000_000;

/** `url` for the replay and error reports: absolute, no fragment or credentials, query values masked as `*`. */
export function maskUrl(url: string, base?: string): string {
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    return truncate(String(url).split(/[?#]/)[0], LIMITS.url);
  }
  u.hash = '';
  u.username = '';
  u.password = '';
  if (u.search) {
    u.search = u.search
      .slice(1)
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        return eq === -1 ? pair : pair.slice(0, eq) + '=*';
      })
      .join('&');
  }
  return truncate(u.href, LIMITS.url);
}

/** The byte size of a request body, when it is known without reading a stream; otherwise null. */
export function bodyBytes(body: unknown): number | null {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return body.length <= MAX_MEASURED_CHARS ? utf8Length(body) : null;
  if (typeof Blob !== 'undefined' && body instanceof Blob) return body.size;
  if (typeof ArrayBuffer !== 'undefined' && (body instanceof ArrayBuffer || ArrayBuffer.isView(body))) return (body as ArrayBuffer).byteLength;
  return null;
}

/** A `Content-Length` header value as a number, or null. */
export function lengthHeader(value: string | null | undefined): number | null {
  if (!value || !/^\d{1,15}$/.test(value.trim())) return null;
  return Number(value.trim());
}

function errorText(error: unknown): string {
  const e = (error && typeof error === 'object' ? error : {}) as { name?: unknown; message?: unknown };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  return truncate(typeof e.message === 'string' && e.message ? `${name}: ${e.message}` : error && typeof error === 'object' ? name : String(error), 256);
}

/** Wraps fetch and XHR of `win`. Returns a function that undoes each wrapper where it is still ours. */
export function watchNetwork(win: Window, watch: NetworkWatch): () => void {
  const perf = win.performance && typeof win.performance.now === 'function' ? win.performance : Date;
  const undo: Array<() => void> = [];

  /** What a request needs to be reported when it ends, or undefined when it is not recorded. Never throws. */
  const begin = (initiator: NetworkRecord['initiator'], url: unknown, method: unknown, body: unknown) => {
    try {
      const absolute = new URL(String(url), win.location.href).href;
      if (!/^https?:/.test(absolute) || watch.ignore(absolute)) return undefined;
      const at = Date.now();
      const t = perf.now();
      const bytes = bodyBytes(body);
      return (status: number, responseBytes: number | null, error?: string, aborted = false) => {
        try {
          const record: NetworkRecord = {
            initiator,
            method: truncate(String(method || 'GET').toUpperCase(), 16),
            url: maskUrl(absolute),
            status,
            duration_ms: Math.max(0, Math.round(perf.now() - t)),
            request_bytes: bytes,
            response_bytes: responseBytes,
          };
          if (error !== undefined) record.error = error;
          watch.onRequest(record, at, aborted);
        } catch {
          // never into the host page
        }
      };
    } catch {
      return undefined;
    }
  };

  const fetchImpl = win.fetch;
  if (typeof fetchImpl === 'function') {
    const wrapped = function fetch(this: unknown, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      let end: ReturnType<typeof begin>;
      try {
        const request = typeof Request !== 'undefined' && input instanceof Request ? input : undefined;
        end = begin('fetch', request ? request.url : input, (init && init.method) || (request && request.method), init && init.body);
      } catch {
        end = undefined;
      }
      // eslint-disable-next-line prefer-rest-params
      const result = fetchImpl.apply(this, arguments as unknown as [RequestInfo | URL, RequestInit?]) as Promise<Response>;
      if (!end || !result || typeof result.then !== 'function') return result;
      const done = end;
      // The page gets a promise settled exactly as the original (same response object, same rejection reason).
      return result.then(
        (response) => {
          let bytes: number | null = null;
          try {
            bytes = lengthHeader(response.headers.get('content-length'));
          } catch {
            bytes = null;
          }
          done(response.status, bytes);
          return response;
        },
        (error) => {
          done(0, null, errorText(error), !!error && (error as { name?: unknown }).name === 'AbortError');
          throw error;
        },
      );
    };
    win.fetch = wrapped as typeof fetch;
    undo.push(() => {
      if (win.fetch === wrapped) win.fetch = fetchImpl;
    });
  }

  const Xhr = (win as Window & { XMLHttpRequest?: typeof XMLHttpRequest }).XMLHttpRequest;
  if (typeof Xhr === 'function' && Xhr.prototype) {
    const proto = Xhr.prototype;
    const { open, send } = proto;
    const opened = new WeakMap<XMLHttpRequest, [unknown, unknown]>();
    const patchedOpen = function (this: XMLHttpRequest, method: string, url: string | URL) {
      opened.set(this, [method, url]);
      // eslint-disable-next-line prefer-rest-params
      return (open as (...args: unknown[]) => void).apply(this, arguments as unknown as unknown[]);
    };
    const patchedSend = function (this: XMLHttpRequest, body?: Document | XMLHttpRequestBodyInit | null) {
      try {
        const request = opened.get(this);
        const end = request && begin('xhr', request[1], request[0], body);
        if (end) {
          const xhr = this;
          let failure: string | undefined;
          const fail = (event: Event) => (failure = event.type);
          const events = ['error', 'abort', 'timeout'];
          events.forEach((type) => xhr.addEventListener(type, fail));
          xhr.addEventListener('loadend', function done() {
            events.forEach((type) => xhr.removeEventListener(type, fail));
            xhr.removeEventListener('loadend', done);
            let length: number | null = null;
            try {
              length = xhr.readyState >= 2 ? lengthHeader(xhr.getResponseHeader('content-length')) : null;
            } catch {
              length = null;
            }
            const error = failure === 'timeout' ? 'TimeoutError' : failure === 'abort' ? 'AbortError' : failure || !xhr.status ? 'NetworkError' : undefined;
            end(error ? 0 : xhr.status, length, error, failure === 'abort');
          });
        }
      } catch {
        // never into the host page
      }
      // eslint-disable-next-line prefer-rest-params
      return (send as (...args: unknown[]) => void).apply(this, arguments as unknown as unknown[]);
    };
    proto.open = patchedOpen as typeof proto.open;
    proto.send = patchedSend as typeof proto.send;
    undo.push(() => {
      if (proto.open === (patchedOpen as unknown)) proto.open = open;
      if (proto.send === (patchedSend as unknown)) proto.send = send;
    });
  }

  return () => undo.forEach((fn) => fn());
}
