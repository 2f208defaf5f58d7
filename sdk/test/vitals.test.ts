import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toWebVital, watchVitals, type VitalMetric, type WebVital, type WebVitalsApi } from '../src/capture/vitals';

test('metrics become web_vital fields, rounded; what the server would refuse is dropped', () => {
  assert.deepEqual(toWebVital({ name: 'LCP', value: 1234.5678, rating: 'good', id: 'a', navigationType: 'navigate' }), { name: 'LCP', value: 1234.6, rating: 'good', navigation_type: 'navigate' });
  assert.deepEqual(toWebVital({ name: 'CLS', value: 0.123456, rating: 'needs-improvement', id: 'b' }), { name: 'CLS', value: 0.1235, rating: 'needs-improvement' });
  assert.equal(toWebVital({ name: 'FID', value: 1, rating: 'good', id: 'c' }), undefined);
  assert.equal(toWebVital({ name: 'LCP', value: 700_000, rating: 'poor', id: 'd' }), undefined);
  assert.equal(toWebVital({ name: 'TTFB', value: NaN, rating: 'poor', id: 'e' }), undefined);
  assert.equal(toWebVital({ name: 'INP', value: 10, rating: 'bad', id: 'f' }), undefined);
});

test('each metric instance is passed on once; a missing library resolves false', async () => {
  const callbacks: Array<(m: VitalMetric) => void> = [];
  const on = (cb: (m: VitalMetric) => void) => void callbacks.push(cb);
  const api: WebVitalsApi = { onLCP: on, onINP: on, onCLS: on, onFCP: on, onTTFB: on };
  const got: WebVital[] = [];
  assert.equal(await watchVitals(async () => api, (v) => got.push(v)), true);
  assert.equal(callbacks.length, 5);
  callbacks[3]({ name: 'CLS', value: 0.1, rating: 'good', id: 'v1' });
  callbacks[3]({ name: 'CLS', value: 0.2, rating: 'needs-improvement', id: 'v1' });
  callbacks[3]({ name: 'CLS', value: 0.3, rating: 'poor', id: 'v2' });
  assert.deepEqual(got.map((v) => v.value), [0.1, 0.3]);
  assert.equal(await watchVitals(async () => undefined, () => undefined), false);
  assert.equal(await watchVitals(() => Promise.reject(new Error('x')), () => undefined), false);
});
