import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createFetchPost, isRetriable } from '../src/transport';

function fakeFetch(response: () => Response | Promise<Response>) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const fn = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return response();
  }) as unknown as typeof fetch;
  return { fn, calls };
}

test('requests are CORS-simple: POST, text/plain, no credentials; keepalive passed through', async () => {
  const f = fakeFetch(() => new Response('{"accepted":1}', { status: 202 }));
  const post = createFetchPost(f.fn);
  assert.deepEqual(await post('https://o.test/api/observer/events?key=k', '[]', true), { ok: true, status: 202 });
  const init = f.calls[0].init;
  assert.equal(init.method, 'POST');
  assert.deepEqual(init.headers, { 'Content-Type': 'text/plain' });
  assert.equal(init.credentials, 'omit');
  assert.equal(init.keepalive, true);
  assert.equal(init.signal, undefined, 'no abort timer on keepalive requests');
  await post('u', new Uint8Array([0x1f, 0x8b]), false);
  assert.equal(f.calls[1].init.keepalive, false);
  assert.ok(f.calls[1].init.signal, 'normal requests time out');
  assert.ok(f.calls[1].init.body instanceof Uint8Array);
});

test('429 and 503 carry Retry-After', async () => {
  const post = createFetchPost(fakeFetch(() => new Response('{}', { status: 429, headers: { 'Retry-After': '12' } })).fn);
  assert.deepEqual(await post('u', '[]', false), { ok: false, retry: true, status: 429, retryAfterMs: 12_000 });
  const post503 = createFetchPost(fakeFetch(() => new Response('{}', { status: 503 })).fn);
  assert.deepEqual(await post503('u', '[]', false), { ok: false, retry: true, status: 503, retryAfterMs: undefined });
});

test('a network error is retriable and does not throw', async () => {
  const post = createFetchPost(fakeFetch(() => Promise.reject(new TypeError('Failed to fetch'))).fn);
  assert.deepEqual(await post('u', '[]', false), { ok: false, retry: true, status: 0 });
});

test('a 400 is final and its error body is read', async () => {
  const body = { error: 'invalid_payload', message: '1 invalid field', details: [{ index: 0, field: 'timestamp', reason: 'x' }] };
  const post = createFetchPost(fakeFetch(() => new Response(JSON.stringify(body), { status: 400 })).fn);
  assert.deepEqual(await post('u', '[]', false), { ok: false, retry: false, status: 400, body });
  const notJson = createFetchPost(fakeFetch(() => new Response('<html>', { status: 400 })).fn);
  assert.deepEqual(await notJson('u', '[]', false), { ok: false, retry: false, status: 400, body: undefined });
});

test('which statuses are retried', () => {
  for (const s of [0, 408, 429, 500, 502, 503, 504]) assert.ok(isRetriable(s), String(s));
  for (const s of [400, 401, 403, 404, 405, 413, 415, 501]) assert.ok(!isRetriable(s), String(s));
});
