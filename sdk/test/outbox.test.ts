import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { KeepaliveBudget } from '../src/keepalive';
import { chunkUrl, ReplayOutbox, type Chunk } from '../src/replay/outbox';
import { Spill } from '../src/spill';
import { memoryStore, safeStore } from '../src/storage';
import { FakeStorage, fakeLogger, fakePost, settle, until } from './helpers';

const events = (n: number, pad = 0) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ type: 3, timestamp: 1000 + i, data: { pad: 'x'.repeat(pad) } })));
const chunk = (seq: number, n = 2, pad = 0): Chunk => ({ sid: 'session-1', seq, json: events(n, pad) });
const seqOf = (url: string) => Number(new URL(url).searchParams.get('seq'));

function outbox(post = fakePost(), opts: { gzip?: boolean; spill?: Spill } = {}) {
  return new ReplayOutbox({
    post,
    endpoint: 'https://o.test',
    key: 'k 1',
    log: fakeLogger(),
    spill: opts.spill || new Spill(memoryStore()),
    gzip: opts.gzip === false ? async () => undefined : undefined,
    random: () => 0,
  });
}

test('chunk URL: session_id, seq, user_id and key', () => {
  assert.equal(chunkUrl('https://o.test', { sid: 'abcdefgh', seq: 7 }), 'https://o.test/api/observer/replay-events?session_id=abcdefgh&seq=7');
  assert.equal(chunkUrl('https://o.test', { sid: 'abcdefgh', seq: 0, uid: 'a@b c' }, 'k&1'), 'https://o.test/api/observer/replay-events?session_id=abcdefgh&seq=0&user_id=a%40b%20c&key=k%261');
});

test('chunks are gzipped and sent one by one in seq order', async () => {
  const post = fakePost();
  const box = outbox(post);
  box.add(chunk(0));
  box.add(chunk(1));
  box.add(chunk(2));
  assert.equal(await box.flush(), true);
  assert.deepEqual(post.calls.map((c) => seqOf(c.url)), [0, 1, 2]);
  const body = post.calls[0].body as Uint8Array;
  assert.ok(body instanceof Uint8Array);
  assert.deepEqual([body[0], body[1]], [0x1f, 0x8b], 'gzip magic bytes: the server recognises gzip without Content-Encoding');
  assert.equal(gunzipSync(body).toString(), events(2));
  assert.equal(new URL(post.calls[0].url).searchParams.get('key'), 'k 1');
});

test('without CompressionStream the chunk is sent as plain JSON', async () => {
  const post = fakePost();
  const box = outbox(post, { gzip: false });
  box.add(chunk(0));
  await box.flush();
  assert.equal(post.calls[0].body, events(2));
});

test('a failed chunk is retried with the same content and seq before later chunks', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost([{ ok: false, retry: true, status: 503, retryAfterMs: 5000 }]);
  const box = outbox(post);
  box.add(chunk(0));
  // Gzipped, sent, answered 503: the retry waits for its timer.
  await until(() => box['retryTimer'] !== undefined);
  box.add(chunk(1));
  await settle(10);
  assert.equal(post.calls.length, 1);
  t.mock.timers.tick(5000);
  await until(() => post.calls.length === 3);
  assert.deepEqual(post.calls.map((c) => seqOf(c.url)), [0, 0, 1]);
  assert.deepEqual(post.calls[0].body, post.calls[1].body);
});

test('a refused chunk (413) is dropped, the next goes on', async () => {
  const post = fakePost([{ ok: false, retry: false, status: 413 }]);
  const box = outbox(post);
  box.add(chunk(0));
  box.add(chunk(1));
  assert.equal(await box.flush(), false);
  await box.flush();
  assert.deepEqual(post.calls.map((c) => seqOf(c.url)), [0, 1]);
});

test('on hide: chunks that fit the keepalive budget go with keepalive, the others are spilled', async () => {
  const post = fakePost();
  const box = outbox(post, { gzip: false });
  // Nothing is sent before the hide: hold the pump on a first chunk whose request never ends.
  const budget = new KeepaliveBudget(10_000);
  box['waiting'].push(chunk(1, 2), chunk(2, 10, 1000), chunk(3, 2));
  const spilled = box.drainForHide(budget);
  assert.deepEqual(spilled.map((c) => c.q), [2]);
  assert.equal(spilled[0].j, events(10, 1000), 'spilled as JSON');
  assert.deepEqual(post.calls.map((c) => [seqOf(c.url), c.keepalive]), [[1, true], [3, true]]);
  assert.equal(box.size, 0);
  await settle();
  assert.equal(budget.remaining, 10_000);
});

test('a chunk whose request is in flight at hide is also spilled, and forgotten from the spill once delivered', async () => {
  let release!: () => void;
  const area = new FakeStorage();
  const spill = new Spill(safeStore(() => area));
  const post = Object.assign(
    async () => {
      await new Promise<void>((r) => (release = r));
      return { ok: true as const, status: 202 };
    },
    { calls: [] },
  );
  const box = outbox(post as never, { spill });
  box.add(chunk(0));
  await until(() => box['currentSent'] === true); // gzipped and sent, waiting for the answer
  const spilled = box.drainForHide(new KeepaliveBudget());
  assert.deepEqual(spilled.map((c) => c.q), [0]);
  assert.ok(spilled[0].g, 'kept as base64 gzip');
  spill.save({ errors: [], events: [], replay: spilled });
  release();
  await box.flush();
  assert.equal(spill.take().replay.length, 0);
});

test('restored chunks go first, gzip from base64 intact, and chunks still held are not duplicated', async () => {
  const post = fakePost();
  const box = outbox(post);
  const gz = new Uint8Array(await new Response(new Blob([events(1)]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer());
  box['waiting'].push(chunk(5));
  box.restore([
    { s: 'session-1', q: 3, g: Buffer.from(gz).toString('base64') },
    { s: 'session-1', q: 2, j: events(3) },
    { s: 'session-1', q: 5, j: 'different' },
  ]);
  await box.flush();
  assert.deepEqual(post.calls.map((c) => seqOf(c.url)), [2, 3, 5]);
  assert.equal(gunzipSync(post.calls[1].body as Uint8Array).toString(), events(1));
  assert.equal(gunzipSync(post.calls[2].body as Uint8Array).toString(), events(2), 'seq 5 keeps the content it had');
});

test('memory is bounded: the oldest waiting chunks are dropped', () => {
  const log = fakeLogger();
  const box = new ReplayOutbox({ post: fakePost(), endpoint: 'e', log, spill: new Spill(memoryStore()), maxBytes: 1000 });
  box['running'] = new Promise(() => undefined); // hold the pump
  for (let i = 0; i < 5; i++) box.add(chunk(i, 1, 300));
  assert.ok(box.size <= 3);
  assert.ok(log.lines.some((l) => /dropped/.test(l.message)));
});
