// The browser half of the end-to-end proof, driven by
// server/tests/integration/browser_e2e.rs (which starts Observer, a Loki
// receiver and the app server, and checks what arrived).
//
//   node run.mjs record <app_url>                        → prints {"session_id": …}
//   node run.mjs watch  <observer_url> <session_id> <share_token> <expired_token> <foreign_token> <screenshot_dir>
//
// Debian chromium only (never a downloaded browser). Exits non-zero on any failure.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic'];

function fail(message) {
  console.error(`e2e: ${message}`);
  process.exit(1);
}

async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS });
}

async function record(appUrl) {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.error(`[app] ${m.type()}: ${m.text()}`));
    await page.goto(`${appUrl}/index.html`);
    await page.waitForFunction(() => window.Observer && sessionStorage.getItem('observer.session'));
    await page.type('#name', 'Ada Lovelace', { delay: 15 });
    await page.type('#email', 'ada@example.com', { delay: 15 });
    await page.type('#password', 'hunter2secret', { delay: 15 });
    await page.check('#gift');
    await page.click('#add-row');
    await page.click('#add-row');
    await page.click('#save');
    await page.mouse.move(200, 300, { steps: 5 });
    await page.click('#next'); // History API navigation: a page view
    await page.waitForTimeout(400);
    await page.click('#explode'); // an uncaught TypeError
    await page.waitForTimeout(400);
    await page.click('#load-stock'); // a fetch answered 503: an HttpError
    await page.waitForSelector('#title[data-stock="503"]');
    const flushed = await page.evaluate(() => window.Observer.flush());
    if (flushed !== true) fail(`flush() on the first page resolved ${flushed}`);
    const session = JSON.parse(await page.evaluate(() => sessionStorage.getItem('observer.session')));
    // A full page load in the same tab continues the session.
    await page.click('#page2');
    await page.waitForSelector('#invoice');
    await page.waitForFunction(() => window.Observer);
    await page.type('#notes', 'Deliver after five', { delay: 15 });
    await page.waitForTimeout(300);
    const flushed2 = await page.evaluate(() => window.Observer.flush());
    if (flushed2 !== true) fail(`flush() on the second page resolved ${flushed2}`);
    const session2 = JSON.parse(await page.evaluate(() => sessionStorage.getItem('observer.session')));
    if (session2.id !== session.id) fail(`the session changed across a page load: ${session.id} → ${session2.id}`);
    console.log(JSON.stringify({ session_id: session.id }));
  } finally {
    await browser.close();
  }
}

async function replayFrame(page) {
  const handle = await page.waitForSelector('#stage iframe', { timeout: 20000 });
  return handle.contentFrame();
}

async function watch(observerUrl, sessionId, shareToken, expiredToken, foreignToken, screenshotDir) {
  const browser = await launch();
  const results = {};
  try {
    // 1. The share link plays the session.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('console', (m) => console.error(`[player] ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => console.error(`[player] pageerror: ${e.message}`));
    await page.goto(`${observerUrl}/replay/${sessionId}?token=${encodeURIComponent(shareToken)}`);
    const frame = await replayFrame(page);
    await frame.waitForSelector('#intro', { timeout: 20000 });
    // Let it play past the typing.
    await page.waitForFunction(
      () => {
        const doc = document.querySelector('#stage iframe')?.contentDocument;
        const name = doc?.querySelector('#name');
        return name && name.value.length > 0;
      },
      null,
      { timeout: 30000 },
    );
    results.intro = await frame.$eval('#intro', (el) => el.textContent);
    results.table = await frame.$eval('#orders', (el) => el.textContent);
    results.typed_name = await frame.$eval('#name', (el) => el.value);
    results.error_markers = await page.locator('[data-testid="error-marker"]').count();
    // What the SDK recorded of the console and the network, in the side panel.
    await page.waitForFunction(() => document.querySelectorAll('#network li').length > 0, null, { timeout: 20000 });
    results.network_rows = await page.$$eval('#network li', (rows) => rows.map((r) => r.textContent));
    results.console_rows = await page.$$eval('#console li', (rows) => rows.map((r) => r.textContent));
    results.token_in_address_bar = page.url().includes('token=');
    fs.mkdirSync(screenshotDir, { recursive: true });
    await page.screenshot({ path: path.join(screenshotDir, 'replay.png') });
    await context.close();

    // 2. No token: the access prompt, nothing else.
    const bare = await browser.newPage();
    await bare.goto(`${observerUrl}/replay/${sessionId}`);
    await bare.waitForSelector('#access:not([hidden])', { timeout: 10000 });
    results.bare_prompt = await bare.isVisible('#access-form');
    results.bare_iframes = await bare.locator('#stage iframe').count();
    await bare.close();

    // 3. An expired share link and one for another session are refused.
    for (const [name, token] of [['expired', expiredToken], ['foreign', foreignToken]]) {
      const p = await browser.newPage();
      await p.goto(`${observerUrl}/replay/${sessionId}?token=${encodeURIComponent(token)}`);
      await p.waitForSelector('#access:not([hidden])', { timeout: 10000 });
      results[`${name}_reason`] = await p.textContent('#access-reason');
      results[`${name}_iframes`] = await p.locator('#stage iframe').count();
      await p.close();
    }
    console.log(JSON.stringify(results));
  } finally {
    await browser.close();
  }
}

const [phase, ...rest] = process.argv.slice(2);
const timer = setTimeout(() => fail('timed out after 120 s'), 120000);
try {
  if (phase === 'record') await record(...rest);
  else if (phase === 'watch') await watch(...rest);
  else fail(`unknown phase ${phase}`);
} catch (e) {
  fail(e.stack || String(e));
}
clearTimeout(timer);
