// Records real rrweb sessions in headless Debian chromium and writes them as
// gzipped JSON fixtures to ../fixtures/rrweb/.
//
//   cd tests/recorder && npm ci && node record.mjs
//
// Nothing here downloads a browser: playwright-core drives /usr/bin/chromium
// (override with CHROMIUM=/path/to/chromium).
//
// Outputs:
//   session-chunk-NNN.json.gz  one recording, cut into chunks the way an SDK
//                              batches uploads (new chunk every ~1.5 s of event
//                              time or ~200 KB of raw JSON, whichever first)
//   large-chunk.json.gz        a second recording of a much bigger page, kept as
//                              one chunk of ~850 KB raw JSON
//   README.md                  regenerated description + per-file table

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// RECORDER_OUT_DIR lets the integration tests record a fresh session elsewhere.
const outDir = process.env.RECORDER_OUT_DIR ? path.resolve(process.env.RECORDER_OUT_DIR) : path.resolve(here, '..', 'fixtures', 'rrweb');
const pagePath = path.join(here, 'page.html');
// rrweb's "exports" map hides package.json and the UMD build from require.resolve,
// so locate the package directory from the "." entry point (dist/rrweb.cjs).
const rrwebPkgPath = path.join(path.dirname(path.dirname(require.resolve('rrweb'))), 'package.json');
const rrwebVersion = JSON.parse(fs.readFileSync(rrwebPkgPath, 'utf8')).version;
// The UMD build: when loaded as a classic <script> it sets the global `rrweb`.
const rrwebBundle = path.join(path.dirname(rrwebPkgPath), 'dist', 'rrweb.umd.cjs');
const playwrightVersion = JSON.parse(
  fs.readFileSync(require.resolve('playwright-core/package.json'), 'utf8'),
).version;
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

const CHUNK_MAX_MS = 1500;
const CHUNK_MAX_BYTES = 200 * 1024;
const LARGE_TARGET = 850 * 1000;
const LARGE_TOLERANCE = 0.15; // hard limit
const LARGE_RETRY_TOLERANCE = 0.06; // re-record with a rescaled page outside this
const PASSWORD = 'hunter2-Sup3rSecret!';
const OVERALL_TIMEOUT_MS = 58_000;

const EVENT_TYPE_NAMES = {
  0: 'DomContentLoaded', 1: 'Load', 2: 'FullSnapshot', 3: 'IncrementalSnapshot', 4: 'Meta', 5: 'Custom', 6: 'Plugin',
};

const t0 = Date.now();
function log(...args) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...args);
}
function fail(msg) {
  throw new Error(msg);
}

const watchdog = setTimeout(() => {
  console.error(`record.mjs: timed out after ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(2);
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

// ---------------------------------------------------------------- http server
function startServer() {
  const html = fs.readFileSync(pagePath);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/' || url.pathname === '/page.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ---------------------------------------------------------------- recording
async function record(browser, url, { checkoutEveryNms, drive }) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    userAgent: undefined,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  try {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err));
    // Define the global `rrweb` before any page script runs (as an SDK <script> would),
    // but only start recording once the page has loaded, so the stream opens with Meta.
    await page.addInitScript({ path: rrwebBundle });
    await page.goto(url, { waitUntil: 'load' });
    const ok = await page.evaluate((opts) => {
      if (typeof window.rrweb?.record !== 'function') return false;
      window.__events = [];
      window.__customErrors = 0;
      window.__stopRecording = window.rrweb.record({
        emit(event) {
          window.__events.push(event);
        },
        maskAllInputs: false,
        maskInputOptions: { password: true },
        checkoutEveryNms: opts.checkoutEveryNms,
      });
      // What an error-tracking SDK does: report uncaught errors into the replay.
      window.addEventListener('error', (ev) => {
        window.__customErrors++;
        window.rrweb.record.addCustomEvent('error', {
          message: String(ev.message),
          name: ev.error?.name ?? 'Error',
          filename: ev.filename,
          lineno: ev.lineno,
          colno: ev.colno,
          stack: ev.error?.stack ?? null,
          url: location.href,
        });
      });
      return true;
    }, { checkoutEveryNms });
    if (!ok) fail(`global rrweb.record not found after injecting ${rrwebBundle}`);

    await drive(page);

    const json = await page.evaluate(() => {
      window.__stopRecording?.();
      return JSON.stringify(window.__events);
    });
    return { events: JSON.parse(json), pageErrors };
  } finally {
    await context.close();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function driveSession(page) {
  // Wander in from the top-left corner towards the form.
  await page.mouse.move(20, 20);
  await page.mouse.move(400, 60, { steps: 12 });
  await page.mouse.move(150, 170, { steps: 10 });

  await page.click('#fullname');
  await page.locator('#fullname').pressSequentially('Grace Hopper', { delay: 25 });
  await page.click('#email');
  await page.locator('#email').pressSequentially('grace.hopper@example.com', { delay: 15 });
  await page.click('#password');
  await page.locator('#password').pressSequentially(PASSWORD, { delay: 15 });
  await page.selectOption('#plan', 'business');
  await page.check('#terms');
  await page.click('#notes');
  await page.locator('#notes').pressSequentially('Needs SSO.\nInvoice quarterly, net 30.', { delay: 10 });

  // Let the dashboard churn, hover the table.
  await page.mouse.move(700, 300, { steps: 15 });
  await sleep(400);

  // A manual full snapshot midway (in addition to checkoutEveryNms).
  await page.evaluate(() => window.rrweb.record.takeFullSnapshot());

  // Click around the table.
  for (const n of [3, 7, 12, 5]) {
    await page.click(`#rows tr:nth-child(${n}) td:nth-child(2)`);
    await sleep(120);
  }

  // Scroll the window and the activity pane.
  for (let i = 0; i < 4; i++) {
    await page.mouse.wheel(0, 250);
    await sleep(100);
  }
  await page.evaluate(() => { document.getElementById('activity').scrollTop = 60; });
  await page.mouse.wheel(0, -600);
  await sleep(200);

  // Trigger the page's genuine bug -> uncaught TypeError -> one custom 'error' event.
  await page.click('#details');
  await sleep(150);

  // Submit the form, resize the viewport, idle while mutations continue.
  await page.click('#submit');
  await page.mouse.move(900, 500, { steps: 10 });
  await page.setViewportSize({ width: 1024, height: 768 });
  await sleep(700);
  await page.click('#rows tr:nth-child(2) td:nth-child(3)');
  await page.mouse.move(300, 600, { steps: 10 });
  await sleep(500);
}

async function driveLarge(page) {
  await page.mouse.move(50, 50);
  await page.mouse.move(600, 400, { steps: 10 });
  await page.click('#fullname');
  await page.locator('#fullname').pressSequentially('Ken Thompson', { delay: 20 });
  await page.click('#rows tr:nth-child(4) td:nth-child(2)');
  await page.mouse.wheel(0, 1500);
  await sleep(300);
  await page.mouse.wheel(0, 1500);
  await sleep(400);
}

// ---------------------------------------------------------------- validation
function validateEvents(events, label) {
  if (!Array.isArray(events) || events.length === 0) fail(`${label}: no events recorded`);
  events.forEach((e, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) fail(`${label}: event ${i} is not an object`);
    if (!Number.isInteger(e.type) || e.type < 0 || e.type > 6) fail(`${label}: event ${i} has bad type ${JSON.stringify(e.type)}`);
    if (typeof e.timestamp !== 'number' || !Number.isFinite(e.timestamp)) {
      fail(`${label}: event ${i} has bad timestamp ${JSON.stringify(e.timestamp)}`);
    }
    if (e.type === 4 && (typeof e.data?.href !== 'string' || !e.data.href)) fail(`${label}: Meta event ${i} without data.href`);
  });
  if (events[0].type !== 4) fail(`${label}: first event is type ${events[0].type}, expected Meta (4)`);
  if (events[1].type !== 2) fail(`${label}: second event is type ${events[1].type}, expected FullSnapshot (2)`);
}

function countTypes(events) {
  const counts = {};
  for (const e of events) counts[e.type] = (counts[e.type] ?? 0) + 1;
  return counts;
}

// ---------------------------------------------------------------- chunking
function chunkEvents(events) {
  const chunks = [];
  let cur = [];
  let curBytes = 2; // "[]"
  let curStart = 0;
  for (const e of events) {
    const size = Buffer.byteLength(JSON.stringify(e)) + 1;
    // rrweb emits Meta and its FullSnapshot synchronously, one right after the other, so an
    // SDK's flush (timer or size check) can never fall between them: keep the pair together.
    const pairTail = e.type === 2 && cur.length > 0 && cur[cur.length - 1].type === 4;
    const tooOld = cur.length > 0 && e.timestamp - curStart >= CHUNK_MAX_MS;
    const tooBig = cur.length > 0 && curBytes + size > CHUNK_MAX_BYTES;
    if ((tooOld || tooBig) && !pairTail) {
      chunks.push(cur);
      cur = [];
      curBytes = 2;
    }
    if (cur.length === 0) curStart = e.timestamp;
    cur.push(e);
    curBytes += size;
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

function writeFixture(name, events) {
  const raw = Buffer.from(JSON.stringify(events));
  const gz = zlib.gzipSync(raw, { level: 9 });
  // Round-trip check: what we wrote must decode to the same events.
  const file = path.join(outDir, name);
  fs.writeFileSync(file, gz);
  const back = zlib.gunzipSync(fs.readFileSync(file));
  if (!back.equals(raw)) fail(`${name}: round-trip mismatch`);
  return {
    name,
    events: events.length,
    rawBytes: raw.length,
    gzBytes: gz.length,
    first: events[0].timestamp,
    last: events[events.length - 1].timestamp,
    types: countTypes(events),
  };
}

// ---------------------------------------------------------------- README
function fmtTypes(types) {
  return Object.keys(types)
    .sort((a, b) => a - b)
    .map((t) => `${t}×${types[t]}`)
    .join(' ');
}

function writeReadme(files, meta) {
  const iso = (ms) => new Date(ms).toISOString();
  const rows = files
    .map((f) => `| \`${f.name}\` | ${f.events} | ${f.rawBytes.toLocaleString('en-US')} | ${f.gzBytes.toLocaleString('en-US')} | ${f.first} (${iso(f.first)}) | ${f.last} (${iso(f.last)}) | ${fmtTypes(f.types)} |`)
    .join('\n');
  const session = files.filter((f) => f.name.startsWith('session-chunk-'));
  const totalGz = files.reduce((a, f) => a + f.gzBytes, 0);
  const text = `# rrweb fixtures

Real rrweb recordings, made by \`tests/recorder/record.mjs\` in headless Chromium.
Nothing in these files is hand-written or edited: each file is exactly what
\`rrweb.record({ emit })\` emitted, serialized with \`JSON.stringify\` and gzipped
(level 9). **This README is generated by the same script** — re-running it
rewrites the fixtures and this file.

## Regenerate

\`\`\`sh
cd tests/recorder && npm ci && node record.mjs
\`\`\`

No browser is downloaded: \`playwright-core\` drives the system Chromium at
\`/usr/bin/chromium\` (Debian package \`chromium\`; override with \`CHROMIUM=...\`).
The run takes ~20 s and exits non-zero on any failure. Timestamps, node ids and
some mutation order differ from run to run, so regenerated files will not be
byte-identical.

## Versions

| component | version |
|---|---|
| rrweb (npm, UMD build \`dist/rrweb.umd.cjs\`) | ${meta.rrwebVersion} |
| playwright-core (npm) | ${meta.playwrightVersion} |
| Chromium | ${meta.browserVersion} |
| Node.js | ${process.version} |

Recorded on ${meta.recordedAt}.

## How they were made

\`tests/recorder/page.html\` (a small billing dashboard: heading, sign-up form
with text/email/password inputs, a select, a checkbox, a textarea and buttons,
an accounts table, CSS, and a script that adds/removes rows, changes text,
toggles classes, inserts nested elements and calls \`CSSStyleSheet.insertRule\`
every 150 ms) is served from a local \`node:http\` server on 127.0.0.1 and opened
in Chromium. The rrweb UMD bundle is injected as an init script (global
\`rrweb\`), and after \`load\` recording starts with

\`\`\`js
rrweb.record({ emit, maskAllInputs: false, maskInputOptions: { password: true }, checkoutEveryNms })
\`\`\`

so every recording begins with a Meta event (type 4, \`data.href\`) followed by a
FullSnapshot (type 2). (Because recording starts after \`load\`, there are no
type 0/1 DomContentLoaded/Load events, and no plugins are used, so no type 6.)
A window \`error\` listener forwards uncaught errors with
\`rrweb.record.addCustomEvent('error', {message, name, filename, lineno, colno, stack, url})\`.

### \`session-chunk-NNN.json.gz\` — one session, ${session.length} chunks

Page with 30 table rows, \`checkoutEveryNms: ${meta.sessionCheckoutMs}\`. Playwright
moves the mouse, types into the name, email, **password** and notes fields,
selects a plan, ticks the checkbox, takes one manual
\`rrweb.record.takeFullSnapshot()\` midway, clicks table rows, scrolls the window
and the activity pane, clicks a button whose handler throws a real
\`TypeError\` (→ exactly one Custom event, tag \`error\`), submits the form and
resizes the viewport. Full snapshots in the session: ${meta.sessionFullSnapshots}.

The password is masked by rrweb (\`*\` characters); the script checks that the
typed password does not appear anywhere in the output.

The event list is cut the way an SDK batches uploads: a new chunk starts when
the next event is ≥ ${CHUNK_MAX_MS} ms (event time) after the chunk's first event,
or when adding it would push the chunk's raw JSON over ${CHUNK_MAX_BYTES / 1024} KB
(a single bigger event stays alone in its chunk). A Meta event and the
FullSnapshot right after it are never split (rrweb emits them synchronously, so
a real SDK's flush cannot fall between them). Chunk
000 starts with Meta then FullSnapshot; later chunks start wherever the cut
fell, so the later Meta+FullSnapshot pairs (manual snapshot and checkouts) sit
somewhere inside a chunk.
Concatenating all chunks in order gives the original event stream.

### \`large-chunk.json.gz\` — one big chunk

A separate recording of the same page made bigger via its query string
(\`?rows=${meta.largeRows}&paragraphs=${meta.largeParagraphs}\`), no checkout,
short interaction (mouse, typing, a click, scrolling). All its events are kept
as one chunk whose decompressed size is ~${LARGE_TARGET / 1000} KB (target; the
script enforces ±${LARGE_TOLERANCE * 100}% and rescales the table and re-records if
needed). It is mostly one large FullSnapshot.

## Files

Event types: 2 FullSnapshot, 3 IncrementalSnapshot, 4 Meta, 5 Custom.
Timestamps are milliseconds since the Unix epoch (wall clock at recording).

| file | events | decompressed bytes | gzip bytes | first timestamp | last timestamp | event types |
|---|---:|---:|---:|---|---|---|
${rows}

Total gzip size: ${totalGz.toLocaleString('en-US')} bytes.
`;
  fs.writeFileSync(path.join(outDir, 'README.md'), text);
}

// ---------------------------------------------------------------- main
async function main() {
  if (!fs.existsSync(chromiumPath)) fail(`chromium not found at ${chromiumPath}`);
  if (!fs.existsSync(rrwebBundle)) fail(`rrweb UMD bundle not found at ${rrwebBundle}`);
  fs.mkdirSync(outDir, { recursive: true });

  const server = await startServer();
  const base = `http://127.0.0.1:${server.address().port}/`;
  log(`serving ${pagePath} at ${base}`);

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const browserVersion = browser.version();
    log(`chromium ${browserVersion}, rrweb ${rrwebVersion}, playwright-core ${playwrightVersion}`);

    // ---- session recording
    const sessionCheckoutMs = 3000;
    const session = await record(browser, base, { checkoutEveryNms: sessionCheckoutMs, drive: driveSession });
    const sevents = session.events;
    validateEvents(sevents, 'session');
    const unexpected = session.pageErrors.filter((e) => !/profile/.test(e.message));
    if (unexpected.length) fail(`session: unexpected page errors: ${unexpected.map((e) => e.message).join('; ')}`);
    if (session.pageErrors.length !== 1) fail(`session: expected exactly 1 page error, got ${session.pageErrors.length}`);
    const stypes = countTypes(sevents);
    const fullSnapshots = stypes[2] ?? 0;
    if (fullSnapshots < 3) fail(`session: only ${fullSnapshots} full snapshots`);
    const customErrors = sevents.filter((e) => e.type === 5 && e.data?.tag === 'error');
    if (customErrors.length !== 1) fail(`session: expected exactly 1 custom 'error' event, got ${customErrors.length}`);
    const sjson = JSON.stringify(sevents);
    if (sjson.includes(PASSWORD) || sjson.includes(PASSWORD.slice(0, 8))) fail('session: password leaked into recording');
    if (!sjson.includes('grace.hopper@example.com')) fail('session: typed email not found in recording (inputs not recorded?)');
    if (!(stypes[3] > 50)) fail(`session: suspiciously few incremental events (${stypes[3]})`);
    let backwards = 0;
    for (let i = 1; i < sevents.length; i++) if (sevents[i].timestamp < sevents[i - 1].timestamp) backwards++;
    if (backwards) log(`note: ${backwards} session events have a timestamp lower than their predecessor`);
    const span = sevents[sevents.length - 1].timestamp - sevents[0].timestamp;
    log(`session: ${sevents.length} events over ${span} ms, types ${fmtTypes(stypes)}, ${sjson.length} bytes raw`);

    const chunks = chunkEvents(sevents);
    if (chunks.flat().length !== sevents.length) fail('chunking lost events');
    if (chunks.length < 3) fail(`session: only ${chunks.length} chunks — recording too short?`);

    // ---- large single-chunk recording (rescale the page until the size fits)
    let largeRows = 880; // calibrated for rrweb 2.2.2; rescaled automatically if the size drifts
    const largeParagraphs = 40;
    let large;
    for (let attempt = 1; ; attempt++) {
      const url = `${base}?rows=${largeRows}&paragraphs=${largeParagraphs}`;
      const rec = await record(browser, url, { checkoutEveryNms: undefined, drive: driveLarge });
      validateEvents(rec.events, 'large');
      if (rec.pageErrors.length) fail(`large: page errors: ${rec.pageErrors.map((e) => e.message).join('; ')}`);
      const bytes = Buffer.byteLength(JSON.stringify(rec.events));
      const dev = bytes / LARGE_TARGET - 1;
      log(`large attempt ${attempt}: rows=${largeRows} -> ${rec.events.length} events, ${bytes} bytes raw (${(dev * 100).toFixed(1)}%)`);
      large = rec;
      if (Math.abs(dev) <= LARGE_RETRY_TOLERANCE || attempt === 3) {
        if (Math.abs(dev) > LARGE_TOLERANCE) fail(`large: ${bytes} bytes is outside ${LARGE_TARGET} ±${LARGE_TOLERANCE * 100}%`);
        break;
      }
      largeRows = Math.max(50, Math.round(largeRows * (LARGE_TARGET / bytes)));
    }

    // ---- write everything (only after all recordings passed)
    for (const f of fs.readdirSync(outDir)) {
      if (/^session-chunk-\d+\.json\.gz$/.test(f)) fs.unlinkSync(path.join(outDir, f));
    }
    const files = chunks.map((c, i) => writeFixture(`session-chunk-${String(i).padStart(3, '0')}.json.gz`, c));
    files.push(writeFixture('large-chunk.json.gz', large.events));
    writeReadme(files, {
      rrwebVersion, playwrightVersion, browserVersion,
      recordedAt: new Date().toISOString().slice(0, 10),
      sessionCheckoutMs, sessionFullSnapshots: fullSnapshots, largeRows, largeParagraphs,
    });
    for (const f of files) {
      log(`${f.name}: ${f.events} events, ${f.rawBytes} raw, ${f.gzBytes} gz, ${f.first}..${f.last}, types ${fmtTypes(f.types)}`);
    }
    const total = files.reduce((a, f) => a + f.gzBytes, 0);
    if (total > 1.5 * 1024 * 1024) fail(`fixtures total ${total} bytes gz, over the 1.5 MB budget`);
    log(`wrote ${files.length} fixtures + README.md to ${outDir} (${total} bytes gz total)`);
  } finally {
    await browser.close();
    server.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`record.mjs FAILED: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
