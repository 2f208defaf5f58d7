// Live sessions and the sessions page, end to end against the real observer
// binary (its listing with server-side filters, its manifest polling), in
// Debian Chromium. Chunks are posted through /api/observer/replay-events
// as the SDK would; see harness.mjs for the setup.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, artifacts, assertCurrentPages, chromiumPath, clockSeconds, replayFrameWith, startObserver } from './harness.mjs';

const VIEWER = 'viewer-token-for-live-tests-0123456789';
// Long enough to post a chunk after opening the player, short enough to see the session go idle.
const LIVE_WINDOW_S = 12;
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0';

let observer;
let base;
let browser;

before(async () => {
  observer = await startObserver({
    OBSERVER_VIEWER_TOKENS: VIEWER,
    OBSERVER_SHARE_SECRET: 'share-secret-for-live-tests-0123456789',
    OBSERVER_LIVE_WINDOW: `${LIVE_WINDOW_S}s`,
  });
  await assertCurrentPages(observer);
  base = `http://127.0.0.1:${observer.port}`;
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await observer?.stop();
});

/** Posts one chunk as the SDK does; resolves with the time of the 202. */
async function post(session, seq, events, { user = 'user-1', agent = CHROME } = {}) {
  const answer = await fetch(`${base}/api/observer/replay-events?session_id=${session}&seq=${seq}&user_id=${user}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'user-agent': agent },
    body: gzipSync(JSON.stringify(events)),
  });
  assert.equal(answer.status, 202, `${session}/${seq}: ${await answer.text()}`);
  return Date.now();
}

/** Meta + a full snapshot of a page whose body holds `text` (node ids 1–7). */
function firstChunk(t0, href, text) {
  const node = {
    type: 0,
    id: 1,
    childNodes: [
      { type: 1, name: 'html', publicId: '', systemId: '', id: 2 },
      {
        type: 2,
        tagName: 'html',
        attributes: {},
        id: 3,
        childNodes: [
          { type: 2, tagName: 'head', attributes: {}, childNodes: [], id: 4 },
          {
            type: 2,
            tagName: 'body',
            attributes: {},
            id: 5,
            childNodes: [{ type: 2, tagName: 'h1', attributes: {}, id: 6, childNodes: [{ type: 3, textContent: text, id: 7 }] }],
          },
        ],
      },
    ],
  };
  return [
    { type: 4, timestamp: t0, data: { href, width: 1024, height: 700 } },
    { type: 2, timestamp: t0 + 10, data: { node, initialOffset: { left: 0, top: 0 } } },
  ];
}

/** An rrweb mutation adding `<p>text</p>` to the body (node ids from `id`). */
function addParagraph(timestamp, id, text) {
  return {
    type: 3,
    timestamp,
    data: {
      source: 0,
      texts: [],
      attributes: [],
      removes: [],
      adds: [
        { parentId: 5, nextId: null, node: { type: 2, tagName: 'p', attributes: { id: `p${id}` }, childNodes: [], id } },
        { parentId: id, nextId: null, node: { type: 3, textContent: text, id: id + 1 } },
      ],
    },
  };
}

const errorEvent = (timestamp) => ({ type: 5, timestamp, data: { tag: 'error', payload: { message: 'Boom', type: 'Error' } } });

async function signedInPage(path) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}${path}${path.includes('?') ? '&' : '?'}token=${VIEWER}`);
  return page;
}

test('the sessions page filters on the server, shows the new columns and is driven by the keyboard', async () => {
  const t = Date.now() - 60_000;
  const ids = { cart: `cart-session-${t}`, blog: `blog-session-${t}`, old: `old-session-${t}` };
  await post(ids.old, 0, firstChunk(Date.parse('2024-03-10T12:00:00Z'), 'https://shop.example/home', 'Old'), { user: 'carol' });
  await post(ids.cart, 0, [...firstChunk(t, 'https://shop.example/cart', 'Cart'), errorEvent(t + 500)], { user: 'alice' });
  await post(ids.cart, 1, [...firstChunk(t + 4000, 'https://shop.example/pay', 'Pay'), errorEvent(t + 4500)], { user: 'alice' });
  await post(ids.blog, 0, firstChunk(t + 1000, 'https://blog.example/post', 'Post'), { user: 'bob', agent: FIREFOX });

  const page = await signedInPage('/replay/');
  const rows = page.locator('#rows tr');
  await rows.nth(2).waitFor({ timeout: 15_000 });
  const texts = await rows.allInnerTexts();
  assert.equal(texts.length, 3);
  const cart = texts.find((r) => r.includes(ids.cart));
  // Duration 0:04, 2 pages, 2 errors, Chrome on Linux, alice, live.
  assert.match(cart, /0:04\s+2\s+2\s+Chrome\s+Linux\s+alice\s+https:\/\/shop\.example\/cart/);
  assert.match(texts.find((r) => r.includes(ids.blog)), /Firefox\s+Windows\s+bob/);
  assert.equal(await page.locator(`#rows tr:has-text("${ids.cart}") [data-testid=live-marker]`).count(), 1);
  assert.equal(await page.locator(`#rows tr:has-text("${ids.old}") [data-testid=live-marker]`).count(), 1, 'received just now');

  const listed = async () => (await rows.allInnerTexts()).map((r) => Object.values(ids).find((id) => r.includes(id)));
  const requests = [];
  page.on('request', (r) => r.url().includes('/api/observer/replays?') && requests.push(new URL(r.url()).search));

  // "/" focuses the filters; Enter applies them; the server filters (the request says so).
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'f-user');
  await page.keyboard.type('alice');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  assert.deepEqual(await listed(), [ids.cart]);
  assert.ok(requests.some((q) => q.includes('user_id=alice')), requests.join(' '));
  assert.match(page.url(), /user_id=alice/, 'kept in the address bar');

  await page.locator('#f-clear').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 3);
  await page.locator('#f-errors').check();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  assert.deepEqual(await listed(), [ids.cart]);
  await page.locator('#f-errors').uncheck();
  await page.locator('#f-url').fill('SHOP.example');
  await page.locator('#f-url').press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2);
  assert.deepEqual(await listed(), [ids.cart, ids.old]);
  // A date range: only March 2024.
  await page.locator('#f-url').fill('');
  await page.locator('#f-from').fill('2024-03-01');
  await page.locator('#f-to').fill('2024-03-31');
  await page.locator('#filters button[type=submit]').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1);
  assert.deepEqual(await listed(), [ids.old]);
  await page.locator('#f-clear').click();
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 3);
  await page.screenshot({ path: join(artifacts, 'replay-sessions-filters.png') });

  // Keyboard: the first row is selected; j/↓ and k/↑ move; Enter opens the selected one.
  const selectedId = () => page.locator('#rows tr.is-selected td.id a').innerText();
  await page.locator('#sessions h1').click();
  assert.equal(await selectedId(), ids.blog, 'newest first, first row selected');
  await page.keyboard.press('j');
  assert.equal(await selectedId(), ids.cart);
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  assert.equal(await selectedId(), ids.old, 'stays on the last row');
  await page.keyboard.press('k');
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('j');
  assert.equal(await selectedId(), ids.cart);
  await page.keyboard.press('Enter');
  await page.waitForURL(`${base}/replay/${ids.cart}`);
  await replayFrameWith(page, 'Pay');
  await page.context().close();
});

test('a live session plays live: a chunk posted after opening shows within 5 s, scrub back, jump to live, idle', async (t) => {
  const session = `live-session-${Date.now()}`;
  const t0 = Date.now() - 8000;
  await post(session, 0, [...firstChunk(t0, 'https://app.example/live', 'Live test start'), addParagraph(t0 + 3000, 20, 'Early')]);
  await post(session, 1, [addParagraph(Date.now() - 1000, 30, 'Second chunk')]);

  const page = await signedInPage(`/replay/${session}`);
  const live = page.locator('[data-testid=live-indicator]');
  await live.waitFor({ state: 'visible', timeout: 10_000 });
  // It starts from the beginning, as every replay does; "Jump to live" goes to the newest events.
  const jump = page.locator('#jump-live');
  await replayFrameWith(page, 'Live test start');
  assert.ok(await jump.isVisible(), 'behind the live edge at first');
  await jump.click();
  await replayFrameWith(page, 'Second chunk');
  await jump.waitFor({ state: 'hidden', timeout: 3000 });
  assert.match(await live.getAttribute('class'), /live--edge/, 'at the live edge');
  const durationBefore = await page.locator('#info-duration').innerText();

  // A new chunk through the real server: its event shows in the replay within 5 s of the 202.
  const acceptedAt = await post(session, 2, [addParagraph(Date.now() - 300, 40, 'Posted while watching')]);
  const frame = await replayFrameWith(page, 'Posted while watching', 5000);
  const delay = Date.now() - acceptedAt;
  assert.ok(delay <= 5000, `shown ${delay} ms after the 202`);
  t.diagnostic(`new chunk shown ${delay} ms after its 202`);
  assert.ok(await frame.locator('#p40').isVisible());
  assert.notEqual(await page.locator('#info-duration').innerText(), durationBefore, 'the duration grew');
  assert.ok(await live.isVisible(), 'still live');

  // Scrub back: the viewer is behind, and "Jump to live" returns to the end.
  await page.locator('#play').click(); // pause, so the earlier moment stays earlier
  const timeline = await page.locator('#timeline').boundingBox();
  await page.mouse.click(timeline.x + 3, timeline.y + timeline.height / 2);
  await jump.waitFor({ state: 'visible', timeout: 3000 });
  assert.ok((await clockSeconds(page)) <= 1, 'back at the start');
  assert.doesNotMatch(await live.getAttribute('class'), /live--edge/);
  await page.screenshot({ path: join(artifacts, 'replay-live-scrubbed.png') });
  await jump.click();
  await jump.waitFor({ state: 'hidden', timeout: 3000 });
  const end = (await page.locator('#clock').innerText()).split('/')[1].trim().split(':').map(Number);
  const endSeconds = end[0] * 60 + end[1];
  assert.ok((await clockSeconds(page)) >= endSeconds - 2, `at the end: ${await page.locator('#clock').innerText()}`);
  assert.match(await live.getAttribute('class'), /live--edge/);

  // No chunk for longer than the live window: following stops.
  await live.waitFor({ state: 'hidden', timeout: (LIVE_WINDOW_S + 8) * 1000 });
  assert.ok(await jump.isHidden());
  await page.context().close();
});
