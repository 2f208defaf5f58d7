// Consent, opt-out, replay start/stop, sampling, beforeSend and the offline store, in Debian chromium
// (playwright-core) against the strict fake Observer. Run with `npm run test:browser` (after `npm run build`).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startFakeObserver } from './fake-observer.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let observer;
let site;
let browser;

/**
 * A test page; `extra` is JavaScript for more init options (functions cannot go through JSON). Web Vitals are off:
 * they are reported when a page is hidden, which would add events these tests do not look at (sdk.browser.test.mjs
 * covers them).
 */
function page(title, body, { init = {}, extra = '{}' } = {}) {
  const options = { endpoint: observer.url, key: 'test-key', debug: true, webVitals: false, ...init };
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="unsafe-url"><title>${title}</title>
<script src="/observer.js"></script>
<script>Observer.init(Object.assign(${JSON.stringify(options)}, ${extra}));</script></head><body>${body}</body></html>`;
}

const SCRUB = `{ beforeSend(item, kind) {
  if (kind === 'event' && item.name === 'drop_me') return null;
  if (kind === 'error' && item.message === 'explode') throw new Error('bug in beforeSend');
  if (kind === 'error') { item.message = item.message.replace(/\\d{4}( \\d{4}){3}/g, '[card]'); delete item.stack; }
  if (item.properties) delete item.properties.email;
  return item;
} }`;

before(async () => {
  observer = await startFakeObserver({ key: 'test-key' });
  const sdk = readFileSync(join(root, 'dist/observer.iife.js'));
  const pages = {
    '/c/pending.html': () => page('Pending', '<h1>Consent banner</h1><p>PENDING-PAGE-TEXT</p>', { init: { consent: 'pending' } }),
    '/c/plain.html': () => page('Plain', '<h1>Plain</h1><p>PLAIN-PAGE-TEXT</p>'),
    '/c/unsampled.html': () => page('Unsampled', '<p>sampled out</p>', { init: { sampleRate: 0 } }),
    '/c/scrub.html': () => page('Scrub', '<p>scrubbing</p>', { extra: SCRUB }),
  };
  site = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/observer.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      return res.end(sdk);
    }
    if (pages[path]) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end(pages[path]());
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => site.listen(0, 'localhost', r));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  if (site) await new Promise((r) => site.close(r));
  if (observer) await observer.close();
});

const siteUrl = (path) => `http://localhost:${site.address().port}${path}`;

/** A page in a fresh context, with every request it makes to Observer and every error it throws. */
async function open(context) {
  const ctx = context || (await browser.newContext());
  const p = await ctx.newPage();
  const sent = [];
  const pageErrors = [];
  p.on('request', (r) => {
    if (r.url().startsWith(observer.url)) sent.push(r.url());
  });
  p.on('pageerror', (e) => pageErrors.push(e.message));
  return { context: ctx, page: p, sent, pageErrors };
}

const storageKeys = (p) => p.evaluate(() => [...Object.keys(localStorage), ...Object.keys(sessionStorage)].filter((k) => k.startsWith('observer')).sort());
const sid = (p) => p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
const chunksOf = (id) => [...observer.state.chunks.values()].filter((c) => c.sid === id).sort((a, b) => a.seq - b.seq);

test('consent pending: no request, no recording, no storage until consent(true); then it starts', async () => {
  const { context, page: p, sent, pageErrors } = await open();
  await p.goto(siteUrl('/c/pending.html'));
  await p.evaluate(() => {
    Observer.track('before_consent');
    Observer.captureException(new Error('before consent'));
    Observer.identify('user-before');
    Observer.replay.start();
    document.body.append('MUTATION-BEFORE-CONSENT');
  });
  await p.waitForTimeout(3000);
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  assert.deepEqual(sent, [], 'not a single request to Observer');
  assert.deepEqual(await storageKeys(p), [], 'nothing stored');

  const grantedAt = Date.now();
  await p.evaluate(() => Observer.consent(true));
  await p.evaluate(() => Observer.track('after_consent'));
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const id = await sid(p);
  assert.deepEqual(await storageKeys(p), ['observer.session', 'observer.visitor']);
  await context.close();

  const events = observer.state.events.filter((e) => e.session_id === id);
  assert.deepEqual(events.map((e) => e.name || e.type).sort(), ['after_consent', 'page_view']);
  assert.ok(!observer.state.errors.some((e) => e.message === 'before consent'), 'calls before consent were not kept');
  const chunks = chunksOf(id);
  assert.ok(chunks.length > 0, 'recording started on consent');
  assert.deepEqual(chunks[0].events.slice(0, 2).map((e) => e.type), [4, 2], 'from a full snapshot');
  assert.ok(chunks[0].events[0].timestamp >= grantedAt - 1000, 'nothing recorded before consent');
  assert.ok(chunks[0].text.includes('MUTATION-BEFORE-CONSENT'), 'the page as it is at consent time');
  assert.deepEqual(pageErrors, []);
});

test('consent(false) keeps it off; withdrawing consent stops everything at once', async () => {
  const { context, page: p, sent } = await open();
  await p.goto(siteUrl('/c/pending.html'));
  await p.evaluate(() => Observer.consent(false));
  await p.evaluate(() => Observer.track('refused'));
  await p.waitForTimeout(2500);
  assert.deepEqual(sent, []);
  await p.evaluate(() => Observer.consent(true));
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  assert.ok(sent.length > 0);
  await p.evaluate(() => {
    Observer.track('queued_then_withdrawn');
    Observer.consent(false);
  });
  const count = sent.length;
  await p.waitForTimeout(2500);
  assert.equal(sent.length, count, 'nothing sent after withdrawal');
  assert.deepEqual(await storageKeys(p), [], 'ids forgotten');
  await context.close();
  assert.ok(!observer.state.events.some((e) => e.name === 'queued_then_withdrawn' || e.name === 'refused'));
});

test('optOut stops everything at once and holds across page loads until optIn', async () => {
  const { context, page: p, sent } = await open();
  await p.goto(siteUrl('/c/plain.html'));
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const id = await sid(p);
  const chunksBefore = chunksOf(id).length;
  await p.evaluate(() => {
    Observer.track('queued_then_opted_out');
    document.body.append('AFTER-OPT-OUT');
    Observer.optOut();
  });
  const count = sent.length;
  await p.waitForTimeout(6500);
  assert.equal(sent.length, count, 'no request after optOut (queued items dropped, recording stopped)');
  assert.deepEqual(await storageKeys(p), ['observer.optout']);

  await p.reload();
  await p.evaluate(() => Observer.track('after_reload'));
  await p.waitForTimeout(3000);
  assert.equal(sent.length, count, 'still nothing after a reload');
  assert.deepEqual(await storageKeys(p), ['observer.optout']);

  await p.evaluate(() => Observer.optIn());
  await p.evaluate(() => Observer.track('after_opt_in'));
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  assert.deepEqual(await p.evaluate(() => localStorage.getItem('observer.optout')), null);
  await context.close();
  assert.equal(chunksOf(id).length, chunksBefore);
  assert.ok(!chunksOf(id).some((c) => c.text.includes('AFTER-OPT-OUT')));
  const names = observer.state.events.map((e) => e.name);
  assert.ok(!names.includes('queued_then_opted_out') && !names.includes('after_reload'));
  assert.ok(names.includes('after_opt_in'));
});

test('replay.stop() sends what was recorded and stops; replay.start() resumes with a full snapshot', async () => {
  const { context, page: p, pageErrors } = await open();
  await p.goto(siteUrl('/c/plain.html'));
  await p.waitForTimeout(300);
  assert.equal(await p.evaluate(() => Observer.replay.stop()), true, 'stop resolves once the recording is delivered');
  const id = await sid(p);
  const stoppedAt = chunksOf(id).length;
  assert.ok(stoppedAt > 0);
  await p.evaluate(() => {
    Observer.replay.stop();
    document.body.append('WHILE-STOPPED');
  });
  await p.waitForTimeout(6000);
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  assert.equal(chunksOf(id).length, stoppedAt, 'no chunk while stopped');
  assert.equal(await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).sampled), false, 'kept for the session');

  await p.evaluate(() => {
    Observer.replay.start();
    Observer.replay.start();
  });
  await p.waitForTimeout(200);
  await p.evaluate(() => document.body.append('AFTER-RESTART'));
  await p.waitForTimeout(200);
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  await context.close();
  const chunks = chunksOf(id);
  assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i), 'one session, contiguous seqs');
  const resumed = chunks.slice(stoppedAt);
  assert.ok(resumed.length > 0);
  const events = resumed.flatMap((c) => c.events);
  assert.deepEqual(events.slice(0, 2).map((e) => e.type), [4, 2], 'resumes with Meta + FullSnapshot');
  assert.equal(events.filter((e) => e.type === 2).length, 1, 'one recording (start twice is one start)');
  assert.ok(resumed.some((c) => c.text.includes('AFTER-RESTART')));
  assert.deepEqual(observer.state.conflicts, []);
  assert.deepEqual(pageErrors, []);
});

test('sampleRate 0 drops errors and events (the replay keeps its own rate)', async () => {
  const { context, page: p, sent } = await open();
  await p.goto(siteUrl('/c/unsampled.html'));
  await p.evaluate(() => {
    Observer.track('sampled_out');
    Observer.captureException(new Error('sampled out error'));
  });
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const id = await sid(p);
  await context.close();
  assert.equal(observer.state.events.filter((e) => e.session_id === id).length, 0);
  assert.equal(observer.state.errors.filter((e) => e.session_id === id).length, 0);
  assert.ok(sent.every((u) => u.includes('/replay-events')), 'only replay requests');
  assert.ok(chunksOf(id).length > 0);
});

test('beforeSend scrubs and drops; one that throws drops the item and nothing reaches the page', async () => {
  const { context, page: p, pageErrors } = await open();
  await p.goto(siteUrl('/c/scrub.html'));
  await p.evaluate(() => {
    Observer.captureException(new Error('card 4111 1111 1111 1111 declined'));
    Observer.captureException(new Error('explode'));
    Observer.track('drop_me');
    Observer.track('kept', { email: 'a@b.c', plan: 'pro' });
  });
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const id = await sid(p);
  await context.close();
  const errors = observer.state.errors.filter((e) => e.session_id === id);
  assert.deepEqual(errors.map((e) => [e.message, e.stack]), [['card [card] declined', undefined]]);
  const names = observer.state.events.filter((e) => e.session_id === id).map((e) => e.name || e.type);
  assert.deepEqual(names.sort(), ['kept', 'page_view']);
  assert.deepEqual(observer.state.events.find((e) => e.name === 'kept').properties, { plan: 'pro' });
  const marks = chunksOf(id)
    .flatMap((c) => c.events)
    .filter((e) => e.type === 5 && e.data.tag === 'error');
  assert.deepEqual(marks.map((m) => m.data.payload.message), ['card [card] declined'], 'the replay marks the scrubbed error only');
  assert.ok(!chunksOf(id).some((c) => c.text.includes('4111')));
  assert.deepEqual(pageErrors, []);
});

test('an error captured offline is sent by the next page load of the origin after the tab was closed, exactly once', async () => {
  const context = await browser.newContext();
  const first = await open(context);
  await first.page.goto(siteUrl('/c/plain.html'));
  assert.equal(await first.page.evaluate(() => Observer.flush()), true);
  await context.setOffline(true);
  await first.page.evaluate(() => Observer.captureException(new Error('captured while offline')));
  await first.page.waitForTimeout(2500);
  assert.equal(await first.page.evaluate(() => Observer.flush()), false, 'not delivered while offline');
  const stored = await first.page.evaluate(() => JSON.parse(localStorage.getItem('observer.queue')));
  assert.deepEqual(stored.q.map((r) => r.d.message), ['captured while offline'], 'written down within a second');
  // Closed like a tab (pagehide runs); close() returns before the page is gone, so wait for it.
  const closed = new Promise((r) => first.page.once('close', r));
  await first.page.close({ runBeforeUnload: true });
  await closed;
  assert.ok(!observer.state.errors.some((e) => e.message === 'captured while offline'));

  await context.setOffline(false);
  const second = await open(context);
  await second.page.goto(siteUrl('/c/plain.html'));
  // flush() waits for the takeover (claim, then read back 0.5 s later) and sends what it took over.
  assert.equal(await second.page.evaluate(() => Observer.flush()), true);
  assert.equal(observer.state.errors.filter((e) => e.message === 'captured while offline').length, 1, 'delivered by the next page');
  assert.equal(await second.page.evaluate(() => localStorage.getItem('observer.queue')), null, 'store emptied after the 2xx');
  // A third page of the origin finds nothing left to send.
  const third = await open(context);
  await third.page.goto(siteUrl('/c/plain.html'));
  await third.page.waitForTimeout(1000);
  assert.equal(await third.page.evaluate(() => Observer.flush()), true);
  assert.equal(await third.page.evaluate(() => localStorage.getItem('observer.queue')), null, 'store emptied after the 2xx');
  await context.close();
  const delivered = observer.state.errors.filter((e) => e.message === 'captured while offline');
  assert.equal(delivered.length, 1, 'exactly once');
  assert.match(delivered[0]._referer, /plain\.html/);
  assert.deepEqual(observer.state.refused, []);
});
