import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEEPALIVE_BUDGET_BYTES, KEEPALIVE_LIMIT_BYTES, KeepaliveBudget, planKeepalive } from '../src/keepalive';

test('the budget stays under the browser limit of 64 KiB', () => {
  assert.equal(KEEPALIVE_LIMIT_BYTES, 65536);
  assert.ok(KEEPALIVE_BUDGET_BYTES < KEEPALIVE_LIMIT_BYTES);
});

test('reservations count in-flight bytes until released', () => {
  const budget = new KeepaliveBudget(100);
  assert.ok(budget.tryReserve(60));
  assert.equal(budget.remaining, 40);
  assert.ok(!budget.tryReserve(41));
  assert.ok(budget.tryReserve(40));
  assert.equal(budget.remaining, 0);
  budget.release(60);
  assert.equal(budget.remaining, 60);
  budget.release(1000);
  assert.equal(budget.remaining, 100, 'never below zero in flight');
});

test('planning picks bodies in priority order, skipping what does not fit', () => {
  assert.deepEqual(planKeepalive([10, 20, 30], 100), [0, 1, 2]);
  assert.deepEqual(planKeepalive([70, 40, 20, 10], 100), [0, 2, 3]);
  assert.deepEqual(planKeepalive([200, 50], 100), [1]);
  assert.deepEqual(planKeepalive([], 100), []);
  assert.deepEqual(planKeepalive([1], 0), []);
  assert.deepEqual(planKeepalive([0], 0), [0]);
});
