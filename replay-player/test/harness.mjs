// Test harness for the player pages: the real `observer` binary serves the
// pages and assets (so its CSP and headers are what the browser sees), and
// a node:http server on one origin proxies those paths to it and answers
// the replay fetch API (docs/api.md contract) from the rrweb fixtures in
// tests/fixtures/rrweb/. Chromium is Debian's /usr/bin/chromium driven by
// playwright-core; nothing is downloaded. Missing pieces fail, never skip.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');
export const artifacts = join(repoRoot, 'target/test-artifacts');
const fixtures = join(repoRoot, 'tests/fixtures/rrweb');

export const VIEWER_TOKEN = 'viewer-token-for-tests-0123456789';
// Shaped like share tokens (`v1.…`), which the pages use as they are
// (a viewer token is exchanged for the sign-in cookie instead).
export const EXPIRED_TOKEN = 'v1.1000.expired-share-token';
export const TAMPERED_TOKEN = 'v1.4102444800.tampered-share-token';
/** The stub's sign-in cookie value (the real server signs its own). */
const STUB_SESSION = 'stub-signed-in';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function chromiumPath() {
  const path = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(path)) throw new Error(`Chromium not found at ${path}: run scripts/setup (Debian package chromium)`);
  return path;
}

/** The replayed document's frame, once it shows `text`. */
export async function replayFrameWith(page, text, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      const body = await frame.evaluate(() => document.body?.innerText ?? '').catch(() => '');
      if (body.includes(text)) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no player frame shows ${JSON.stringify(text)}`);
    await page.waitForTimeout(100);
  }
}

/** Seconds on the player's clock ("0:05 / 0:07" → 5). */
export async function clockSeconds(page) {
  const text = await page.locator('#clock').innerText();
  const [m, s] = text.split('/')[0].trim().split(':').map(Number);
  return m * 60 + s;
}

/** The recorded session, one array of events per chunk. */
export function fixtureChunks() {
  const files = readdirSync(fixtures).filter((f) => /^session-chunk-\d{3}\.json\.gz$/.test(f)).sort();
  if (files.length < 6) throw new Error(`expected 6 session chunks in ${fixtures}`);
  return files.map((file) => {
    const gzip = readFileSync(join(fixtures, file));
    return { gzip, events: JSON.parse(gunzipSync(gzip).toString('utf8')) };
  });
}

/**
 * A session as the stub serves it. `chunks[i]` is `{ seq, events, gzip }`;
 * `fail(seq, attempt)` may answer instead: 'missing' (404), 'reset'
 * (connection dropped) or undefined (serve it); `gate(seq)` may return a
 * promise the answer waits for; `manifestExtra` is merged into the manifest
 * (the optional `user_id`, `url`, `start`; the test may change it between
 * visits).
 */
export function session(id, chunks, extra = {}) {
  return {
    id,
    chunks: chunks.map((c, i) => ({ seq: c.seq ?? i, events: c.events, gzip: c.gzip ?? gzipSync(JSON.stringify(c.events)) })),
    fail: () => undefined,
    gate: () => null,
    userId: null,
    manifestExtra: {},
    ...extra,
  };
}

export function manifestOf(s) {
  const chunks = s.chunks.map((c) => ({
    seq: c.seq,
    first_timestamp: Math.min(...c.events.map((e) => e.timestamp)),
    last_timestamp: Math.max(...c.events.map((e) => e.timestamp)),
    events: c.events.length,
    bytes: c.gzip.length,
  }));
  const first = Math.min(...chunks.map((c) => c.first_timestamp));
  const last = Math.max(...chunks.map((c) => c.last_timestamp));
  return { session_id: s.id, chunks, first_timestamp: first, last_timestamp: last, duration_ms: last - first, ...s.manifestExtra };
}

/** Starts the observer binary (pages) and the stub API on one origin. */
export async function startHarness(sessions) {
  const observer = await startObserver();
  await assertCurrentPages(observer);
  const requests = [];
  const attempts = new Map();
  const byId = new Map(sessions.map((s) => [s.id, s]));

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://stub');
    if (url.pathname === '/observer.js' || url.pathname === '/replay' || url.pathname.startsWith('/replay/')) {
      proxy(req, res, observer.port);
      return;
    }
    const auth = req.headers.authorization ?? '';
    const cookie = req.headers.cookie ?? '';
    requests.push({ path: url.pathname, method: req.method, query: url.search, auth, cookie, at: Date.now() });
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    };
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7) : null;
    // Sign-in, as docs/replay-api.md describes it: the viewer token in the header for a cookie.
    if (url.pathname === '/api/observer/viewer/session') {
      const attributes = 'HttpOnly; SameSite=Lax; Path=/';
      if (req.method === 'DELETE') return send(204, '', { 'set-cookie': `observer_viewer=; ${attributes}; Max-Age=0` });
      if (req.method !== 'POST' || bearer !== VIEWER_TOKEN) return send(401, { error: 'unauthorized', message: 'unauthorized' });
      return send(
        200,
        { expires_at: new Date(Date.now() + 3600_000).toISOString() },
        { 'set-cookie': `observer_viewer=${STUB_SESSION}; ${attributes}; Max-Age=3600` },
      );
    }
    const signedIn = !bearer && !url.searchParams.has('token') && cookie.split(/;\s*/).includes(`observer_viewer=${STUB_SESSION}`);
    const token = signedIn ? VIEWER_TOKEN : bearer ?? url.searchParams.get('token');
    if (token !== VIEWER_TOKEN) {
      const error = token === EXPIRED_TOKEN ? 'token_expired' : token === TAMPERED_TOKEN ? 'token_invalid' : 'unauthorized';
      return send(401, { error, message: error });
    }
    let match;
    if (url.pathname === '/api/observer/replays') {
      const all = sessions.map((s) => {
        const m = manifestOf(s);
        const meta = s.chunks[0].events.find((e) => e.type === 4);
        return { session_id: s.id, start: m.first_timestamp, url: meta?.data?.href ?? null, user_id: s.userId, chunks: s.chunks.length };
      });
      const from = Number(url.searchParams.get('cursor') ?? 0);
      const limit = Math.min(2, Number(url.searchParams.get('limit') ?? 50));
      const page = all.slice(from, from + limit);
      return send(200, { sessions: page, next_cursor: from + limit < all.length ? String(from + limit) : null });
    }
    if ((match = url.pathname.match(/^\/api\/observer\/replays\/([^/]+)$/))) {
      const s = byId.get(match[1]);
      return s ? send(200, manifestOf(s)) : send(404, { error: 'not_found', message: 'not found' });
    }
    if ((match = url.pathname.match(/^\/api\/observer\/replays\/([^/]+)\/chunks\/(\d+)$/))) {
      const s = byId.get(match[1]);
      const chunk = s?.chunks.find((c) => c.seq === Number(match[2]));
      if (!s || !chunk) return send(404, { error: 'not_found', message: 'not found' });
      const key = `${s.id}/${chunk.seq}`;
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      const gate = s.gate(chunk.seq);
      if (gate) await gate;
      const failure = s.fail(chunk.seq, attempt);
      if (failure === 'missing') return send(404, { error: 'not_found', message: 'not found' });
      if (failure === 'reset') return void req.socket.destroy();
      requests.push({ path: url.pathname, query: url.search, served: true, at: Date.now() });
      const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
      return send(200, gzip ? chunk.gzip : gunzipSync(chunk.gzip), gzip ? { 'content-encoding': 'gzip' } : {});
    }
    send(404, { error: 'not_found', message: 'not found' });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    requests,
    attempts,
    observer,
    async close() {
      server.closeAllConnections?.();
      await new Promise((ok) => server.close(ok));
      await observer.stop();
    },
  };
}

/** The binary must embed the pages just built, or the test would test old ones. */
export async function assertCurrentPages(observer) {
  for (const page of ['sessions.html', 'player.html']) {
    const built = readFileSync(join(repoRoot, 'replay-player/dist', page), 'utf8');
    const path = page === 'sessions.html' ? '/replay/' : '/replay/any-session-0000';
    const served = await (await fetch(`http://127.0.0.1:${observer.port}${path}`)).text();
    if (served !== built) {
      await observer.stop();
      throw new Error('the observer binary embeds other pages than replay-player/dist: rebuild it (cargo build)');
    }
  }
}

function proxy(req, res, port) {
  const upstream = request(
    { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (e) => {
    res.writeHead(502);
    res.end(String(e));
  });
  req.pipe(upstream);
}

/** The real binary (OBSERVER_BIN, default target/debug/observer), with `settings` added to its environment. */
export async function startObserver(settings = {}) {
  const targetDir = resolve(repoRoot, process.env.CARGO_TARGET_DIR || 'target');
  const bin = process.env.OBSERVER_BIN || join(targetDir, 'debug/observer');
  if (!existsSync(bin)) throw new Error(`observer binary not found at ${bin}: run cargo build (scripts/test runs cargo test first)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'observer-player-test-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OBSERVER_') && !k.startsWith('AWS_')));
  const child = spawn(bin, [], {
    env: {
      ...env,
      OBSERVER_LISTEN: '127.0.0.1:0',
      OBSERVER_DATA_DIR: dataDir,
      OBSERVER_LOG: 'info',
      AWS_EC2_METADATA_DISABLED: 'true',
      ...settings,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const port = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`observer did not start:\n${stderr}`)), 30_000);
    child.stderr.on('data', (data) => {
      stderr += data;
      // The whole port: stderr can arrive cut mid-line ("listen=127.0.0.1:4" before "4455 ...").
      const found = stderr.match(/observer started listen=\S*:(\d+)\s/);
      if (found) {
        clearTimeout(timer);
        ok(Number(found[1]));
      }
    });
    child.on('exit', (code) => fail(new Error(`observer exited with ${code}:\n${stderr}`)));
  });
  return {
    port,
    async stop() {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((ok) => setTimeout(ok, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
