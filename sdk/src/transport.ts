/** One HTTP POST to Observer, and what its outcome means for retrying. */

import { parseRetryAfter } from './backoff';

export type SendResult =
  | { ok: true; status: number }
  /** Worth trying again later: network error, 408, 429, 5xx (but 501). */
  | { ok: false; retry: true; status: number; retryAfterMs?: number }
  /** Never worth retrying: other 4xx. `body` is the parsed error body of a 400, when there is one. */
  | { ok: false; retry: false; status: number; body?: ErrorBody };

export interface ErrorBody {
  error?: string;
  message?: string;
  details?: Array<{ index?: number; field?: string; reason?: string }>;
}

export type Body = string | Uint8Array;

export type Post = (url: string, body: Body, keepalive: boolean) => Promise<SendResult>;

/** Whether a response status is worth retrying (status 0: the request never got an answer). */
export function isRetriable(status: number): boolean {
  if (status === 0 || status === 408 || status === 429) return true;
  return status >= 500 && status !== 501;
}

export function bodySize(body: Body): number {
  return typeof body === 'string' ? utf8Length(body) : body.byteLength;
}

/** UTF-8 byte length of a string, without allocating. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

const REQUEST_TIMEOUT_MS = 30_000;

/**
 * POSTs with `fetch`. Always `Content-Type: text/plain` — a CORS-safelisted value, so the browser sends no
 * preflight; Observer reads JSON from text/plain and recognises a gzip body by its magic bytes. No cookies
 * (`credentials: 'omit'`). Never rejects.
 */
export function createFetchPost(fetchImpl: typeof fetch = globalThis.fetch, now: () => number = Date.now): Post {
  return async (url, body, keepalive) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const init: RequestInit = {
        method: 'POST',
        body: body as BodyInit,
        headers: { 'Content-Type': 'text/plain' },
        credentials: 'omit',
        mode: 'cors',
        keepalive,
      };
      if (!keepalive && typeof AbortController === 'function') {
        const controller = new AbortController();
        timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
        init.signal = controller.signal;
      }
      const response = await fetchImpl(url, init);
      const status = response.status;
      if (status >= 200 && status < 300) return { ok: true, status };
      if (isRetriable(status)) {
        return { ok: false, retry: true, status, retryAfterMs: parseRetryAfter(response.headers.get('Retry-After'), now()) };
      }
      let parsed: ErrorBody | undefined;
      if (status === 400) {
        try {
          parsed = (await response.json()) as ErrorBody;
        } catch {
          parsed = undefined;
        }
      }
      return { ok: false, retry: false, status, body: parsed };
    } catch {
      return { ok: false, retry: true, status: 0 };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  };
}
