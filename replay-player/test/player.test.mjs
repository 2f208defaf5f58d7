// The replay pages in a real browser: progressive start, gaps, error
// markers, access prompts, 404s, the sessions list, and that nothing from a
// recording can run script. See harness.mjs for the setup.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  CHROMIUM_ARGS,
  EXPIRED_TOKEN,
  TAMPERED_TOKEN,
  VIEWER_TOKEN,
  artifacts,
  chromiumPath,
  clockSeconds,
  fixtureChunks,
  replayFrameWith,
  session,
  startHarness,
} from './harness.mjs';

const RECORDED_TEXT = 'Customer accounts';
const chunks = fixtureChunks();

// The full session: chunk 1's first request is dropped (the player
// retries), and chunks from seq 2 on wait until the test releases them.
let release;
const released = new Promise((ok) => (release = ok));
const full = session('fixture-full-0001', chunks, {
  userId: 'user-42',
  fail: (seq, attempt) => (seq === 1 && attempt === 1 ? 'reset' : undefined),
  gate: (seq) => (seq >= 2 ? released : null),
});
// Chunk 2 is gone: the player must keep the last frame and resume at
// chunk 3's full snapshot. Chunk 3 answers late, so chunk 2's 404 is always
// reported first: the race that once started a deep link into the gap at
// the gap's edge (2.99 s) instead of waiting for the chunks after it.
const gap = session('fixture-gap-0002', chunks, {
  fail: (seq) => (seq === 2 ? 'missing' : undefined),
  gate: (seq) => (seq === 3 ? new Promise((ok) => setTimeout(ok, 1500)) : null),
});
// The SDK's identify(userId) recorded as rrweb custom events: one in chunk 1,
// a later one in chunk 3, a cleared one (null) in chunk 4. Neither the
// listing nor (at first) the manifest knows the user. Chunks from seq 2 on
// wait until the test releases them.
let releaseIdentified;
const identifiedReleased = new Promise((ok) => (releaseIdentified = ok));
const identified = session(
  'fixture-identify-0004',
  chunks.map((chunk, seq) => {
    const user = { 1: 'user-early', 3: 'user-from-recording', 4: null }[seq];
    return user === undefined ? chunk : { events: withIdentify(chunk.events, user) };
  }),
  { gate: (seq) => (seq >= 2 ? identifiedReleased : null) },
);
// A recording that tries to run script in the viewer's browser, and loads
// resources from the recorded site's origin (made once that server runs).
let hostile;

let harness;
let browser;
const cspViolations = [];

// The recorded site's other origin: an image and a stylesheet rrweb could not inline.
const PIXEL = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
const site = { referers: [], port: 0 };
const siteServer = createServer((req, res) => {
  site.referers.push(req.headers.referer ?? '');
  if (req.url === '/pixel.png') res.writeHead(200, { 'content-type': 'image/png' }).end(PIXEL);
  else res.writeHead(200, { 'content-type': 'text/css' }).end('#hostile { color: rgb(1, 2, 3); }');
});

before(async () => {
  await new Promise((ok) => siteServer.listen(0, '127.0.0.1', ok));
  site.port = siteServer.address().port;
  hostile = session('fixture-hostile-0003', [withHostileNodes(chunks[0].events), chunks[1]]);
  harness = await startHarness([full, gap, hostile, identified]);
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
  await harness?.close();
  siteServer.close();
});

async function openPage(path) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(`${path}: ${message.text()}`);
  });
  await page.goto(`${harness.base}${path}`);
  return page;
}

const served = (id) =>
  harness.requests.filter((r) => r.served && r.path.startsWith(`/api/observer/replays/${id}/chunks/`)).map((r) => Number(r.path.split('/').pop()));

test('starts after the first chunks, loads the rest while playing, marks the error', async () => {
  const page = await openPage(`/replay/${full.id}?token=${VIEWER_TOKEN}`);
  const frame = await replayFrameWith(page, RECORDED_TEXT);
  // Playing with chunk 0 (Meta + FullSnapshot); chunks 2.. are still held back.
  assert.ok(served(full.id).includes(0));
  assert.ok(served(full.id).every((seq) => seq <= 1), `served so far: ${served(full.id)}`);
  assert.ok(!page.url().includes('token='), `token removed from the address bar: ${page.url()}`);
  assert.equal(await page.locator('#info-id').innerText(), full.id);
  assert.equal(await page.locator('#info-user').innerText(), '—', 'the manifest has no user id');
  assert.match(await page.locator('#info-url').innerText(), /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(await page.locator('#info-duration').innerText(), /^0:0[78]$/);
  for (const request of harness.requests.filter((r) => r.path.startsWith('/api/'))) {
    assert.ok(!request.query.includes('token='), 'the API gets the token in a header, not the URL');
  }
  // The viewer token from the link signed in (in a header) once; the API calls carry the cookie.
  const signIns = harness.requests.filter((r) => r.path === '/api/observer/viewer/session');
  assert.deepEqual(signIns.map((r) => [r.method, r.auth]), [['POST', `Bearer ${VIEWER_TOKEN}`]]);
  const calls = harness.requests.filter((r) => r.path.startsWith(`/api/observer/replays/${full.id}`) && !r.served);
  assert.ok(calls.length > 0 && calls.every((r) => r.auth === '' && r.cookie.includes('observer_viewer=')), 'cookie, no bearer');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the sign-in cookie is HttpOnly');

  release();
  const marker = page.locator('[data-testid=error-marker]');
  await marker.waitFor({ timeout: 15_000 });
  assert.equal(await marker.count(), 1);
  assert.match(await marker.getAttribute('title'), /Cannot read properties of undefined \(reading 'profile'\)/);
  assert.match(await page.locator('#errors').innerText(), /Cannot read properties/);
  assert.equal(await page.locator('[data-testid=gap-marker]').count(), 0);
  assert.deepEqual(served(full.id).sort(), [0, 1, 2, 3, 4, 5]);
  assert.equal(harness.attempts.get(`${full.id}/1`), 2, 'chunk 1 is retried after a dropped connection');

  await page.waitForTimeout(1500);
  assert.ok((await clockSeconds(page)) >= 1, 'playback advances');
  assert.ok((await frame.evaluate(() => document.body.innerText)).includes(RECORDED_TEXT));
  await page.screenshot({ path: join(artifacts, 'replay-player.png') });

  // Speed and skip controls reach the replayer.
  await page.locator('[data-speed="4"]').click();
  assert.equal(await page.locator('[data-speed="4"]').getAttribute('aria-pressed'), 'true');
  await page.locator('#status').filter({ hasText: 'End of the recording.' }).waitFor({ timeout: 20_000 });
  await page.context().close();
});

test('a missing chunk leaves a marked gap, keeps the last frame, and playback resumes after it', async () => {
  // ?t=3.5 s lands inside the gap (chunk 2 covers 3.0–4.5 s; chunk 3's full snapshot is at 4.7 s).
  const page = await openPage(`/replay/${gap.id}?t=3.5&token=${VIEWER_TOKEN}`);
  const marker = page.locator('[data-testid=gap-marker]');
  await marker.waitFor({ timeout: 15_000 });
  assert.match(await marker.getAttribute('title'), /chunk 2 missing/);
  const frame = await replayFrameWith(page, RECORDED_TEXT);
  assert.ok((await clockSeconds(page)) >= 3, 'started at the deep link offset');
  const deadline = Date.now() + 20_000;
  while ((await clockSeconds(page)) < 6) {
    assert.ok(Date.now() < deadline, 'playback did not get past the gap');
    assert.ok((await frame.evaluate(() => document.body?.innerText ?? '')).includes(RECORDED_TEXT), 'never blank');
    await page.waitForTimeout(200);
  }
  assert.ok((await frame.evaluate(() => document.body.innerText)).includes(RECORDED_TEXT));
  assert.equal(await page.locator('[data-testid=error-marker]').count(), 1, 'errors after the gap are still marked');
  await page.screenshot({ path: join(artifacts, 'replay-player-gap.png') });
  await page.context().close();
});

test('without valid access the player asks for a token and says why', async () => {
  let page = await openPage(`/replay/${full.id}`);
  await page.locator('#access').waitFor();
  assert.match(await page.locator('#access-reason').innerText(), /share link or a viewer token/);
  await page.context().close();

  page = await openPage(`/replay/${full.id}?token=${EXPIRED_TOKEN}`);
  await page.locator('#access').waitFor();
  assert.match(await page.locator('#access-reason').innerText(), /expired/);
  await page.context().close();

  page = await openPage(`/replay/${full.id}?token=${TAMPERED_TOKEN}`);
  await page.locator('#access').waitFor();
  assert.match(await page.locator('#access-reason').innerText(), /not valid/);
  // A pasted share link opens the replay.
  await page.locator('#access-token').fill(`${harness.base}/replay/${full.id}?token=${VIEWER_TOKEN}`);
  await page.locator('#access-form button').click();
  await replayFrameWith(page, RECORDED_TEXT);
  assert.ok(await page.locator('#access').isHidden());
  await page.context().close();
});

test('unknown sessions and malformed ids get a clear 404', async () => {
  const page = await openPage(`/replay/no-such-session-0000?token=${VIEWER_TOKEN}`);
  await page.locator('#message', { hasText: 'There is no recording for session no-such-session-0000' }).waitFor();
  const answer = await page.goto(`${harness.base}/replay/bad%20id!`);
  assert.equal(answer.status(), 404);
  assert.match(await page.locator('h1').innerText(), /No such replay/);
  assert.match(answer.headers()['content-security-policy'], /default-src 'none'/);
  await page.context().close();
});

test('the user id: from identify events while loading, from the manifest when the server sends one', async () => {
  let page = await openPage(`/replay/${identified.id}?token=${VIEWER_TOKEN}`);
  await replayFrameWith(page, RECORDED_TEXT);
  const user = page.locator('#info-user');
  // Chunks 0 and 1 are in: the identify event in chunk 1 is known.
  await page.waitForFunction(() => document.getElementById('info-user').textContent === 'user-early', null, { timeout: 10_000 });
  releaseIdentified();
  // The latest identify wins; one that clears the id (null) does not blank it.
  await page.waitForFunction(() => document.getElementById('info-user').textContent === 'user-from-recording', null, { timeout: 15_000 });
  // Chunk 4 holds the cleared identify next to the recording's error: once its marker is drawn, both were read.
  await page.locator('[data-testid=error-marker]').waitFor({ timeout: 15_000 });
  assert.deepEqual(served(identified.id).sort(), [0, 1, 2, 3, 4, 5]);
  assert.equal(await user.innerText(), 'user-from-recording');
  assert.match(await page.locator('#info-url').innerText(), /^http:\/\/127\.0\.0\.1:\d+\/$/, 'first URL from the first Meta event');
  await page.context().close();

  // A server that knows the user, first URL and start sends them with the manifest: they win.
  identified.manifestExtra = { user_id: 'user-from-manifest', url: 'https://shop.example/landing', start: Date.UTC(2030, 0, 2, 12) };
  page = await openPage(`/replay/${identified.id}?token=${VIEWER_TOKEN}`);
  await replayFrameWith(page, RECORDED_TEXT);
  assert.equal(await page.locator('#info-user').innerText(), 'user-from-manifest');
  assert.equal(await page.locator('#info-url').innerText(), 'https://shop.example/landing');
  assert.match(await page.locator('#info-start').innerText(), /2030/);
  await page.waitForTimeout(500);
  assert.equal(await page.locator('#info-user').innerText(), 'user-from-manifest', 'identify events do not override the manifest');
  await page.context().close();
  identified.manifestExtra = {};
});

test('nothing in a recording can run script in the viewer, but its images and styles render', async () => {
  const page = await openPage(`/replay/${hostile.id}?token=${VIEWER_TOKEN}`);
  const frame = await replayFrameWith(page, 'hostile-marker-text');
  await page.waitForTimeout(1000);
  assert.equal(await page.evaluate(() => window.__observerPwned ?? null), null);
  assert.equal(await frame.evaluate(() => window.__observerPwned ?? null), null);
  assert.equal(await frame.evaluate(() => document.querySelectorAll('script').length), 0, 'rrweb does not rebuild scripts');
  // The recorded site's own image and (not inlined) stylesheet, from another origin.
  await frame.waitForFunction(() => document.getElementById('site-image')?.naturalWidth === 1, null, { timeout: 5000 });
  assert.equal(await frame.evaluate(() => getComputedStyle(document.getElementById('hostile')).color), 'rgb(1, 2, 3)');
  assert.deepEqual(site.referers, ['', ''], 'no Referer (the player URL may have held a token)');
  await page.context().close();
});

test('the sessions page lists sessions newest first with paging and asks for a token on 401', async () => {
  let page = await openPage(`/replay/?token=${VIEWER_TOKEN}`);
  const rows = page.locator('#rows tr');
  await rows.first().waitFor();
  assert.ok(!page.url().includes('token='));
  assert.equal(await rows.count(), 2);
  await page.locator('#more').click();
  await rows.nth(3).waitFor();
  assert.equal(await rows.count(), 4);
  assert.ok(await page.locator('#more').isHidden());
  assert.equal(await rows.first().locator('a').getAttribute('href'), `/replay/${full.id}`);
  assert.match(await rows.first().innerText(), /user-42/);
  await page.screenshot({ path: join(artifacts, 'replay-sessions.png') });
  // The stored viewer token opens a replay from the list, and the player
  // shows the user id the list knew.
  await rows.first().locator('a').click();
  await replayFrameWith(page, RECORDED_TEXT);
  assert.equal(await page.locator('#info-user').innerText(), 'user-42');
  await page.context().close();

  // A share link cannot open the list; the form signs in with a viewer token.
  page = await openPage(`/replay/?token=${TAMPERED_TOKEN}`);
  await page.locator('#access').waitFor();
  assert.match(await page.locator('#access-reason').innerText(), /opens one replay only/);
  await page.locator('#access-token').fill(VIEWER_TOKEN);
  await page.locator('#access-form button').click();
  await page.locator('#rows tr').first().waitFor();
  await page.context().close();
});

test('pages and assets carry the security and caching headers', async () => {
  const get = (path, headers = {}) => fetch(`${harness.base}${path}`, { headers });
  for (const path of ['/replay', '/replay/', `/replay/${full.id}`]) {
    const answer = await get(path);
    assert.equal(answer.status, 200, path);
    assert.match(answer.headers.get('content-type'), /^text\/html/);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.equal(answer.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
    const csp = answer.headers.get('content-security-policy');
    for (const directive of ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "connect-src 'self'"]) {
      assert.ok(csp.includes(directive), `${path}: CSP has ${directive}`);
    }
    const html = await answer.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)|<style|\sstyle=/, 'no inline script or style');
  }
  const html = await (await get(`/replay/${full.id}`)).text();
  const script = html.match(/src="(\/replay\/assets\/player-[A-Z0-9]+\.js)"/)[1];
  const asset = await get(script, { 'accept-encoding': 'gzip' });
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('cache-control'), /immutable/);
  assert.match(asset.headers.get('content-type'), /javascript/);
  const etag = asset.headers.get('etag');
  assert.ok(etag);
  assert.equal((await get(script, { 'if-none-match': etag })).status, 304);
  assert.equal((await get('/replay/assets/nope.js')).status, 404);
  assert.equal((await get('/replay/assets/..%2Fplayer.html')).status, 404);
});

test('no Content-Security-Policy violations on any page', () => {
  assert.deepEqual(cspViolations, []);
});

/**
 * Chunk 0 with an <img onerror>, a <script> and a javascript: link added to
 * <body>, plus an image and a stylesheet from the site's origin.
 */
function withHostileNodes(events) {
  const copy = structuredClone(events);
  const snapshot = copy.find((e) => e.type === 2);
  let maxId = 0;
  let body = null;
  const walk = (node) => {
    maxId = Math.max(maxId, node.id);
    if (node.tagName === 'body') body = node;
    for (const child of node.childNodes ?? []) walk(child);
  };
  walk(snapshot.data.node);
  const element = (tagName, attributes, childNodes = []) => ({ type: 2, id: ++maxId, tagName, attributes, childNodes });
  const text = (textContent) => ({ type: 3, id: ++maxId, textContent });
  body.childNodes.unshift(
    element('p', { id: 'hostile' }, [text('hostile-marker-text')]),
    element('img', { src: 'data:image/png;base64,AAAA', onerror: 'window.__observerPwned = 1; parent.__observerPwned = 1' }),
    element('script', {}, [text('window.__observerPwned = 2; parent.__observerPwned = 2;')]),
    element('a', { href: 'javascript:parent.__observerPwned=3', id: 'js-link' }, [text('link')]),
    element('img', { id: 'site-image', src: `http://localhost:${site.port}/pixel.png` }),
    element('link', { rel: 'stylesheet', href: `http://localhost:${site.port}/site.css` }),
  );
  return { events: copy };
}

/** A chunk's events with an SDK identify custom event after the first one (`user` null: the id was cleared). */
function withIdentify(events, user) {
  const copy = structuredClone(events);
  copy.splice(1, 0, { type: 5, timestamp: copy[0].timestamp, data: { tag: 'identify', payload: { user_id: user } } });
  return copy;
}
