// A stand-in for Observer's ingestion routes, strict as docs/api.md: it refuses what the real server refuses
// (unknown fields, bad ids, wrong media types, bad rrweb events) and records everything the SDK sent, so the
// browser test can check the wire format without building the server.
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';

const ID = /^[A-Za-z0-9_-]{8,128}$/;
const DAY = 86_400_000;

const str = (max, min = 0) => (v) => (typeof v === 'string' && [...v].length >= min && [...v].length <= max ? null : `must be ${min} to ${max} characters`);
const id = (v) => (typeof v === 'string' && ID.test(v) ? null : 'must match ^[A-Za-z0-9_-]{8,128}$');
const int = (min, max) => (v) => (Number.isInteger(v) && v >= min && v <= max ? null : `must be an integer from ${min} to ${max}`);
const ts = (v) => (Number.isInteger(v) && v >= Date.now() - 7 * DAY && v <= Date.now() + 3_600_000 ? null : 'out of range');
const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) && Buffer.byteLength(JSON.stringify(v)) <= 16384 ? null : 'must be an object of at most 16 KiB');

const ERROR_FIELDS = {
  message: str(8192, 1), type: str(256), stack: str(65536), url: str(2048), timestamp: ts,
  session_id: id, visitor_id: id, user_id: str(256, 1), release: str(128), environment: str(64), context: obj,
};
const VITAL_MAX = { LCP: 600000, INP: 600000, FCP: 600000, TTFB: 600000, CLS: 100 };
const EVENT_FIELDS = {
  type: (v) => (v === 'page_view' || v === 'custom' || v === 'web_vital' ? null : 'must be page_view, custom or web_vital'),
  value: (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'must be a finite number ≥ 0'),
  rating: (v) => (['good', 'needs-improvement', 'poor'].includes(v) ? null : 'must be good, needs-improvement or poor'),
  navigation_type: str(32, 1),
  name: str(256, 1), url: str(2048), referrer: str(2048), title: str(1024),
  screen_width: int(0, 100000), screen_height: int(0, 100000), language: str(35),
  session_id: id, visitor_id: id, user_id: str(256, 1), timestamp: ts, properties: obj,
};

function validateItems(body, fields, required, extra) {
  const items = Array.isArray(body) ? body : [body];
  if (items.length < 1 || items.length > 100) return [{ field: 'body', reason: '1 to 100 items' }];
  const details = [];
  items.forEach((item, index) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) return details.push({ index, field: 'body', reason: 'must be an object' });
    for (const [k, v] of Object.entries(item)) {
      if (!fields[k]) details.push({ index, field: k, reason: 'unknown field' });
      else {
        const reason = fields[k](v);
        if (reason) details.push({ index, field: k, reason });
      }
    }
    for (const r of required(item)) if (!(r in item)) details.push({ index, field: r, reason: 'required' });
    if (extra) details.push(...extra(item).map((d) => ({ index, ...d })));
  });
  return details;
}

/** As server/src/payload/web_vital.rs: the metric's name and bound on web_vital events, their fields nowhere else. */
function webVitalRules(item) {
  if (item.type !== 'web_vital') return ['value', 'rating', 'navigation_type'].filter((k) => k in item).map((field) => ({ field, reason: 'is only allowed on web_vital events' }));
  const out = [];
  if ('name' in item && !(item.name in VITAL_MAX)) out.push({ field: 'name', reason: 'must be LCP, INP, CLS, FCP or TTFB for web_vital events' });
  else if (typeof item.value === 'number' && item.value > VITAL_MAX[item.name]) out.push({ field: 'value', reason: `must be at most ${VITAL_MAX[item.name]} for this metric` });
  return out;
}

export function startFakeObserver({ port = 0, key } = {}) {
  const state = {
    requests: [], // every request: { method, path, contentType, origin, referer, status }
    errors: [],
    events: [],
    chunks: new Map(), // `${sid}:${seq}` -> { sid, seq, userId, events, text, gzip, count }
    conflicts: [], // a (sid, seq) received twice with different content
    refused: [],
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      const record = { method: req.method, path: url.pathname, contentType: req.headers['content-type'], origin: req.headers.origin, referer: req.headers.referer, at: Date.now() };
      state.requests.push(record);
      const answer = (status, body, headers = {}) => {
        record.status = status;
        if (status >= 400) state.refused.push({ ...record, body });
        res.writeHead(status, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*', ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'OPTIONS') {
        return answer(204, {}, { 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'Content-Type, Content-Encoding, X-Observer-Key' });
      }
      if (req.method !== 'POST') return answer(405, { error: 'method_not_allowed' });
      if (key && url.searchParams.get('key') !== key && req.headers['x-observer-key'] !== key) return answer(401, { error: 'unauthorized' });
      let raw = Buffer.concat(chunks);
      const ct = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      const isReplay = url.pathname === '/api/observer/replay-events';
      const allowed = isReplay ? ['application/json', 'text/plain', 'application/octet-stream'] : ['application/json', 'text/plain'];
      if (!allowed.includes(ct)) return answer(415, { error: 'unsupported_media_type' });
      const gzip = raw[0] === 0x1f && raw[1] === 0x8b;
      let text;
      try {
        text = (gzip ? gunzipSync(raw) : raw).toString('utf8');
      } catch {
        return answer(400, { error: 'invalid_payload', message: 'bad gzip' });
      }
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        return answer(400, { error: 'invalid_payload', message: 'malformed JSON' });
      }
      if (url.pathname === '/api/observer/errors' || url.pathname === '/api/observer/events') {
        const isErrors = url.pathname.endsWith('errors');
        const details = isErrors
          ? validateItems(body, ERROR_FIELDS, () => ['message'])
          : validateItems(body, EVENT_FIELDS, (i) => (i.type === 'custom' ? ['type', 'name'] : i.type === 'web_vital' ? ['type', 'name', 'value', 'rating'] : ['type']), webVitalRules);
        if (details.length) return answer(400, { error: 'invalid_payload', message: `${details.length} invalid fields`, details });
        const items = Array.isArray(body) ? body : [body];
        (isErrors ? state.errors : state.events).push(...items.map((item) => ({ ...item, _referer: req.headers.referer })));
        return answer(202, { accepted: items.length });
      }
      if (isReplay) {
        for (const k of url.searchParams.keys()) if (!['session_id', 'seq', 'user_id', 'key'].includes(k)) return answer(400, { error: 'invalid_payload', details: [{ field: 'query' }] });
        const sid = url.searchParams.get('session_id');
        const seqText = url.searchParams.get('seq');
        if (!sid || !ID.test(sid) || !/^\d{1,10}$/.test(seqText || '') || Number(seqText) > 4294967295) return answer(400, { error: 'invalid_payload', details: [{ field: 'query' }] });
        if (!Array.isArray(body) || body.length === 0) return answer(400, { error: 'invalid_payload', details: [{ field: 'body' }] });
        const bad = body.findIndex((e) => !e || typeof e !== 'object' || !Number.isInteger(e.type) || e.type < 0 || e.type > 6 || typeof e.timestamp !== 'number' || e.timestamp < 0);
        if (bad !== -1) return answer(400, { error: 'invalid_payload', details: [{ index: bad, field: 'type' }] });
        const seq = Number(seqText);
        const k = `${sid}:${seq}`;
        const prev = state.chunks.get(k);
        if (prev) {
          prev.count++;
          if (prev.text !== text) state.conflicts.push(k);
        } else {
          state.chunks.set(k, { sid, seq, userId: url.searchParams.get('user_id'), events: body, text, gzip, count: 1, referer: req.headers.referer, at: Date.now() });
        }
        return answer(202, { session_id: sid, seq, events: body.length });
      }
      return answer(404, { error: 'not_found' });
    });
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => resolve({ state, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) }));
  });
}
