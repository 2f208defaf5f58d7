import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveSettings, type Settings } from '../src/config';

test('defaults', () => {
  const s = resolveSettings({ endpoint: 'https://observer.example.com/' }) as Settings;
  assert.equal(s.endpoint, 'https://observer.example.com');
  assert.equal(s.debug, false);
  assert.deepEqual(s.replay, { enabled: true, sampleRate: 1, maskAllInputs: true, blockSelector: undefined, maskTextSelector: undefined });
  assert.deepEqual(s.autoTrack, { pageViews: true, errors: true });
  assert.equal(s.key, undefined);
});

test('endpoint: path prefix kept, query and fragment dropped, relative resolved against the page', () => {
  assert.equal((resolveSettings({ endpoint: 'https://x.test/obs//?a=1#f' }) as Settings).endpoint, 'https://x.test/obs');
  assert.equal((resolveSettings({ endpoint: '/' }, 'http://localhost:8080/page') as Settings).endpoint, 'http://localhost:8080');
});

test('invalid endpoints are refused with a message', () => {
  assert.equal(typeof resolveSettings({ endpoint: '' }), 'string');
  assert.equal(typeof resolveSettings({ endpoint: 'ftp://x.test' }), 'string');
  assert.equal(typeof resolveSettings({ endpoint: 'javascript:alert(1)' }), 'string');
  assert.equal(typeof resolveSettings(undefined), 'string');
});

test('options are clamped and trimmed to server limits', () => {
  const s = resolveSettings({
    endpoint: 'https://x.test',
    key: 'k1',
    serviceName: 'shop',
    release: 'r'.repeat(500),
    environment: 'e'.repeat(500),
    replay: { sampleRate: 7, maskAllInputs: false, blockSelector: '.secret' },
    autoTrack: { pageViews: false },
  }) as Settings;
  assert.equal(s.release?.length, 128);
  assert.equal(s.environment?.length, 64);
  assert.equal(s.replay.sampleRate, 1);
  assert.equal(s.replay.maskAllInputs, false);
  assert.equal(s.replay.blockSelector, '.secret');
  assert.deepEqual(s.autoTrack, { pageViews: false, errors: true });
  assert.equal((resolveSettings({ endpoint: 'https://x.test', replay: { sampleRate: -1 } }) as Settings).replay.sampleRate, 0);
  assert.equal((resolveSettings({ endpoint: 'https://x.test', replay: false }) as Settings).replay.enabled, false);
});

test('capture options: console, network and Web Vitals on by default; false or an object turns them off or tunes them', () => {
  const s = resolveSettings({ endpoint: 'https://o.example' }) as Settings;
  assert.deepEqual(s.console, { enabled: true, levels: ['log', 'info', 'warn', 'error', 'debug', 'assert', 'trace'] });
  assert.deepEqual(s.network, { enabled: true, recordErrors: true, errorStatusFrom: 500, ignoreUrls: [] });
  assert.equal(s.webVitals, true);
  const off = resolveSettings({ endpoint: 'https://o.example', console: false, network: false, webVitals: false }) as Settings;
  assert.deepEqual([off.console.enabled, off.network.enabled, off.webVitals], [false, false, false]);
  const tuned = resolveSettings({
    endpoint: 'https://o.example',
    console: { levels: ['error', 7 as unknown as string] },
    network: { recordErrors: false, errorStatusFrom: 400, ignoreUrls: ['/health', /analytics/, 3 as unknown as string] },
  }) as Settings;
  assert.deepEqual(tuned.console.levels, ['error']);
  assert.deepEqual(tuned.network, { enabled: true, recordErrors: false, errorStatusFrom: 400, ignoreUrls: ['/health', /analytics/] });
});

test('sampleRate for errors and events: one number, or one per kind, clamped; consent and beforeSend', () => {
  const base = { endpoint: 'https://x.test' };
  assert.deepEqual((resolveSettings(base) as Settings).sampleRate, { errors: 1, events: 1 });
  assert.deepEqual((resolveSettings({ ...base, sampleRate: 0.25 }) as Settings).sampleRate, { errors: 0.25, events: 0.25 });
  assert.deepEqual((resolveSettings({ ...base, sampleRate: { events: 0.1 } }) as Settings).sampleRate, { errors: 1, events: 0.1 });
  assert.deepEqual((resolveSettings({ ...base, sampleRate: { errors: -1, events: 9 } }) as Settings).sampleRate, { errors: 0, events: 1 });
  assert.deepEqual((resolveSettings({ ...base, sampleRate: NaN }) as Settings).sampleRate, { errors: 1, events: 1 });
  assert.equal((resolveSettings(base) as Settings).consent, 'granted');
  assert.equal((resolveSettings({ ...base, consent: 'pending' }) as Settings).consent, 'pending');
  assert.equal((resolveSettings({ ...base, consent: 'nonsense' as 'pending' }) as Settings).consent, 'granted');
  const fn = () => null;
  assert.equal((resolveSettings({ ...base, beforeSend: fn }) as Settings).beforeSend, fn);
  assert.equal((resolveSettings({ ...base, beforeSend: 'x' as never }) as Settings).beforeSend, undefined);
});
