// Sign in once per browser, then open replay links from elsewhere (a
// Grafana table) in new tabs: against the real observer binary end to end
// (its sign-in cookie, its fetch API, the recorded session ingested through
// its replay route), in Debian Chromium. See harness.mjs for the setup.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  CHROMIUM_ARGS,
  assertCurrentPages,
  chromiumPath,
  clockSeconds,
  fixtureChunks,
  replayFrameWith,
  startObserver,
} from './harness.mjs';

const VIEWER = 'viewer-token-for-signin-tests-0123456789';
const SESSION = 'grafana-link-session-0001';
const RECORDED_TEXT = 'Customer accounts';
const chunks = fixtureChunks();
const first = Math.min(...chunks.flatMap((c) => c.events.map((e) => e.timestamp)));
// The recorded error, as a Grafana panel knows it: its absolute time in ms.
const errorAt = chunks.flatMap((c) => c.events).find((e) => e.type === 5 && e.data?.tag === 'error').timestamp;

let observer;
let base;
let browser;

before(async () => {
  observer = await startObserver({
    OBSERVER_VIEWER_TOKENS: VIEWER,
    OBSERVER_SHARE_SECRET: 'share-secret-for-signin-tests-0123456789',
  });
  await assertCurrentPages(observer);
  base = `http://127.0.0.1:${observer.port}`;
  for (const [seq, chunk] of chunks.entries()) {
    const answer = await fetch(`${base}/api/observer/replay-events?session_id=${SESSION}&seq=${seq}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: chunk.gzip,
    });
    assert.equal(answer.status, 202, `chunk ${seq}: ${await answer.text()}`);
  }
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await observer?.stop();
});

async function signInOnSessionsPage(context, token) {
  const page = await context.newPage();
  await page.goto(`${base}/replay/`);
  await page.locator('#access').waitFor();
  await page.locator('#access-token').fill(token);
  await page.locator('#access-form button').click();
  return page;
}

test('signed in once, a Grafana link opens in a new tab and plays from just before the error', async () => {
  assert.ok(errorAt - first > 5000, 'the fixture error is more than 5 s into the recording');
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await signInOnSessionsPage(context, VIEWER);
  await page.locator('#rows tr', { hasText: SESSION }).waitFor({ timeout: 15_000 });
  assert.ok(await page.locator('#sign-out').isVisible(), 'a sign-out control');

  // The cookie the server set: HttpOnly, SameSite=Lax, expiring in ~12 h,
  // not readable by script; the token is stored nowhere.
  const cookie = (await context.cookies(base)).find((c) => c.name === 'observer_viewer');
  assert.ok(cookie, 'the sign-in cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.path, '/');
  const hours = (cookie.expires * 1000 - Date.now()) / 3600_000;
  assert.ok(hours > 11.9 && hours <= 12, `expires in ${hours} h`);
  assert.equal(await page.evaluate(() => document.cookie), '');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!stored.includes(VIEWER), `the token is not stored: ${stored}`);

  // The link a dashboard makes: ${observer_url}/replay/<session_id>?t=<epoch ms>, opened as a new tab.
  const tab = await context.newPage();
  await tab.goto(`${base}/replay/${SESSION}?t=${errorAt}`);
  await replayFrameWith(tab, RECORDED_TEXT);
  const at = await clockSeconds(tab);
  const errorOffset = (errorAt - first) / 1000;
  assert.ok(await tab.locator('#access').isHidden(), 'no token prompt');
  // 5 s before the error (1.2 s into the recording); playing since, so a little later is fine.
  assert.ok(at >= Math.floor(errorOffset - 5) && at <= errorOffset - 2, `starts just before the error: ${at} s (error at ${errorOffset} s)`);
  // Playback then reaches the error.
  await tab.locator('#status', { hasText: 'Error:' }).waitFor({ timeout: 20_000 });
  assert.equal(await tab.locator('[data-testid=error-marker]').count(), 1);

  // A plain offset still means seconds from the start.
  const offsetTab = await context.newPage();
  await offsetTab.goto(`${base}/replay/${SESSION}?t=3`);
  await replayFrameWith(offsetTab, RECORDED_TEXT);
  const offsetAt = await clockSeconds(offsetTab);
  assert.ok(offsetAt >= 3 && offsetAt <= 6, `?t=3 starts at 3 s: ${offsetAt}`);

  // Signing out (here from the player) ends it for every tab of the browser.
  await tab.locator('#sign-out').click();
  await tab.locator('#access').waitFor({ timeout: 10_000 });
  assert.equal((await context.cookies(base)).find((c) => c.name === 'observer_viewer'), undefined);
  const later = await context.newPage();
  await later.goto(`${base}/replay/${SESSION}?t=${errorAt}`);
  await later.locator('#access').waitFor();
  assert.match(await later.locator('#access-reason').innerText(), /share link or a viewer token/);
  assert.equal(await later.evaluate(() => fetch('/api/observer/replays').then((r) => r.status)), 401);
  // Signing in from the player's own prompt plays the link right there.
  await later.locator('#access-token').fill(VIEWER);
  await later.locator('#access-form button').click();
  await replayFrameWith(later, RECORDED_TEXT);
  await context.close();
});

test('a wrong viewer token signs nobody in, and another browser is not signed in', async () => {
  const context = await browser.newContext();
  const page = await signInOnSessionsPage(context, 'not-the-viewer-token-0123');
  await page.locator('#access-reason', { hasText: 'not accepted' }).waitFor();
  assert.deepEqual(await context.cookies(base), []);
  await context.close();

  // A fresh browser profile (another person) is asked, even with a signed-in one around.
  const signedIn = await browser.newContext();
  await (await signInOnSessionsPage(signedIn, VIEWER)).locator('#rows tr').first().waitFor();
  const other = await browser.newContext();
  const page2 = await other.newPage();
  await page2.goto(`${base}/replay/${SESSION}`);
  await page2.locator('#access').waitFor();
  await signedIn.close();
  await other.close();
});
