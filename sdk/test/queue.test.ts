import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeepaliveBudget } from '../src/keepalive';
import { BatchQueue, batchBody, isTimestampRejection, takeBatch, type DurableStore } from '../src/queue';
import { bodyText, fakeLogger, fakePost, settle } from './helpers';

type Item = { message: string; timestamp?: number };
const item = (n: number, size = 0): Item => ({ message: 'm' + n + 'x'.repeat(size), timestamp: 1 });
const sent = (post: ReturnType<typeof fakePost>) => post.calls.map((c) => (JSON.parse(bodyText(c.body)) as Item[]).map((i) => i.message));

test('takeBatch respects item count and byte size, never returns an empty batch', () => {
  const e = (bytes: number) => ({ bytes });
  assert.equal(takeBatch(Array.from({ length: 250 }, () => e(10)), 100, 1e9).length, 100);
  // [ + 3×30 + 2 commas + ] = 94 bytes fits 94, not 93
  assert.equal(takeBatch([e(30), e(30), e(30), e(30)], 100, 94).length, 3);
  assert.equal(takeBatch([e(30), e(30), e(30), e(30)], 100, 93).length, 2);
  assert.equal(takeBatch([e(5000)], 100, 10).length, 1, 'one oversized item still goes alone');
  assert.equal(takeBatch([], 100, 10).length, 0);
  assert.equal(batchBody([{ json: '{"a":1}' }, { json: '2' }]), '[{"a":1},2]');
});

test('items wait ~2 s for company, then go in one batch', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost();
  const q = new BatchQueue<Item>('errors', { post, url: 'http://o/api/observer/errors', log: fakeLogger() });
  q.push(item(1));
  q.push(item(2));
  await settle();
  assert.equal(post.calls.length, 0);
  t.mock.timers.tick(2000);
  await settle();
  assert.deepEqual(sent(post), [['m1', 'm2']]);
  assert.equal(post.calls[0].keepalive, false);
  assert.equal(post.calls[0].url, 'http://o/api/observer/errors');
});

test('100 queued items go at once, in batches of at most 100', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost();
  const q = new BatchQueue<Item>('events', { post, url: 'u', log: fakeLogger() });
  for (let i = 0; i < 250; i++) q.push(item(i));
  assert.equal(await q.flush(), true);
  assert.deepEqual(sent(post).map((b) => b.length), [100, 100, 50]);
});

test('429/503 are retried after Retry-After, network errors with backoff; order is kept', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost([
    { ok: false, retry: true, status: 503, retryAfterMs: 30_000 },
    { ok: false, retry: true, status: 0 },
  ]);
  const log = fakeLogger();
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log, random: () => 0 });
  q.push(item(1));
  t.mock.timers.tick(2000);
  await settle();
  assert.equal(post.calls.length, 1);
  q.push(item(2));
  t.mock.timers.tick(29_999);
  await settle();
  assert.equal(post.calls.length, 1, 'not before Retry-After');
  t.mock.timers.tick(1);
  await settle();
  assert.equal(post.calls.length, 2);
  // second failure (network): backoff attempt 1 = 2 s × [½, 1]
  t.mock.timers.tick(999);
  await settle();
  assert.equal(post.calls.length, 2);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(post.calls.length, 3);
  assert.deepEqual(sent(post), [['m1'], ['m1', 'm2'], ['m1', 'm2']]);
  assert.equal(q.size, 0);
  assert.equal(log.lines.filter((l) => l.level === 'warn').length, 1, 'one warning while Observer is down');
});

test('other 4xx are not retried; the queue goes on with the next batch', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost([{ ok: false, retry: false, status: 413 }]);
  const log = fakeLogger();
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log }, { maxItems: 1 });
  q.push(item(1));
  q.push(item(2));
  await settle();
  t.mock.timers.tick(100_000);
  await settle();
  assert.deepEqual(sent(post), [['m1'], ['m2']]);
  assert.equal(log.lines.filter((l) => l.level === 'warn').length, 1);
});

test('a 400 about timestamps only (clock skew) is resent once without timestamps', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const refused = { ok: false as const, retry: false as const, status: 400, body: { error: 'invalid_payload', details: [{ index: 0, field: 'timestamp', reason: 'too far in the future' }] } };
  assert.ok(isTimestampRejection(refused));
  assert.ok(!isTimestampRejection({ ok: false, retry: false, status: 400, body: { details: [{ field: 'message' }, { field: 'timestamp' }] } }));
  const post = fakePost([refused, refused]);
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger() });
  q.push(item(1));
  assert.equal(await q.flush(), false);
  await q.flush();
  await settle();
  const bodies = post.calls.map((c) => JSON.parse(bodyText(c.body)));
  assert.equal(bodies[0][0].timestamp, 1);
  assert.equal(bodies[1][0].timestamp, undefined);
  assert.equal(post.calls.length, 2, 'not a third time');
});

test('a batch is dropped after maxAttempts', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost([], { ok: false, retry: true, status: 502 });
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger(), random: () => 0 }, { maxAttempts: 3 });
  q.push(item(1));
  for (let i = 0; i < 10; i++) {
    t.mock.timers.tick(120_000);
    await settle();
  }
  assert.equal(post.calls.length, 3);
  assert.equal(q.size, 0);
});

test('the queue is bounded: the oldest items are dropped', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const log = fakeLogger();
  const q = new BatchQueue<Item>('events', { post: fakePost(), url: 'u', log }, { capacity: 3, lingerMs: 1e9, maxItems: 1000 });
  for (let i = 0; i < 5; i++) q.push(item(i));
  assert.equal(q.size, 3);
  assert.ok(log.lines.some((l) => /dropped the 1 oldest/.test(l.message)));
});

test('flush resolves true once everything was delivered, false when something failed', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ok = fakePost();
  const q = new BatchQueue<Item>('events', { post: ok, url: 'u', log: fakeLogger() });
  assert.equal(await q.flush(), true, 'nothing queued');
  q.push(item(1));
  assert.equal(await q.flush(), true);
  const failing = fakePost([], { ok: false, retry: true, status: 503 });
  const q2 = new BatchQueue<Item>('events', { post: failing, url: 'u', log: fakeLogger() });
  q2.push(item(1));
  assert.equal(await q2.flush(), false);
  assert.equal(q2.size, 1, 'kept for retry');
});

test('flush waits for a request already in flight', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let release!: () => void;
  const calls: string[] = [];
  const post = async (_u: string, body: string | Uint8Array) => {
    calls.push(bodyText(body));
    if (calls.length === 1) await new Promise<void>((r) => (release = r));
    return { ok: true as const, status: 202 };
  };
  const q = new BatchQueue<Item>('events', { post, url: 'u', log: fakeLogger() }, { maxItems: 1 });
  q.push(item(1)); // goes at once (maxItems reached)
  q.push(item(2));
  let done = false;
  const f = q.flush().then((v) => (done = v));
  await settle();
  assert.equal(done, false);
  release();
  await f;
  assert.equal(done, true);
  assert.equal(calls.length, 2);
});

test('on hide: batches within the keepalive budget go with keepalive, the rest is returned for the spill', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost();
  const q = new BatchQueue<Item>('events', { post, url: 'u', log: fakeLogger() }, { maxBatchBytes: 700 });
  const budget = new KeepaliveBudget(1000);
  q.push(item(1, 300));
  q.push(item(2, 300)); // batch 1: ~640 bytes
  q.push(item(3, 500));
  q.push(item(4, 10)); // batch 2: ~560 bytes, does not fit after batch 1
  const unsent = q.drainForHide(budget);
  assert.deepEqual(unsent.map((i) => i.message.slice(0, 2)), ['m3', 'm4']);
  assert.equal(post.calls.length, 1);
  assert.equal(post.calls[0].keepalive, true);
  assert.ok(budget.remaining < 1000 - 600);
  await settle();
  assert.equal(budget.remaining, 1000, 'released when the request settles');
  assert.equal(q.size, 0);
});

test('a keepalive batch that fails while the page is still alive goes back to the queue', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost([{ ok: false, retry: true, status: 0 }]);
  const q = new BatchQueue<Item>('events', { post, url: 'u', log: fakeLogger(), random: () => 0 });
  q.push(item(1));
  q.drainForHide(new KeepaliveBudget());
  await settle();
  assert.equal(q.size, 1);
  t.mock.timers.tick(500);
  await settle();
  assert.equal(post.calls.length, 2);
  assert.equal(post.calls[1].keepalive, false);
  assert.equal(q.size, 0);
});

test('restore puts spilled items in front', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const post = fakePost();
  const q = new BatchQueue<Item>('events', { post, url: 'u', log: fakeLogger() });
  q.push(item(2));
  q.restore([item(0), item(1)]);
  await q.flush();
  assert.deepEqual(sent(post), [['m0', 'm1', 'm2']]);
});

test('beforeSend runs before a batch is taken and may re-stamp queued items with update()', async () => {
  const post = fakePost();
  let q!: BatchQueue<Item>;
  let calls = 0;
  q = new BatchQueue<Item>('events', {
    post,
    url: 'u',
    log: fakeLogger(),
    beforeSend: () => {
      calls++;
      q.update((i) => (i.message === 'm1' ? { ...i, message: 'restamped' } : i));
    },
  });
  q.push(item(1));
  q.push(item(2));
  assert.equal(await q.flush(), true);
  assert.deepEqual(sent(post), [['restamped', 'm2']]);
  assert.equal(calls, 1);
  // On hide too, before the keepalive batches are cut.
  q.push(item(1));
  q.drainForHide(new KeepaliveBudget());
  await settle();
  assert.deepEqual(sent(post)[1], ['restamped']);
  assert.equal(calls, 2);
});

// ---- the durable store, offline, admit --------------------------------------------------------------------

function fakeStore() {
  const log: string[] = [];
  const lost = new Set<string>();
  const store: DurableStore & { log: string[]; lost: Set<string> } = {
    log,
    lost,
    sending(kind, parcels) {
      log.push(`sending ${kind} ${parcels.map((p) => (p.item as Item).message).join(',')}`);
      return parcels.filter((p) => !lost.has(p.id));
    },
    forget(parcels) {
      log.push(`forget ${parcels.map((p) => (p.item as Item).message).join(',')}`);
    },
    keep(kind, parcels, release) {
      for (const p of parcels) p.stored = true;
      log.push(`keep${release ? ' released' : ''} ${parcels.map((p) => (p.item as Item).message).join(',')}`);
    },
  };
  return store;
}

test('with a store: written down before each send, forgotten after a 2xx or a final refusal', async () => {
  const post = fakePost([{ ok: true, status: 202 }, { ok: false, retry: false, status: 403 }]);
  const store = fakeStore();
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger(), store }, { maxItems: 1 });
  q.push(item(1));
  q.push(item(2));
  await q.flush();
  assert.deepEqual(store.log, ['sending errors m1', 'forget m1', 'sending errors m2', 'forget m2']);
});

test('what the store says another page took over is not sent', async () => {
  const post = fakePost();
  const store = fakeStore();
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger(), store });
  q.push(item(1));
  q.push(item(2));
  q.update((i) => i); // ids stay
  // the first item's id is "lost" to another page
  (store as unknown as { lost: Set<string> }).lost.add((q as unknown as { entries: Array<{ id: string }> }).entries[0].id);
  assert.equal(await q.flush(), true);
  assert.deepEqual(sent(post), [['m2']]);
});

test('offline: nothing is sent or counted, items are written down within a second, sent when back online', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let online = false;
  const post = fakePost();
  const store = fakeStore();
  const q = new BatchQueue<Item>('events', { post, url: 'u', log: fakeLogger(), store, online: () => online });
  q.push(item(1));
  q.push(item(2));
  assert.deepEqual(store.log, []);
  assert.equal(await q.flush(), false);
  t.mock.timers.tick(1000);
  assert.deepEqual(store.log, ['keep m1,m2'], 'one write for a burst, within a second');
  q.push(item(3));
  t.mock.timers.tick(60_000);
  await settle();
  assert.equal(post.calls.length, 0);
  assert.deepEqual(store.log, ['keep m1,m2', 'keep m3'], 'only what was not written yet');
  online = true;
  q.wake();
  t.mock.timers.tick(2000);
  await settle();
  assert.deepEqual(sent(post), [['m1', 'm2', 'm3']]);
});

test('leaving while offline or failing: no keepalive, everything kept in the store, released', async () => {
  const post = fakePost([{ ok: false, retry: true, status: 0 }]);
  const store = fakeStore();
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger(), store, random: () => 0 });
  q.push(item(1));
  await q.flush(); // network error: failing
  q.push(item(2));
  const unsent = q.drainForHide(new KeepaliveBudget(), true);
  assert.deepEqual(unsent.map((i) => i.message), ['m1', 'm2']);
  assert.equal(post.calls.length, 1, 'no keepalive request');
  assert.equal(store.log.at(-1), 'keep released m1,m2');
  assert.equal(q.size, 0);
});

test('hidden (not leaving): keepalive batches are forgotten by the store; the rest is kept leased and stays queued', () => {
  const post = fakePost();
  const store = fakeStore();
  const q = new BatchQueue<Item>('events', { post, url: 'u', log: fakeLogger(), store }, { maxBatchBytes: 700 });
  q.push(item(1, 600));
  q.push(item(2, 600));
  q.drainForHide(new KeepaliveBudget(1000), false);
  assert.equal(post.calls.length, 1);
  assert.equal(post.calls[0].keepalive, true);
  assert.deepEqual(store.log.slice(-2).map((l) => l.slice(0, 12)), ['forget m1xxx', 'keep m2xxxxx']);
  assert.equal(q.size, 1);
});

test('after the last attempt a batch is kept in the store for a later page instead of dropped', async () => {
  const post = fakePost([], { ok: false, retry: true, status: 503 });
  const store = fakeStore();
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger(), store }, { maxAttempts: 2 });
  q.push(item(1));
  await q.flush();
  await q.flush();
  assert.equal(store.log.at(-1), 'keep released m1');
  assert.equal(q.size, 0);
});

test('admit decides what is queued: the item, a scrubbed copy, or nothing', async () => {
  const post = fakePost();
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger(), admit: (i) => (i.message === 'm1' ? null : { ...i, message: 'scrubbed' }) });
  assert.equal(q.push(item(1)), null);
  assert.deepEqual(q.push(item(2)), { message: 'scrubbed', timestamp: 1 });
  await q.flush();
  assert.deepEqual(sent(post), [['scrubbed']]);
});

test('clear forgets what is queued and ignores the answer of a request in flight', async () => {
  const post = fakePost([{ ok: false, retry: true, status: 503 }]);
  const q = new BatchQueue<Item>('errors', { post, url: 'u', log: fakeLogger() });
  q.push(item(1));
  const f = q.flush();
  q.push(item(2));
  q.clear();
  await f;
  assert.equal(q.size, 0);
  assert.equal(q.push(item(3)), null);
  await settle();
  assert.equal(post.calls.length, 1);
});
