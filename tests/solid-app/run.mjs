// The browser half of the SolidJS proof, driven by server/tests/integration/solid_app.rs (which starts Observer
// and a Loki receiver and checks what arrived).
//
//   node run.mjs build                 vite build → dist/ (needs ../../sdk/dist from scripts/build-assets)
//   node run.mjs record <observer_url> serves dist/ on its own origin, drives Debian chromium through the app,
//                                      prints {"session_id", "fallback", "router_only_session_id"}
//
// Exits non-zero on any failure, including a missing node_modules, SDK build or chromium: nothing is skipped.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = join(here, 'dist');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic'];

function fail(message) {
  console.error(`solid-app: ${message}`);
  process.exit(1);
}

function require(path, hint) {
  if (!existsSync(join(here, path))) fail(`${path} is missing: ${hint}`);
}

async function buildApp() {
  require('node_modules/vite', 'run scripts/setup (npm ci in tests/solid-app)');
  require('../../sdk/dist/solid.esm.js', 'run scripts/build-assets (builds the SDK)');
  const { build } = await import('vite');
  await build({ root: here, logLevel: 'warn' });
  require('dist/index.html', 'vite build wrote no dist/index.html');
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json', '.css': 'text/css' };

/** dist/ on 127.0.0.1:<free port>; `/config.js` points the app at Observer; unknown paths get index.html (SPA). */
function serveApp(observerUrl) {
  const index = readFileSync(join(dist, 'index.html'));
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://app').pathname;
    if (path === '/config.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(`window.OBSERVER_ENDPOINT = ${JSON.stringify(observerUrl)};\n`);
      return;
    }
    const file = normalize(join(dist, path));
    if (file.startsWith(dist + '/') && existsSync(file) && TYPES[extname(file)]) {
      res.writeHead(200, { 'content-type': TYPES[extname(file)] });
      res.end(readFileSync(file));
      return;
    }
    res.writeHead(200, { 'content-type': TYPES['.html'] });
    res.end(index);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function sessionId(page) {
  const handle = await page.waitForFunction(() => sessionStorage.getItem('observer.session'), null, { timeout: 10000 });
  return JSON.parse(await handle.jsonValue()).id;
}

async function openApp(browser, url) {
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`[app] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[app] pageerror: ${e.message}`));
  // The first replay chunk leaves about a second after rrweb's first snapshot: from then on rrweb takes markers.
  const replayStarted = page.waitForRequest((r) => r.url().includes('/api/observer/replay-events'), { timeout: 20000 });
  await page.goto(url);
  await page.waitForSelector('#home-page');
  await replayStarted;
  return page;
}

async function flush(page, what) {
  const flushed = await page.evaluate(() => window.__observerFlush());
  if (flushed !== true) fail(`flush() (${what}) resolved ${flushed}`);
}

async function record(observerUrl) {
  require('dist/index.html', 'run `node run.mjs build` first');
  if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} is missing: run scripts/setup (Debian chromium)`);
  const { chromium } = await import('playwright-core');
  const server = await serveApp(observerUrl);
  const appUrl = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const out = {};
  try {
    // 1. Autotrack and the router hook both on: one page view per navigation, the boundary's error reported.
    const page = await openApp(browser, `${appUrl}/`);
    out.session_id = await sessionId(page);
    await page.click('#signup');
    await page.click('#nav-orders');
    await page.waitForSelector('#orders-page');
    await page.waitForTimeout(400);
    await page.click('#nav-home');
    await page.waitForSelector('#home-page');
    await page.waitForTimeout(400);
    await page.click('#boom'); // PriceTag throws during render, inside <ObserverErrorBoundary>
    await page.waitForSelector('#fallback');
    out.fallback = await page.textContent('#fallback-message');
    await page.waitForTimeout(300);
    await flush(page, 'autotrack on');
    await page.close();

    // 2. autoTrack.pageViews off: the router hook alone reports the navigation.
    const context = await browser.newContext();
    const other = await openApp(context, `${appUrl}/?autotrack=off`);
    out.router_only_session_id = await sessionId(other);
    await other.click('#nav-orders');
    await other.waitForSelector('#orders-page');
    await other.waitForTimeout(400);
    await other.click('#reload-orders'); // throws inside a plain <ErrorBoundary> reporting with reportBoundaryError
    await other.waitForSelector('#orders-fallback');
    await other.waitForTimeout(300);
    await flush(other, 'autotrack off');
    await context.close();
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
    server.close();
  }
}

const [phase, ...rest] = process.argv.slice(2);
const timer = setTimeout(() => fail('timed out after 120 s'), 120000);
try {
  if (phase === 'build') await buildApp();
  else if (phase === 'record') await record(...rest);
  else fail(`unknown phase ${phase}`);
} catch (e) {
  fail(e.stack || String(e));
}
clearTimeout(timer);
