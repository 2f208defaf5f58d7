import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryStore, safeStore } from '../src/storage';
import { FakeStorage } from './helpers';

test('a working area is used and persistent', () => {
  const area = new FakeStorage();
  const store = safeStore(() => area);
  assert.equal(store.persistent, true);
  assert.equal(store.set('k', 'v'), true);
  assert.equal(area.getItem('k'), 'v');
  assert.equal(store.get('k'), 'v');
  store.remove('k');
  assert.equal(store.get('k'), null);
  assert.equal(area.map.size, 0, 'the probe key is not left behind');
});

test('accessing the area throws (blocked storage): memory only', () => {
  const store = safeStore(() => {
    throw new Error('SecurityError: access denied');
  });
  assert.equal(store.persistent, false);
  assert.equal(store.set('k', 'v'), false);
  assert.equal(store.get('k'), 'v');
});

test('a missing area: memory only', () => {
  assert.equal(safeStore(() => undefined).persistent, false);
});

test('writes throw from the start (old Safari private mode, quota 0): memory only', () => {
  const store = safeStore(() => new FakeStorage(0));
  assert.equal(store.persistent, false);
  store.set('k', 'v');
  assert.equal(store.get('k'), 'v');
});

test('a later write over quota removes the stale stored value and keeps the new one in memory', () => {
  const area = new FakeStorage(40);
  const store = safeStore(() => area);
  assert.equal(store.set('seq', '1'), true);
  assert.equal(store.set('seq', 'x'.repeat(100)), false);
  assert.equal(area.getItem('seq'), null, 'a later page must not read the outdated value');
  assert.equal(store.get('seq'), 'x'.repeat(100));
  assert.equal(store.set('seq', '2'), true);
  assert.equal(store.get('seq'), '2');
});

test('reads that throw return null', () => {
  const area = new FakeStorage();
  const store = safeStore(() => area);
  area.broken = true;
  assert.equal(store.get('k'), null);
  store.remove('k');
});

test('memoryStore', () => {
  const store = memoryStore();
  assert.equal(store.get('a'), null);
  store.set('a', '1');
  assert.equal(store.get('a'), '1');
  store.remove('a');
  assert.equal(store.get('a'), null);
});
