import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bodyBytes, lengthHeader, maskUrl, watchNetwork, type NetworkRecord } from '../src/capture/network';

test('URLs: query values masked, keys kept, fragment and credentials dropped', () => {
  assert.equal(maskUrl('https://u:p@api.example.com/items?id=42&token=abc&flag#frag'), 'https://api.example.com/items?id=*&token=*&flag');
  assert.equal(maskUrl('/search?q=secret', 'https://shop.example/a/b'), 'https://shop.example/search?q=*');
  assert.equal(maskUrl('https://a.example/p'), 'https://a.example/p');
  assert.ok(maskUrl('https://a.example/' + 'x'.repeat(5000)).length <= 2048);
});

test('sizes: known bodies and Content-Length only', () => {
  assert.equal(bodyBytes('héllo'), 6);
  assert.equal(bodyBytes(new Uint8Array(10)), 10);
  assert.equal(bodyBytes(new Blob(['abc'])), 3);
  assert.equal(bodyBytes(new URLSearchParams('a=1')), null);
  assert.equal(bodyBytes(undefined), null);
  assert.equal(lengthHeader('1234'), 1234);
  assert.equal(lengthHeader('-1'), null);
  assert.equal(lengthHeader(null), null);
});

function fakeWindow(impl: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>) {
  return { fetch: impl, location: { href: 'https://app.example/page?x=1' }, performance: { now: () => 0 } } as unknown as Window;
}

test('fetch: same response object, same rejection, records each request, ignores what it is told to', async () => {
  const response = new Response('body', { status: 503, headers: { 'content-length': '4' } });
  const calls: unknown[] = [];
  const failure = new TypeError('Failed to fetch');
  const win = fakeWindow(function (this: unknown, input, init) {
    calls.push([this, input, init]);
    return String(input).includes('down') ? Promise.reject(failure) : Promise.resolve(response);
  });
  const original = win.fetch;
  const seen: Array<{ record: NetworkRecord; aborted: boolean }> = [];
  const stop = watchNetwork(win, { ignore: (url) => url.includes('/api/observer/'), onRequest: (record, _at, aborted) => seen.push({ record, aborted }) });
  assert.notEqual(win.fetch, original);

  const init = { method: 'post', body: 'abc' };
  assert.equal(await win.fetch('/items?id=7', init), response, 'the same Response object');
  assert.deepEqual(calls[0], [win, '/items?id=7', init], 'same this and arguments');
  await assert.rejects(win.fetch('https://down.example/x'), (e) => e === failure);
  await win.fetch(new Request('https://api.example/r?k=v', { method: 'PUT' }));
  await win.fetch('https://observer.example/api/observer/errors?key=secret', { method: 'POST' });
  await win.fetch('data:text/plain,hi');

  assert.deepEqual(
    seen.map((s) => s.record),
    [
      { initiator: 'fetch', method: 'POST', url: 'https://app.example/items?id=*', status: 503, duration_ms: 0, request_bytes: 3, response_bytes: 4 },
      { initiator: 'fetch', method: 'GET', url: 'https://down.example/x', status: 0, duration_ms: 0, request_bytes: null, response_bytes: null, error: 'TypeError: Failed to fetch' },
      { initiator: 'fetch', method: 'PUT', url: 'https://api.example/r?k=*', status: 503, duration_ms: 0, request_bytes: null, response_bytes: 4 },
    ],
  );
  stop();
  assert.equal(win.fetch, original, 'unwrapped');
});

test('fetch: an abort is recorded as aborted; a throwing watcher never reaches the page', async () => {
  const abort = new DOMException('The operation was aborted.', 'AbortError');
  const win = fakeWindow(() => Promise.reject(abort));
  const seen: boolean[] = [];
  watchNetwork(win, { ignore: () => false, onRequest: (_r, _a, aborted) => seen.push(aborted) });
  await assert.rejects(win.fetch('https://a.example/'), (e) => e === abort);
  assert.deepEqual(seen, [true]);

  const ok = new Response('');
  const win2 = fakeWindow(() => Promise.resolve(ok));
  watchNetwork(win2, {
    ignore: () => {
      throw new Error('bad ignore');
    },
    onRequest: () => {
      throw new Error('bad watcher');
    },
  });
  assert.equal(await win2.fetch('https://a.example/'), ok);
});

test('fetch: a synchronous throw of the original reaches the page unchanged', () => {
  const error = new TypeError('Invalid URL');
  const win = fakeWindow(() => {
    throw error;
  });
  watchNetwork(win, { ignore: () => false, onRequest: () => undefined });
  assert.throws(() => win.fetch('http://['), (e) => e === error);
});
