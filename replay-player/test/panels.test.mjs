// The player's side panel in a real browser: console messages (rrweb's
// console record plugin events) and network requests (the SDK's `network`
// custom events, per the issue-10 contract) added to the real fixture
// recording at known offsets, served through the stub API (harness.mjs) with
// the pages from the real binary. Checks the offsets shown, jumping, filters,
// the current-entry highlight following playback, the keyboard, and that a
// long session is not re-rendered while it plays.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  CHROMIUM_ARGS,
  VIEWER_TOKEN,
  artifacts,
  assertCurrentPages,
  chromiumPath,
  clockSeconds,
  fixtureChunks,
  replayFrameWith,
  session,
  startHarness,
  startObserver,
} from './harness.mjs';

const RECORDED_TEXT = 'Customer accounts';
const chunks = fixtureChunks();
const first = Math.min(...chunks[0].events.map((e) => e.timestamp));
const HOSTILE = '<img src=x onerror="parent.__panelPwned=1">';

// rrweb/console@1 plugin events: each argument JSON-stringified, as the plugin stores it.
const logAt = (ms, level, args, trace = []) => ({
  type: 6,
  timestamp: first + ms,
  data: { plugin: 'rrweb/console@1', payload: { level, payload: args.map((a) => JSON.stringify(a)), trace } },
});
const requestAt = (ms, payload) => ({ type: 5, timestamp: first + ms, data: { tag: 'network', payload } });

const CONSOLE = [
  logAt(500, 'log', ['app started', { user: 42 }], ['main (https://shop.example/app.js:1:10)']),
  logAt(1000, 'info', ['cart loaded']),
  logAt(1500, 'warn', ['slow response', 1234]),
  logAt(2000, 'debug', ['debug detail']),
  logAt(3200, 'error', ['Checkout failed:', HOSTILE], ['submit (https://shop.example/app.js:40:3)', 'onclick (https://shop.example/app.js:12:7)']),
];
const OK = requestAt(1200, {
  initiator: 'fetch', method: 'GET', url: 'https://api.example.com/items?id=*', status: 200, duration_ms: 3400, request_bytes: null, response_bytes: 2048,
});
const UNAVAILABLE = requestAt(2500, {
  initiator: 'fetch', method: 'POST', url: 'https://api.example.com/cart', status: 503, duration_ms: 87, request_bytes: 120, response_bytes: 19,
});
const OFFLINE = requestAt(4000, {
  initiator: 'xhr', method: 'GET', url: 'https://api.example.com/stock?sku=*', status: 0, duration_ms: 12, request_bytes: null, response_bytes: null, error: 'Network request failed',
});

/** The fixture's chunks with each of `extra` in the chunk its time falls in; `late` ones ([seq, event]) at the end of that chunk. */
function withEvents(extra, late = []) {
  const copies = chunks.map((chunk) => structuredClone(chunk.events));
  for (const event of extra) {
    let seq = 0;
    for (let i = 0; i < copies.length; i++) if (copies[i][0].timestamp <= event.timestamp) seq = i;
    const at = copies[seq].findIndex((e) => e.timestamp > event.timestamp);
    copies[seq].splice(at < 0 ? copies[seq].length : at, 0, event);
  }
  for (const [seq, event] of late) copies[seq].push(event);
  return copies.map((events) => ({ events }));
}

// A long request (started at 1.2 s, 3.4 s long) is recorded when it ends, in chunk 3: the list must still put it first.
let release;
const released = new Promise((ok) => (release = ok));
const panels = session('panels-0001', withEvents([...CONSOLE, UNAVAILABLE, OFFLINE], [[3, OK]]), {
  gate: (seq) => (seq >= 3 ? released : null),
});

// Thousands of entries: 3000 console lines and 600 requests over the session.
const MANY_LOGS = 3000;
const MANY_REQUESTS = 600;
const span = Math.max(...chunks.at(-1).events.map((e) => e.timestamp)) - first;
const many = session(
  'panels-many-0002',
  withEvents([
    ...Array.from({ length: MANY_LOGS }, (_, i) => logAt(Math.floor((i * span) / MANY_LOGS), i % 50 === 0 ? 'error' : 'log', [`line ${i}`])),
    ...Array.from({ length: MANY_REQUESTS }, (_, i) =>
      requestAt(Math.floor((i * span) / MANY_REQUESTS), { initiator: 'fetch', method: 'GET', url: `https://api.example.com/n/${i}`, status: i % 10 ? 200 : 500, duration_ms: 5, request_bytes: null, response_bytes: 10 }),
    ),
  ]),
);

let harness;
let browser;
const cspViolations = [];

before(async () => {
  harness = await startHarness([panels, many]);
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
  await harness?.close();
});

async function openPage(path) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(`${path}: ${message.text()}`);
  });
  await page.goto(`${harness.base}${path}`);
  return page;
}

/** Each row of a list as [time, the rest of its cells], for the visible rows only. */
function rowsOf(page, list) {
  return page.locator(`#${list} > .entry:visible`).evaluateAll((rows) =>
    rows.map((row) => [...row.children].filter((c) => !c.matches('.entry__more, .entry__details')).map((c) => c.textContent)),
  );
}

async function pause(page) {
  if ((await page.locator('#play').getAttribute('aria-label')) === 'Pause') await page.locator('#play').click();
}

test('console and network entries appear at their offsets, failures highlighted, text never HTML', async () => {
  const page = await openPage(`/replay/${panels.id}?token=${VIEWER_TOKEN}`);
  await replayFrameWith(page, RECORDED_TEXT);
  // Chunks 0–2 are in (chunk 3 is held back): four console lines so far (the error at 3.2 s is in chunk 2).
  await page.locator('#count-console', { hasText: '5' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#count-network').innerText(), '2', 'the late-recorded request is not in yet');
  release();
  await page.locator('#count-network', { hasText: '3' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#tab-errors').getAttribute('aria-selected'), 'true', 'Errors is the first tab');
  assert.match(await page.locator('#errors').innerText(), /Cannot read properties of undefined/, 'the fixture error is listed');

  await page.locator('#tab-console').click();
  assert.deepEqual(await rowsOf(page, 'console'), [
    ['0:00.5', 'log', 'app started {"user":42}'],
    ['0:01.0', 'info', 'cart loaded'],
    ['0:01.5', 'warn', 'slow response 1234'],
    ['0:02.0', 'debug', 'debug detail'],
    ['0:03.2', 'error', `Checkout failed: ${HOSTILE}`],
  ]);
  await page.locator('#console .lvl-error .entry__more').click();
  await page.screenshot({ path: join(artifacts, 'replay-panels-console.png') });
  assert.equal(await page.locator('#console img').count(), 0, 'recorded text is rendered as text');
  assert.equal(await page.evaluate(() => window.__panelPwned ?? null), null);
  assert.deepEqual(await page.locator('#console .lvl-error').allInnerTexts().then((t) => t.length), 1);
  assert.equal(await page.locator('#bad-console').innerText(), '1', 'the Console tab counts its errors');
  assert.deepEqual(
    await page.locator('[data-level] .n').allInnerTexts(),
    ['1', '1', '1', '1', '1'],
    'log, info, warn, error, other',
  );

  await page.locator('#tab-network').click();
  assert.deepEqual(await rowsOf(page, 'network'), [
    ['0:01.2', 'GET', 'https://api.example.com/items?id=*', '200', '3.40 s · 2.0 KB'],
    ['0:02.5', 'POST', 'https://api.example.com/cart', '503', '87 ms · 19 B'],
    ['0:04.0', 'GET', 'https://api.example.com/stock?sku=*', 'failed', '12 ms · —', 'Network request failed'],
  ]);
  assert.deepEqual(
    await page.locator('#network .entry').evaluateAll((rows) => rows.map((r) => r.classList.contains('is-failed'))),
    [false, true, true],
  );
  assert.equal(await page.locator('#bad-network').innerText(), '2');
  await page.screenshot({ path: join(artifacts, 'replay-panels.png') });
  await page.context().close();
});

test('clicking an entry moves the replay there; filters; the highlight follows playback', async () => {
  const page = await openPage(`/replay/${panels.id}?token=${VIEWER_TOKEN}`);
  await replayFrameWith(page, RECORDED_TEXT);
  await page.locator('#count-network', { hasText: '3' }).waitFor({ timeout: 15_000 });
  await pause(page);

  // Network: click the failed xhr (4.0 s), then the 503 (2.5 s).
  await page.locator('#tab-network').click();
  const requests = page.locator('#network .entry');
  await requests.nth(2).click();
  await page.waitForFunction(() => document.getElementById('clock').textContent.startsWith('0:04'), null, { timeout: 5000 });
  assert.equal(await requests.nth(2).getAttribute('aria-current'), 'true');
  await requests.nth(1).click();
  await page.waitForFunction(() => document.getElementById('clock').textContent.startsWith('0:02'), null, { timeout: 5000 });
  assert.equal(await page.locator('#network .is-current').count(), 1);
  assert.match(await page.locator('#network .is-current').innerText(), /503/);

  // Network filters.
  await page.locator('[data-net=failed]').click();
  assert.deepEqual((await rowsOf(page, 'network')).map((r) => r[3]), ['503', 'failed']);
  await page.locator('[data-net=xhr]').click();
  assert.deepEqual((await rowsOf(page, 'network')).map((r) => r[3]), ['failed']);
  await page.locator('[data-net=fetch]').click();
  assert.deepEqual((await rowsOf(page, 'network')).map((r) => r[3]), ['200', '503']);
  await page.locator('[data-net=all]').click();
  assert.equal((await rowsOf(page, 'network')).length, 3);

  // Console level filters: errors only, then everything again.
  await page.locator('#tab-console').click();
  for (const level of ['log', 'info', 'warn', 'other']) await page.locator(`[data-level=${level}]`).click();
  assert.deepEqual((await rowsOf(page, 'console')).map((r) => r[1]), ['error']);
  assert.equal(await page.locator('[data-level=log]').getAttribute('aria-pressed'), 'false');
  await page.locator('[data-level=error]').click();
  assert.equal((await rowsOf(page, 'console')).length, 0);
  assert.match(await page.locator('#empty-console').innerText(), /No console messages at the chosen levels/);
  for (const level of ['log', 'info', 'warn', 'error', 'other']) await page.locator(`[data-level=${level}]`).click();
  assert.equal((await rowsOf(page, 'console')).length, 5);

  // The highlight follows playback: from the first line (0.5 s) to the error (3.2 s).
  const lines = page.locator('#console .entry');
  await lines.nth(0).click();
  await page.waitForFunction(() => document.getElementById('clock').textContent.startsWith('0:00'), null, { timeout: 5000 });
  assert.equal(await page.locator('#console .is-current').innerText().then((t) => t.includes('app started')), true);
  await page.mouse.move(5, 5);
  await page.locator('#play').click();
  const seen = new Set();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const current = await page.locator('#console .is-current .entry__level').innerText().catch(() => '');
    seen.add(current);
    if (current === 'error') break;
    assert.ok(Date.now() < deadline, `the highlight did not reach the error; saw ${[...seen]}`);
    await page.waitForTimeout(50);
  }
  assert.ok((await clockSeconds(page)) >= 3, 'the error is current once playback passes 3.2 s');
  assert.ok(seen.size >= 3, `the highlight moved through the lines: ${[...seen]}`);
  assert.equal(await page.locator('#console .is-current').count(), 1);
  await page.context().close();
});

test('keyboard: tabs with arrows, rows with arrows, Enter jumps, → opens the trace', async () => {
  const page = await openPage(`/replay/${panels.id}?token=${VIEWER_TOKEN}`);
  await replayFrameWith(page, RECORDED_TEXT);
  await page.locator('#count-console', { hasText: '5' }).waitFor({ timeout: 15_000 });
  await pause(page);
  await page.locator('#tab-errors').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.locator('#tab-console').getAttribute('aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-console');
  assert.ok(await page.locator('#panel-console').isVisible());
  assert.ok(await page.locator('#panel-errors').isHidden());

  // One tab stop per list (roving tabindex); arrows move between the rows.
  await page.locator('#console .entry').first().focus();
  for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowDown');
  assert.match(await page.evaluate(() => document.activeElement.textContent), /Checkout failed/);
  assert.equal(await page.locator('#console .entry[tabindex="0"]').count(), 1);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('clock').textContent.startsWith('0:03'), null, { timeout: 5000 });
  assert.match(await page.evaluate(() => document.activeElement.textContent), /Checkout failed/, 'the jump leaves the focus on the row');
  await page.keyboard.press('ArrowRight');
  const trace = page.locator('#console .is-current .entry__details');
  await trace.waitFor();
  assert.equal(await trace.innerText(), 'submit (https://shop.example/app.js:40:3)\nonclick (https://shop.example/app.js:12:7)');
  assert.equal(await page.locator('#console .is-current .entry__more').getAttribute('aria-expanded'), 'true');
  await page.keyboard.press('ArrowLeft');
  assert.ok(await trace.isHidden());
  await page.keyboard.press('Home');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('clock').textContent.startsWith('0:00'), null, { timeout: 5000 });
  await page.context().close();
});

test('thousands of entries: all listed, and playing moves the highlight without rebuilding rows', async () => {
  const page = await openPage(`/replay/${many.id}?token=${VIEWER_TOKEN}`);
  await replayFrameWith(page, RECORDED_TEXT);
  await page.locator('#count-console', { hasText: String(MANY_LOGS) }).waitFor({ timeout: 20_000 });
  await page.locator('#count-network', { hasText: String(MANY_REQUESTS) }).waitFor({ timeout: 20_000 });
  await page.locator('#tab-console').click();
  assert.equal(await page.locator('#console > .entry').count(), MANY_LOGS);
  assert.equal(await page.locator('#bad-console').innerText(), String(MANY_LOGS / 50));
  await page.mouse.move(5, 5);
  // From the start, watch what changes in the list while it plays for 2 s.
  await page.locator('#console .entry').first().click();
  await page.mouse.move(5, 5);
  await page.waitForTimeout(4500); // the click pauses following for 4 s
  const wasPlaying = (await page.locator('#play').getAttribute('aria-label')) === 'Pause';
  if (!wasPlaying) await page.locator('#play').click();
  const changes = await page.evaluate(async () => {
    const list = document.getElementById('console');
    const seen = { childList: 0, attributes: 0, names: new Set() };
    const observer = new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'childList') seen.childList++;
        else {
          seen.attributes++;
          seen.names.add(r.attributeName);
        }
      }
    });
    observer.observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
    await new Promise((ok) => setTimeout(ok, 2000));
    observer.disconnect();
    return { childList: seen.childList, attributes: seen.attributes, names: [...seen.names].sort() };
  });
  assert.equal(changes.childList, 0, 'no row is added, removed or rebuilt while playing');
  assert.ok(changes.attributes > 0, 'the highlight moved');
  assert.ok(changes.names.every((n) => ['aria-current', 'class'].includes(n)), `only the highlight changes: ${changes.names}`);
  // ~2 frames' worth of changes per frame at most (old and new current row): far from touching 3000 rows.
  assert.ok(changes.attributes < 1000, `attribute changes in 2 s: ${changes.attributes}`);
  // The current line is scrolled into view inside the list (the page itself does not scroll).
  const inView = await page.evaluate(() => {
    const row = document.querySelector('#console .is-current');
    const box = document.getElementById('scroll-console').getBoundingClientRect();
    const r = row.getBoundingClientRect();
    return { inside: r.top >= box.top - 1 && r.bottom <= box.bottom + 1, scrolled: document.getElementById('scroll-console').scrollTop, page: scrollY };
  });
  assert.ok(inView.inside && inView.scrolled > 0, `current row in view: ${JSON.stringify(inView)}`);
  assert.equal(inView.page, 0, 'following scrolls the list, not the page');
  await page.screenshot({ path: join(artifacts, 'replay-panels-many.png') });
  await page.context().close();
});

test('end to end: chunks with console and network events ingested by the real server show in the panels', async () => {
  const viewer = 'viewer-token-for-panel-tests-0123456789';
  const observer = await startObserver({ OBSERVER_VIEWER_TOKENS: viewer });
  try {
    await assertCurrentPages(observer);
    const base = `http://127.0.0.1:${observer.port}`;
    const id = 'panels-e2e-0003';
    for (const chunk of panels.chunks) {
      const answer = await fetch(`${base}/api/observer/replay-events?session_id=${id}&seq=${chunk.seq}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(JSON.stringify(chunk.events)),
      });
      assert.equal(answer.status, 202, `chunk ${chunk.seq}: ${await answer.text()}`);
    }
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(`e2e: ${message.text()}`);
    });
    await page.goto(`${base}/replay/${id}?token=${viewer}`);
    await replayFrameWith(page, RECORDED_TEXT);
    await page.locator('#count-network', { hasText: '3' }).waitFor({ timeout: 15_000 });
    await page.locator('#tab-console').click();
    assert.deepEqual((await rowsOf(page, 'console')).map((r) => r.slice(0, 2)), [
      ['0:00.5', 'log'], ['0:01.0', 'info'], ['0:01.5', 'warn'], ['0:02.0', 'debug'], ['0:03.2', 'error'],
    ]);
    await page.locator('#tab-network').click();
    await page.locator('[data-net=failed]').click();
    assert.deepEqual((await rowsOf(page, 'network')).map((r) => [r[0], r[3]]), [['0:02.5', '503'], ['0:04.0', 'failed']]);
    await context.close();
  } finally {
    await observer.stop();
  }
});

test('no Content-Security-Policy violations with the panels', () => {
  assert.deepEqual(cspViolations, []);
});
