import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptySpill, mergeSpill, parseSpill, Spill, SPILL_KEY, type SpillData } from '../src/spill';
import { safeStore } from '../src/storage';
import { FakeStorage } from './helpers';

const chunk = (q: number, size = 10, s = 'session-1') => ({ s, q, j: '[' + 'x'.repeat(size) + ']' });

test('merge keeps errors, then events, then replay chunks in seq order within the bound', () => {
  const add: SpillData = { errors: [{ message: 'e' }], events: [{ type: 'custom' }], replay: [chunk(3), chunk(1), chunk(2)] };
  const { data, dropped } = mergeSpill(emptySpill(), add);
  assert.equal(dropped, 0);
  assert.deepEqual(data.replay.map((c) => c.q), [1, 2, 3]);
  const small = mergeSpill(emptySpill(), { errors: [{ message: 'e' }], events: [], replay: [chunk(1, 100), chunk(2, 10)] }, 120);
  assert.deepEqual(small.data.replay.map((c) => c.q), [2], 'a chunk that does not fit is dropped, smaller later ones still go in');
  assert.equal(small.dropped, 1);
  assert.ok(JSON.stringify(small.data).length <= 120);
});

test('a chunk present twice is kept once', () => {
  const { data } = mergeSpill({ errors: [], events: [], replay: [chunk(1)] }, { errors: [], events: [], replay: [chunk(1), chunk(1, 10, 'other-session')] });
  assert.equal(data.replay.length, 2);
});

test('save, take and removeChunk through sessionStorage', () => {
  const area = new FakeStorage();
  const spill = new Spill(safeStore(() => area));
  assert.deepEqual(spill.take(), emptySpill());
  assert.deepEqual(spill.save({ errors: [{ message: 'a' }], events: [], replay: [chunk(5)] }), { dropped: 0, persisted: true });
  spill.save({ errors: [], events: [{ type: 'page_view' }], replay: [chunk(4)] });
  spill.removeChunk('session-1', 5);
  const taken = spill.take();
  assert.deepEqual(taken.errors, [{ message: 'a' }]);
  assert.deepEqual(taken.events, [{ type: 'page_view' }]);
  assert.deepEqual(taken.replay.map((c) => c.q), [4]);
  assert.equal(area.getItem(SPILL_KEY), null, 'taken means gone');
});

test('removing the last chunk removes the key', () => {
  const area = new FakeStorage();
  const spill = new Spill(safeStore(() => area));
  spill.save({ errors: [], events: [], replay: [chunk(1)] });
  spill.removeChunk('session-1', 1);
  assert.equal(area.getItem(SPILL_KEY), null);
});

test('a full sessionStorage keeps the spill in memory and says so', () => {
  const area = new FakeStorage(200);
  const spill = new Spill(safeStore(() => area));
  const result = spill.save({ errors: [], events: [], replay: [chunk(1, 500)] });
  assert.equal(result.persisted, false);
  assert.equal(spill.take().replay.length, 1, 'still there for a page that was only hidden');
});

test('corrupt spills are ignored field by field', () => {
  assert.deepEqual(parseSpill('garbage'), emptySpill());
  assert.deepEqual(parseSpill('{"errors":[1,{"message":"ok"}],"events":"no","replay":[{"s":"a","q":1},{"s":"a","q":2,"j":"[]"}]}'), {
    errors: [{ message: 'ok' }],
    events: [],
    replay: [{ s: 'a', q: 2, j: '[]' }],
  });
});
