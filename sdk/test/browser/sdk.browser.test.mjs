// The SDK in a real browser (Debian chromium via playwright-core): the built dist/observer.iife.js on test pages
// served from one origin, posting cross-origin to a strict fake Observer (fake-observer.mjs). Run with
// `npm run test:browser` (after `npm run build`).
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
const ID = /^[A-Za-z0-9_-]{8,128}$/;

let observer;
let site;
let browser;

function page(title, body, { init = {}, head = '' } = {}) {
  const options = { endpoint: observer.url, key: 'test-key', serviceName: 'smoke-shop', release: '1.2.3', environment: 'test', debug: true, replay: { maskTextSelector: '.secret' }, ...init };
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="unsafe-url"><title>${title}</title>
${head}<script src="/observer.js"></script>
<script>Observer.init(${JSON.stringify(options)});</script></head><body>${body}</body></html>`;
}

const FORM = `<h1>Checkout</h1><p class="visible">Visible paragraph content</p>
<form onsubmit="return false"><input id="name" type="text"><input id="pw" type="password"><textarea id="note"></textarea></form>
<button id="buy" onclick="Observer.track('buy_clicked', { plan: 'pro' }); Observer.identify('user-42')">Buy</button>
<div class="secret">Secret account 12345</div><a id="next" href="/app/page2.html">next</a>`;

/** A page with content for LCP/FCP, a slow click handler for INP and a shift for CLS. */
const CAPTURE = `<h1>Capture</h1><p>A paragraph that is the largest contentful paint of this page, long enough to matter.</p>
<div class="secret">Secret account 12345</div>
<button id="slow" onclick="const t = performance.now(); while (performance.now() - t < 80); document.getElementById('shift').style.marginTop = '120px'">slow</button>
<div id="shift">shifted</div><a id="leave" href="/app/page2.html">leave</a>`;

const GHOST_SESSION = 'ghostSessionLatePagehide';
const HELD_SESSION = 'ghostSessionHeldElsewhere';

/** A head script standing in for another page of the tab that holds the session (fresh heartbeat, seq 7, user-7). */
function ghostPage({ id, releaseAfterMs }) {
  const record = { id, seq: 7, sampled: true, uid: 'user-7', live: 'the-other-page', beat: '__NOW__' };
  const release = releaseAfterMs
    ? `setTimeout(() => { const r = JSON.parse(sessionStorage.getItem('observer.session')); r.seq = 8; delete r.live; delete r.beat; sessionStorage.setItem('observer.session', JSON.stringify(r)); }, ${releaseAfterMs});`
    : '';
  return `<script>sessionStorage.setItem('observer.session', ${JSON.stringify(JSON.stringify(record))}.replace('"__NOW__"', String(Date.now())));${release}</script>`;
}

function bigText() {
  // Random text compresses badly: its full snapshot cannot fit the 64 KiB keepalive budget.
  let s = '';
  for (let i = 0; i < 6000; i++) s += Math.random().toString(36).slice(2, 12) + ' ';
  return s;
}

before(async () => {
  observer = await startFakeObserver({ key: 'test-key' });
  const sdk = readFileSync(join(root, 'dist/observer.iife.js'));
  const big = bigText();
  const pages = {
    '/app/page1.html': () => page('Page one', FORM),
    '/app/page2.html': () => page('Page two', '<h1>Second page</h1><p>Arrived on page two</p>'),
    '/app/big.html': () => page('Big page', `<h1>BIG-PAGE-MARKER</h1><p>${big}</p><script>setTimeout(() => { location.href = '/app/page2.html'; }, 150);</script>`),
    '/app/down.html': () => page('Down', '<p>Observer is down</p>', { init: { endpoint: 'http://127.0.0.1:9' } }),
    '/app/quiet.html': () => page('Quiet', '<p>quiet</p>', { init: { endpoint: 'http://127.0.0.1:9', debug: false } }),
    '/app/nostorage.html': () =>
      page('No storage', '<p>no storage</p>', {
        head: `<script>for (const k of ['sessionStorage', 'localStorage']) Object.defineProperty(window, k, { get() { throw new DOMException('denied', 'SecurityError'); } });</script>`,
      }),
    '/app/unsampled.html': () => page('Unsampled', '<p>not recorded</p>', { init: { replay: { sampleRate: 0 } } }),
    // The previous page of this tab is still live when this page's script runs (its pagehide runs late, as with
    // the back/forward cache or a process swap): its fresh mark is released 400 ms later.
    '/app/late-pagehide.html': () => page('Late pagehide', '<p>after a late pagehide</p>', { head: ghostPage({ id: GHOST_SESSION, releaseAfterMs: 400 }) }),
    // ...or never: the mark of a page that goes on running (what a duplicated tab's copy of sessionStorage shows).
    '/app/held.html': () => page('Held', '<p>held by another page</p>', { head: ghostPage({ id: HELD_SESSION }) }),
    // What sessionStorage held before the SDK ran (to see the copy a window opened with window.open gets).
    '/app/probe.html': () => page('Probe', '<p>opened window</p>', { head: `<script>window.__before = sessionStorage.getItem('observer.session');</script>` }),
    '/app/capture.html': () => page('Capture', CAPTURE),
    '/app/capture-off.html': () => page('Capture off', CAPTURE, { init: { console: false, network: false, webVitals: false } }),
  };
  // The app's own API, same origin as the pages: /api/items answers 503, /api/ok 200.
  const api = {
    '/api/items': [503, '{"error":"down"}'],
    '/api/xhr': [502, 'bad gateway'],
    '/api/ok': [200, '{"ok":true}'],
    '/api/client-error': [404, 'nope'],
  };
  site = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/observer.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      return res.end(sdk);
    }
    if (api[path]) {
      res.writeHead(api[path][0], { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(api[path][1]) });
      return res.end(api[path][1]);
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

async function openPage() {
  const context = await browser.newContext();
  const p = await context.newPage();
  const console = [];
  const pageErrors = [];
  p.on('console', (m) => console.push({ type: m.type(), text: m.text() }));
  p.on('pageerror', (e) => pageErrors.push(e.message));
  return { context, page: p, console, pageErrors };
}

const chunksOf = (sid) => [...observer.state.chunks.values()].filter((c) => c.sid === sid).sort((a, b) => a.seq - b.seq);

test('records, tracks and reports across SPA navigation and a full page load, one session', async () => {
  const { context, page: p, pageErrors } = await openPage();
  await p.goto(siteUrl('/app/page1.html'));
  await p.fill('#name', 'hello typed text');
  await p.fill('#pw', 'hunter2');
  await p.fill('#note', 'private note');
  await p.click('#buy');
  await p.evaluate(() => {
    history.pushState({}, '', '/app/page1.html?step=2');
    document.title = 'Step two';
  });
  await p.waitForTimeout(200);
  await p.evaluate(() => {
    setTimeout(() => {
      throw new TypeError('boom from test');
    });
    Promise.reject(new Error('rejected from test'));
  });
  await p.waitForTimeout(1500);
  const sid = await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
  await p.click('#next');
  await p.waitForURL(/page2/);
  assert.equal(await p.evaluate(() => Observer.flush()), true, 'flush resolves true when all is delivered');
  assert.equal(await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id), sid, 'same session after a full page load');
  await context.close();

  const { state } = observer;
  assert.deepEqual(state.refused, [], 'nothing refused');
  assert.deepEqual(state.conflicts, [], 'never two contents for one seq');
  assert.equal(state.requests.filter((r) => r.method === 'OPTIONS').length, 0, 'no CORS preflight');
  assert.ok(state.requests.every((r) => r.method !== 'POST' || r.contentType === 'text/plain'), 'text/plain everywhere');

  // Replay: contiguous seqs from 0, every page load opens with Meta + FullSnapshot, gzip bodies.
  const chunks = chunksOf(sid);
  assert.ok(chunks.length >= 3, `several chunks (${chunks.length})`);
  assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i));
  // Chunks sent while the page lives are gzipped; the one sealed at pagehide leaves as plain JSON (keepalive,
  // no time to compress) or is gzipped by the next page.
  console.log('chunks', chunks.map((c) => `${c.seq}:${c.gzip ? 'gzip' : 'json'}:${c.text.length}:${/page2/.test(c.referer) ? 'page2' : 'page1'}`).join(' '));
  assert.ok(chunks.filter((c) => !c.gzip).length <= 1, 'gzip bodies but for the pagehide chunk');
  const all = chunks.flatMap((c) => c.events);
  const metas = all.filter((e) => e.type === 4).map((e) => e.data.href);
  assert.ok(metas.some((h) => h.includes('page1')) && metas.some((h) => h.includes('page2')), 'a Meta per page load');
  assert.ok(all.filter((e) => e.type === 2).length >= 2, 'a full snapshot per page load');
  for (const c of chunks) if (c.events.some((e) => e.type === 2)) assert.equal(c.events[0].type === 4 || c.events[0].type <= 1, true, 'chunk with a snapshot starts with it');
  const text = chunks.map((c) => c.text).join('\n');
  for (const secret of ['hello typed text', 'hunter2', 'private note', 'Secret account 12345']) assert.ok(!text.includes(secret), `"${secret}" masked`);
  assert.ok(text.includes('Visible paragraph content') && text.includes('Arrived on page two'), 'page content recorded');
  assert.ok(text.includes('****************'), 'typed input recorded as *');
  const marks = all.filter((e) => e.type === 5 && e.data.tag === 'error').map((e) => e.data.payload);
  assert.ok(marks.some((m) => m.message === 'boom from test' && m.type === 'TypeError' && typeof m.stack === 'string'), 'error marked in the replay');
  assert.ok(chunks.some((c) => c.userId === 'user-42'), 'user_id on chunks after identify');
  const identified = all.filter((e) => e.type === 5 && e.data.tag === 'identify');
  assert.deepEqual(identified.map((e) => e.data.payload), [{ user_id: 'user-42' }], 'identify recorded in the replay');
  const identifiedIn = chunks.find((c) => c.events.includes(identified[0]));
  assert.equal(identifiedIn.userId, 'user-42', 'the chunk holding the identify event carries user_id');

  // Errors.
  const errors = state.errors.filter((e) => e.session_id === sid);
  const boom = errors.find((e) => e.message === 'boom from test');
  assert.ok(boom, 'uncaught error reported');
  assert.equal(boom.type, 'TypeError');
  assert.match(boom.stack, /boom from test/);
  assert.match(boom.url, /page1\.html\?step=2$/);
  assert.equal(boom.release, '1.2.3');
  assert.equal(boom.environment, 'test');
  assert.equal(boom.user_id, 'user-42');
  assert.match(boom.visitor_id, ID);
  assert.deepEqual({ service: boom.context.service, mechanism: boom.context.mechanism }, { service: 'smoke-shop', mechanism: 'onerror' });
  const rejected = errors.find((e) => e.message === 'rejected from test');
  assert.ok(rejected && rejected.context.mechanism === 'unhandledrejection', 'unhandled rejection reported');

  // Events.
  const events = state.events.filter((e) => e.session_id === sid);
  const views = events.filter((e) => e.type === 'page_view');
  assert.deepEqual(views.map((v) => new URL(v.url).pathname + new URL(v.url).search), ['/app/page1.html', '/app/page1.html?step=2', '/app/page2.html']);
  assert.equal(views[1].referrer, views[0].url, 'SPA navigation: the previous page is the referrer');
  assert.equal(views[1].title, 'Step two');
  assert.equal(views[0].title, 'Page one');
  assert.ok(views[0].screen_width > 0 && views[0].screen_height > 0 && views[0].language);
  assert.equal(views[0].properties.service, 'smoke-shop');
  assert.equal(new Set(events.map((e) => e.visitor_id)).size, 1, 'one visitor');
  const buy = events.find((e) => e.type === 'custom');
  assert.deepEqual({ name: buy.name, plan: buy.properties.plan, service: buy.properties.service }, { name: 'buy_clicked', plan: 'pro', service: 'smoke-shop' });
  assert.equal(views[2].user_id, 'user-42', 'identify carries over to the next page load');

  assert.deepEqual(pageErrors.filter((m) => !/from test/.test(m)), [], 'the SDK threw nothing into the page');
});

test('a snapshot too big for keepalive is kept in sessionStorage and sent by the next page, before its own chunks', async () => {
  const { context, page: p } = await openPage();
  await p.goto(siteUrl('/app/big.html'));
  await p.waitForURL(/page2/);
  await p.waitForLoadState('load');
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const sid = await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
  assert.equal(await p.evaluate(() => sessionStorage.getItem('observer.spill')), null, 'spill emptied');
  await context.close();
  const chunks = chunksOf(sid);
  assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i), 'contiguous seqs');
  const big = chunks.find((c) => c.text.includes('BIG-PAGE-MARKER'));
  assert.ok(big, 'the big page was recorded');
  assert.ok(big.text.length > 64 * 1024, `bigger than the keepalive budget (${big.text.length})`);
  assert.match(big.referer, /page2/, 'sent by the next page');
  const own = chunks.filter((c) => c.text.includes('Arrived on page two'));
  assert.ok(own.length > 0 && own.every((c) => c.seq > big.seq), 'the next page numbers its chunks after it');
  assert.deepEqual(observer.state.conflicts, []);
});

test('Observer down: nothing thrown, flush resolves false, one warning in debug mode, silence otherwise', async () => {
  const { context, page: p, console: out, pageErrors } = await openPage();
  await p.goto(siteUrl('/app/down.html'));
  const result = await p.evaluate(async () => {
    Observer.track('x', { a: 1 });
    Observer.captureException(new Error('while down'), { extra: true });
    Observer.identify('someone');
    return [await Observer.flush(), await Observer.flush()];
  });
  assert.deepEqual(result, [false, false]);
  const warnings = out.filter((m) => m.text.startsWith('[observer]') && m.type === 'warning');
  assert.equal(warnings.filter((m) => /did not accept/.test(m.text)).length, 1, JSON.stringify(warnings));
  assert.deepEqual(pageErrors, []);
  await context.close();

  const quiet = await openPage();
  await quiet.page.goto(siteUrl('/app/quiet.html'));
  assert.equal(await quiet.page.evaluate(() => Observer.flush()), false);
  assert.deepEqual(quiet.console.filter((m) => m.text.startsWith('[observer]')), []);
  assert.deepEqual(quiet.pageErrors, []);
  await quiet.context.close();
});

test('storage that throws (blocked / private mode): still sends, with valid ids', async () => {
  const { context, page: p, pageErrors } = await openPage();
  await p.goto(siteUrl('/app/nostorage.html'));
  await p.evaluate(() => Observer.track('no_storage'));
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  await context.close();
  const ev = observer.state.events.find((e) => e.name === 'no_storage');
  assert.ok(ev);
  assert.match(ev.session_id, ID);
  assert.match(ev.visitor_id, ID);
  assert.ok(chunksOf(ev.session_id).length > 0, 'replay recorded too');
  assert.deepEqual(pageErrors, []);
});

test('sampled out: events, no replay', async () => {
  const { context, page: p } = await openPage();
  await p.goto(siteUrl('/app/unsampled.html'));
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const sid = await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
  await context.close();
  assert.ok(observer.state.events.some((e) => e.session_id === sid && e.type === 'page_view'));
  assert.equal(chunksOf(sid).length, 0);
});

test("the previous page's pagehide runs after this page started: the session continues once it is released", async () => {
  const { context, page: p, pageErrors } = await openPage();
  await p.goto(siteUrl('/app/late-pagehide.html'));
  await p.waitForTimeout(700);
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const record = await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')));
  await context.close();
  assert.equal(record.id, GHOST_SESSION);
  assert.equal(typeof record.live, 'string');
  assert.ok(record.beat > 0);
  const view = observer.state.events.find((e) => e.type === 'page_view' && /late-pagehide/.test(e.url));
  assert.equal(view.session_id, GHOST_SESSION, 'the page view queued while pending was re-stamped');
  assert.equal(view.user_id, 'user-7');
  const chunks = chunksOf(GHOST_SESSION);
  assert.ok(chunks.length > 0);
  assert.equal(chunks[0].seq, 8, "numbered after the previous page's last chunk");
  assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => 8 + i));
  assert.deepEqual(observer.state.conflicts, []);
  assert.deepEqual(pageErrors, []);
});

test('a session held by a page that keeps running is not continued', async () => {
  const { context, page: p } = await openPage();
  await p.goto(siteUrl('/app/held.html'));
  await p.waitForTimeout(300);
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  const record = await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')));
  await context.close();
  assert.notEqual(record.id, HELD_SESSION);
  const view = observer.state.events.find((e) => e.type === 'page_view' && /held\.html/.test(e.url));
  assert.equal(view.session_id, record.id);
  assert.equal(view.user_id, 'user-7', 'a duplicate keeps the user id of the tab it was copied from');
  assert.equal(chunksOf(HELD_SESSION).length, 0);
  assert.equal(chunksOf(record.id)[0].seq, 0);
});

test('a window opened with window.open (a copy of sessionStorage, both pages alive) records its own session', async () => {
  const { context, page: opener } = await openPage();
  await opener.goto(siteUrl('/app/page2.html'));
  await opener.waitForTimeout(1500);
  const [popup] = await Promise.all([context.waitForEvent('page'), opener.evaluate(() => void window.open('/app/probe.html'))]);
  await popup.waitForLoadState('load');
  await popup.waitForTimeout(300);
  const openerSid = await opener.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
  const copied = await popup.evaluate(() => window.__before && JSON.parse(window.__before));
  assert.equal(copied && copied.id, openerSid, 'the opened window started with a copy of the opener\'s session record');
  assert.equal(typeof copied.live, 'string', '...marked live by the opener');
  assert.deepEqual(await Promise.all([opener.evaluate(() => Observer.flush()), popup.evaluate(() => Observer.flush())]), [true, true]);
  const popupSid = await popup.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
  // Both keep recording after the split.
  await opener.evaluate(() => document.body.append('more on the opener'));
  await popup.evaluate(() => document.body.append('more on the popup'));
  await opener.waitForTimeout(200);
  assert.deepEqual(await Promise.all([opener.evaluate(() => Observer.flush()), popup.evaluate(() => Observer.flush())]), [true, true]);
  await context.close();
  assert.notEqual(popupSid, openerSid);
  for (const sid of [openerSid, popupSid]) {
    const chunks = chunksOf(sid);
    assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i), `contiguous seqs for ${sid}`);
  }
  assert.ok(chunksOf(popupSid).some((c) => c.text.includes('opened window')), 'the popup recorded into its own session');
  assert.ok(!chunksOf(openerSid).some((c) => c.text.includes('opened window')), "nothing of the popup in the opener's session");
  assert.deepEqual(observer.state.conflicts, []);
});

const recorded = (sid) => chunksOf(sid).flatMap((c) => c.events);

test('console, network and Web Vitals: in the replay, as errors and as web_vital events', async () => {
  const { context, page: p, pageErrors } = await openPage();
  await p.goto(siteUrl('/app/capture.html'));
  await p.waitForLoadState('load');
  await p.waitForTimeout(300);
  const sid = await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
  const results = await p.evaluate(async () => {
    const cyclic = { name: 'cyclic' };
    cyclic.self = cyclic;
    console.log('hello from the page', { nested: { a: { b: { c: { d: 1 } } } } }, 'x'.repeat(50000), document.querySelector('.secret'), cyclic);
    console.warn('a warning', 42);
    console.error(new Error('logged error'));
    for (let i = 0; i < 1000; i++) console.log('loop', i);
    const out = {};
    const r = await fetch('/api/items?id=42&token=secret-token', { method: 'POST', body: 'abc' });
    out.status = r.status;
    out.body = await r.text(); // the body stream still belongs to the page
    try {
      await fetch('http://127.0.0.1:9/unreachable');
    } catch (e) {
      out.networkError = e.name;
    }
    const ok = await fetch(new Request('/api/ok?q=1'));
    out.ok = (await ok.json()).ok;
    const controller = new AbortController();
    const aborted = fetch('/api/ok?slow=1', { signal: controller.signal });
    controller.abort();
    try {
      await aborted;
    } catch (e) {
      out.abort = e.name;
    }
    await fetch('/api/client-error');
    out.xhr = await new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('GET', '/api/xhr?page=3');
      xhr.onloadend = () => resolve(xhr.status);
      xhr.send();
    });
    out.beacon = navigator.sendBeacon('/api/ok?beacon=1', 'x');
    return out;
  });
  assert.deepEqual(results, { status: 503, body: '{"error":"down"}', networkError: 'TypeError', ok: true, abort: 'AbortError', xhr: 502, beacon: true }, 'fetch, XHR and sendBeacon behave as without the SDK');
  await p.click('#slow');
  await p.waitForTimeout(1200); // the rate limit's "not recorded" notice comes a second after the first drop
  // Leaving the page hides it: web-vitals reports LCP, CLS and INP, which go out with the page's last requests.
  await p.click('#leave');
  await p.waitForURL(/page2/);
  await p.waitForLoadState('load');
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  await context.close();

  const { state } = observer;
  assert.deepEqual(state.refused, [], 'nothing refused');
  const events = recorded(sid);

  // Console: rrweb console plugin events with bounded arguments.
  const logs = events.filter((e) => e.type === 6 && e.data.plugin === 'rrweb/console@1').map((e) => e.data.payload);
  const hello = logs.find((l) => l.payload[0] === '"hello from the page"');
  assert.ok(hello, `console.log recorded (${logs.length} lines)`);
  assert.equal(hello.level, 'log');
  assert.ok(Array.isArray(hello.trace));
  assert.deepEqual(JSON.parse(hello.payload[1]), { nested: { a: { b: '[Object]' } } }, 'depth capped');
  assert.ok(hello.payload[2].length < 1100 && hello.payload[2].includes('50000 chars'), 'huge string capped');
  assert.equal(JSON.parse(hello.payload[3]), '<div.secret>', 'a DOM node is described, not its (unmasked) content');
  assert.deepEqual(JSON.parse(hello.payload[4]), { name: 'cyclic', self: '[Circular]' });
  assert.ok(logs.some((l) => l.level === 'warn' && l.payload[0] === '"a warning"' && l.payload[1] === '42'));
  assert.ok(logs.some((l) => l.level === 'error' && /logged error/.test(l.payload[0])));
  const loop = logs.filter((l) => l.payload[0] === '"loop"');
  assert.ok(loop.length >= 90 && loop.length <= 110, `a console loop is rate limited (${loop.length} of 1000 recorded)`);
  assert.ok(logs.some((l) => /console message\(s\) not recorded/.test(l.payload[0])), 'the drop is said in the replay');
  assert.ok(!logs.some((l) => /^"\[observer\] (replay|session|sending)/.test(l.payload[0])), "the SDK's own debug lines are not recorded");
  for (const l of logs) assert.ok(l.payload.join('').length <= 8100, 'per-message cap');
  assert.ok(!JSON.stringify(logs).includes('Secret account'), 'masked text stays masked');

  // Network: custom events, query values masked, never Observer's own requests.
  const net = events.filter((e) => e.type === 5 && e.data.tag === 'network');
  const origin = new URL(siteUrl('/')).origin;
  const find = (url) => net.find((e) => e.data.payload.url === url);
  const items = find(`${origin}/api/items?id=*&token=*`);
  assert.ok(items, JSON.stringify(net.map((e) => e.data.payload.url)));
  assert.deepEqual({ ...items.data.payload, duration_ms: 0 }, { initiator: 'fetch', method: 'POST', url: `${origin}/api/items?id=*&token=*`, status: 503, duration_ms: 0, request_bytes: 3, response_bytes: 16 });
  assert.ok(items.data.payload.duration_ms >= 0);
  const down = find('http://127.0.0.1:9/unreachable');
  assert.equal(down.data.payload.status, 0);
  assert.match(down.data.payload.error, /TypeError/);
  assert.equal(find(`${origin}/api/ok?q=*`).data.payload.status, 200);
  assert.match(find(`${origin}/api/ok?slow=*`).data.payload.error, /AbortError/);
  assert.deepEqual(
    (({ initiator, method, status }) => ({ initiator, method, status }))(find(`${origin}/api/xhr?page=*`).data.payload),
    { initiator: 'xhr', method: 'GET', status: 502 },
  );
  assert.ok(!net.some((e) => e.data.payload.url.startsWith(observer.url)), "Observer's own requests are not recorded");
  assert.ok(!JSON.stringify(net).includes('secret-token'), 'query values masked');

  // Failed requests are errors (and so replay markers); 4xx, aborts and successes are not.
  const errors = state.errors.filter((e) => e.session_id === sid);
  const http = errors.find((e) => e.type === 'HttpError' && e.message === `POST ${origin}/api/items?id=*&token=* failed: 503`);
  assert.ok(http, JSON.stringify(errors.map((e) => [e.type, e.message])));
  assert.deepEqual({ mechanism: http.context.mechanism, status: http.context.status }, { mechanism: 'fetch', status: 503 });
  assert.ok(items.timestamp <= http.timestamp, 'the network event sits at the request start');
  const netErr = errors.find((e) => e.type === 'NetworkError');
  assert.match(netErr.message, /^GET http:\/\/127\.0\.0\.1:9\/unreachable failed: TypeError/);
  assert.ok(errors.some((e) => e.type === 'HttpError' && e.message === `GET ${origin}/api/xhr?page=* failed: 502` && e.context.mechanism === 'xhr'));
  assert.ok(!errors.some((e) => /client-error|slow=|q=/.test(e.message)), '404, abort and 200 are not errors');
  assert.ok(!errors.some((e) => e.message.includes(observer.url)));
  const marks = events.filter((e) => e.type === 5 && e.data.tag === 'error').map((e) => e.data.payload);
  assert.ok(marks.some((m) => m.type === 'HttpError') && marks.some((m) => m.type === 'NetworkError'), 'failed requests are marked in the replay');

  // Web Vitals: one web_vital event per metric of the page view, with the documented fields.
  const allVitals = state.events.filter((e) => e.session_id === sid && e.type === 'web_vital');
  console.log('web vitals', allVitals.map((v) => `${new URL(v.url).pathname} ${v.name}=${v.value} ${v.rating}`).join(', '));
  // The next page (same session) reports its own, under its own URL.
  assert.ok(allVitals.every((v) => /\/app\/(capture|page2)\.html$/.test(v.url)));
  const vitals = allVitals.filter((v) => v.url.endsWith('/app/capture.html'));
  const names = vitals.map((v) => v.name).sort();
  for (const name of ['FCP', 'LCP', 'TTFB']) assert.ok(names.includes(name), `${name} arrived (${names})`);
  assert.equal(new Set(names).size, names.length, 'each metric once');
  for (const v of vitals) {
    assert.ok(['LCP', 'INP', 'CLS', 'FCP', 'TTFB'].includes(v.name));
    assert.ok(typeof v.value === 'number' && v.value >= 0);
    assert.ok(['good', 'needs-improvement', 'poor'].includes(v.rating));
    assert.equal(v.navigation_type, 'navigate');
    assert.match(v.visitor_id, ID);
    assert.equal(v.properties.service, 'smoke-shop');
  }
  assert.deepEqual(pageErrors, [], 'the SDK threw nothing into the page');
});

test('console: false, network: false, webVitals: false: none of it, and fetch stays native', async () => {
  const { context, page: p } = await openPage();
  await p.goto(siteUrl('/app/capture-off.html'));
  await p.waitForLoadState('load');
  await p.waitForTimeout(300);
  const sid = await p.evaluate(() => JSON.parse(sessionStorage.getItem('observer.session')).id);
  const native = await p.evaluate(async () => {
    console.log('not recorded');
    await fetch('/api/items');
    return [fetch, XMLHttpRequest.prototype.send, console.log].every((f) => /\[native code\]/.test(Function.prototype.toString.call(f)));
  });
  assert.equal(native, true);
  await p.click('#leave');
  await p.waitForURL(/page2/);
  assert.equal(await p.evaluate(() => Observer.flush()), true);
  await context.close();
  const events = recorded(sid);
  assert.ok(events.length > 0, 'the replay is still recorded');
  assert.ok(!events.some((e) => e.type === 6 || (e.type === 5 && e.data.tag === 'network')));
  assert.ok(!observer.state.errors.some((e) => e.session_id === sid));
  assert.ok(!observer.state.events.some((e) => e.session_id === sid && e.type === 'web_vital' && /capture-off/.test(e.url)));
});
