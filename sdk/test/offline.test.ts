import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLAIM_CHECK_MS, LEASE_MS, MAX_SENDS, OFFLINE_KEY, OfflineStore } from '../src/control/offline';
import type { Parcel } from '../src/queue';
import { safeStore } from '../src/storage';
import { FakeStorage, fakeLogger } from './helpers';

/** Two pages of one origin: one localStorage, one clock. */
function origin() {
  const area = new FakeStorage();
  const clock = { now: 1_000_000 };
  const page = (id: string, maxItems?: number, maxChars?: number) =>
    new OfflineStore(safeStore(() => area), id, fakeLogger(), () => clock.now, maxItems, maxChars);
  const stored = () => JSON.parse(area.getItem(OFFLINE_KEY) || '{"q":[]}') as { dropped: number; q: Array<{ i: string; o: string; l: number; n: number }> };
  return { area, clock, page, stored };
}
const parcel = (id: string, extra: object = {}): Parcel => ({ id, item: { message: id, ...extra } });

test('a batch is written down before it is sent and removed after the answer', () => {
  const o = origin();
  const a = o.page('page-a');
  const batch = [parcel('e1'), parcel('e2')];
  assert.deepEqual(a.sending('errors', batch), batch);
  assert.ok(batch.every((p) => p.stored));
  assert.deepEqual(o.stored().q.map((r) => [r.i, r.o, r.n, r.l]), [['e1', 'page-a', 1, 1_000_000 + LEASE_MS], ['e2', 'page-a', 1, 1_000_000 + LEASE_MS]]);
  a.forget(batch);
  assert.equal(o.area.getItem(OFFLINE_KEY), null, 'nothing left, key removed');
});

test('released items are taken over by the next page, claimed and read back', () => {
  const o = origin();
  const a = o.page('page-a');
  a.keep('errors', [parcel('e1')], true);
  a.keep('events', [{ id: 'v1', item: { type: 'custom', name: 'x' } }], false);
  const b = o.page('page-b');
  assert.equal(b.claim(), 1, 'only the released item: the leased one belongs to a running page');
  const got = b.claimed();
  assert.deepEqual(got.map((r) => [r.i, r.k, r.d]), [['e1', 'errors', { message: 'e1' }]]);
  assert.equal(o.page('page-c').claim(), 0, 'claimed items are not claimed again');
  o.clock.now += LEASE_MS;
  assert.equal(o.page('page-c').claim(), 2, 'leases that ran out (a crashed owner) are taken over');
});

test('of two concurrent claims the last write wins, and only its page sends', () => {
  const o = origin();
  o.page('page-a').keep('errors', [parcel('e1')], true);
  const b = o.page('page-b');
  const c = o.page('page-c');
  const before = o.area.getItem(OFFLINE_KEY) as string;
  assert.equal(b.claim(), 1);
  // page-c read the store before page-b's write reached it, and wrote after: its write wins.
  const afterB = o.area.getItem(OFFLINE_KEY) as string;
  o.area.setItem(OFFLINE_KEY, before);
  assert.equal(c.claim(), 1);
  assert.notEqual(afterB, o.area.getItem(OFFLINE_KEY));
  assert.deepEqual(b.claimed(), [], `page-b reads back after ${CLAIM_CHECK_MS} ms and finds it is not the owner`);
  assert.equal(c.claimed().length, 1);
});

test('an owner whose lease ran out and was taken over does not send the item again', () => {
  const o = origin();
  const a = o.page('page-a');
  const p = parcel('e1');
  a.sending('errors', [p]);
  o.clock.now += LEASE_MS + 1;
  const b = o.page('page-b');
  b.claim();
  assert.equal(b.claimed().length, 1);
  assert.deepEqual(a.sending('errors', [p]), [], 'page-a (frozen while hidden) lost it to page-b');
  b.forget([{ id: 'e1', item: {} }]);
  assert.deepEqual(a.sending('errors', [p]), [], 'gone from the store: delivered by page-b');
  assert.equal(o.area.getItem(OFFLINE_KEY), null);
});

test(`a crash loop resends an item at most ${MAX_SENDS} times, one page per lease`, () => {
  const o = origin();
  let sends = 0;
  for (let load = 0; load < 50; load++) {
    const page = o.page('page-' + load);
    if (load === 0) page.keep('errors', [parcel('e1')], true);
    page.claim();
    const claimed = page.claimed();
    const parcels = claimed.map((r) => ({ id: r.i, item: r.d, stored: true }));
    sends += page.sending('errors', parcels).length;
    // the page crashes before the answer; the next load comes after the lease ran out
    o.clock.now += LEASE_MS;
  }
  assert.equal(sends, MAX_SENDS);
  assert.deepEqual(o.stored().q, []);
});

test('bounded by count and characters: the oldest are dropped first, and counted', () => {
  const o = origin();
  const a = o.page('page-a', 3, 100_000);
  a.keep('errors', ['e1', 'e2', 'e3', 'e4', 'e5'].map((id) => parcel(id)), true);
  assert.deepEqual(o.stored().q.map((r) => r.i), ['e3', 'e4', 'e5']);
  assert.equal(o.stored().dropped, 2);
  const small = origin();
  const b = small.page('page-b', 100, 450);
  b.keep('errors', [parcel('big', { stack: 'x'.repeat(200) }), parcel('s1'), parcel('s2')], true);
  b.keep('errors', [parcel('s3', { stack: 'y'.repeat(150) })], true);
  assert.ok((small.area.getItem(OFFLINE_KEY) as string).length <= 450);
  assert.deepEqual(small.stored().q.map((r) => r.i), ['s1', 's2', 's3']);
  assert.equal(small.stored().dropped, 1);
});

test('items older than 7 days are dropped; corrupt stores are ignored; clear forgets all', () => {
  const o = origin();
  o.page('page-a').keep('errors', [parcel('old')], true);
  o.clock.now += 8 * 86_400_000;
  assert.equal(o.page('page-b').claim(), 0);
  o.area.setItem(OFFLINE_KEY, '{"q":[1,{"i":"x"},{"i":"ok","k":"errors","t":' + o.clock.now + ',"n":0,"o":"p","l":0,"d":{"message":"m"}}]}');
  assert.equal(o.page('page-c').claim(), 1);
  o.area.setItem(OFFLINE_KEY, 'garbage');
  assert.equal(o.page('page-d').claim(), 0);
  o.page('page-d').clear();
  assert.equal(o.area.getItem(OFFLINE_KEY), null);
});

test('refresh extends only this page\'s leases, at most every third of a lease', () => {
  const o = origin();
  const a = o.page('page-a');
  a.keep('errors', [parcel('e1')], false);
  o.page('page-b').keep('errors', [parcel('e2')], false);
  o.clock.now += LEASE_MS / 2;
  a.refresh();
  const leases = Object.fromEntries(o.stored().q.map((r) => [r.i, r.l]));
  assert.equal(leases.e1, o.clock.now + LEASE_MS);
  assert.equal(leases.e2, 1_000_000 + LEASE_MS);
});
