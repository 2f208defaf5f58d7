import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_BACKOFF, parseRetryAfter, retryDelay } from '../src/backoff';

test('Retry-After in seconds', () => {
  assert.equal(parseRetryAfter('0', 0), 0);
  assert.equal(parseRetryAfter('7', 0), 7000);
  assert.equal(parseRetryAfter(' 120 ', 0), 120_000);
});

test('Retry-After as an HTTP date', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now), 0, 'a date in the past means now');
});

test('absent or malformed Retry-After', () => {
  for (const v of [null, undefined, '', '  ', '-5', '1.5', 'soon', '3 seconds']) {
    assert.equal(parseRetryAfter(v as string, 0), undefined, String(v));
  }
});

test('backoff grows exponentially up to the cap, with jitter in [d/2, d]', () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    const d = Math.min(DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.baseMs * 2 ** attempt);
    assert.equal(retryDelay(attempt, undefined, () => 0), Math.floor(d / 2));
    assert.equal(retryDelay(attempt, undefined, () => 0.999999), Math.floor(d / 2 + 0.999999 * (d / 2)));
  }
  assert.equal(retryDelay(40, undefined, () => 0), DEFAULT_BACKOFF.maxMs / 2);
});

test('Retry-After is honoured: never earlier, at most one second of jitter, capped at 10 minutes', () => {
  assert.equal(retryDelay(0, 30_000, () => 0), 30_000);
  assert.equal(retryDelay(5, 30_000, () => 0.5), 30_500);
  assert.equal(retryDelay(0, 0, () => 0), 0);
  assert.equal(retryDelay(0, 3_600_000, () => 0), DEFAULT_BACKOFF.maxRetryAfterMs);
});
