import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ID_PATTERN } from '../src/ids';
import { HEARTBEAT_MS, LIVE_TTL_MS, SESSION_KEY, Session, VISITOR_KEY, isHeld, parseSessionRecord, type SessionRecord } from '../src/session';
import { memoryStore, safeStore } from '../src/storage';
import { FakeStorage } from './helpers';

function tab() {
  const area = new FakeStorage();
  return { area, store: safeStore(() => area) };
}

test('a first page creates a visitor id (localStorage) and a session id (sessionStorage)', () => {
  const t = tab();
  const browserArea = new FakeStorage();
  const s = new Session(t.store, safeStore(() => browserArea), { sampleRate: 1 });
  assert.match(s.id, ID_PATTERN);
  assert.match(s.visitorId, ID_PATTERN);
  assert.equal(browserArea.getItem(VISITOR_KEY), s.visitorId);
  const rec = parseSessionRecord(t.area.getItem(SESSION_KEY));
  assert.equal(rec?.id, s.id);
  assert.equal(rec?.live, s.pageId);
  assert.equal(s.sampled, true);
});

test('the next page load in the tab continues the session, its seq and sampling', () => {
  const t = tab();
  const browser = safeStore(() => new FakeStorage());
  const first = new Session(t.store, browser, { sampleRate: 0.5, random: () => 0.1 });
  assert.equal(first.nextSeq(), 0);
  assert.equal(first.nextSeq(), 1);
  first.setUser('u-1');
  first.release();
  const second = new Session(t.store, browser, { sampleRate: 0.5, random: () => 0.9 });
  assert.equal(second.id, first.id);
  assert.equal(second.visitorId, first.visitorId);
  assert.equal(second.sampled, true, 'decided once per session, not again');
  assert.equal(second.userId, 'u-1');
  assert.equal(second.nextSeq(), 2);
});

test('a session still held by a live page (duplicated tab, same-origin iframe) is not continued', () => {
  const t = tab();
  const browser = memoryStore();
  const first = new Session(t.store, browser, { sampleRate: 1 });
  first.nextSeq();
  const copy = new Session(t.store, browser, { sampleRate: 1 });
  assert.notEqual(copy.id, first.id);
  assert.equal(copy.isPending, true, 'decided at first use');
  assert.equal(copy.nextSeq(), 0);
  assert.equal(copy.isPending, false);
  // The first page keeps its own numbering in memory and leaves the other's record alone.
  assert.equal(first.nextSeq(), 1);
  assert.equal(parseSessionRecord(t.area.getItem(SESSION_KEY))?.id, copy.id);
});

test('seq allocated after release does not re-mark the session live', () => {
  const t = tab();
  const s = new Session(t.store, memoryStore(), { sampleRate: 1 });
  s.release();
  s.nextSeq();
  assert.equal(parseSessionRecord(t.area.getItem(SESSION_KEY))?.live, undefined);
});

test('back/forward cache restore: claim continues the session when nobody holds it, with the seq another page advanced', () => {
  const t = tab();
  const browser = memoryStore();
  const a = new Session(t.store, browser, { sampleRate: 1 });
  assert.equal(a.nextSeq(), 0);
  a.release();
  const b = new Session(t.store, browser, { sampleRate: 1 });
  assert.equal(b.nextSeq(), 1);
  b.release();
  assert.equal(a.claim(), 'continued');
  assert.equal(a.nextSeq(), 2);
});

test('sampling: rate 0 never, rate 1 always', () => {
  assert.equal(new Session(memoryStore(), memoryStore(), { sampleRate: 0, random: () => 0 }).sampled, false);
  assert.equal(new Session(memoryStore(), memoryStore(), { sampleRate: 1, random: () => 0.99999 }).sampled, true);
  assert.equal(new Session(memoryStore(), memoryStore(), { sampleRate: 0.3, random: () => 0.2 }).sampled, true);
  assert.equal(new Session(memoryStore(), memoryStore(), { sampleRate: 0.3, random: () => 0.4 }).sampled, false);
});

test('without usable storage everything still works in memory', () => {
  const broken = safeStore(() => {
    throw new Error('SecurityError');
  });
  const s = new Session(broken, broken, { sampleRate: 1 });
  assert.match(s.id, ID_PATTERN);
  assert.match(s.visitorId, ID_PATTERN);
  assert.equal(s.nextSeq(), 0);
  assert.equal(s.nextSeq(), 1);
  assert.equal(s.persistent, false);
});

test('corrupt records are ignored', () => {
  for (const text of ['', 'nope', '{}', '{"id":"short","seq":0}', '{"id":"abcdefgh","seq":-1}', '{"id":"abcdefgh","seq":1.5}', 'null']) {
    assert.equal(parseSessionRecord(text), null, text);
  }
  assert.deepEqual(parseSessionRecord('{"id":"abcdefgh","seq":3,"sampled":true,"uid":"u"}'), {
    id: 'abcdefgh',
    seq: 3,
    sampled: true,
    draw: undefined,
    uid: 'u',
    live: undefined,
    beat: undefined,
    hidden: undefined,
  });
  assert.deepEqual(parseSessionRecord('{"id":"abcdefgh","seq":3,"live":"p","beat":"x","hidden":1}'), {
    id: 'abcdefgh',
    seq: 3,
    sampled: undefined,
    draw: undefined,
    uid: undefined,
    live: 'p',
    beat: undefined,
    hidden: undefined,
  });
});

// ---- the live mark's heartbeat and expiry, with a fake clock ------------------------------------------------

/** One tab's sessionStorage (shared by its pages, or copied for a duplicate) and a clock. */
function clockTab(start = 1_000_000) {
  const t = tab();
  const clock = { now: start };
  const browser = memoryStore();
  const page = (extra: { pageStart?: number; discarded?: boolean; random?: () => number; sampleRate?: number } = {}) =>
    new Session(t.store, browser, { sampleRate: 1, now: () => clock.now, pageStart: clock.now, ...extra });
  const stored = () => parseSessionRecord(t.area.getItem(SESSION_KEY)) as SessionRecord;
  /** A duplicated tab: a copy of this tab's sessionStorage as it is now, on the same clock. */
  const duplicate = () => {
    const area = new FakeStorage();
    for (const [k, v] of t.area.map) area.map.set(k, v);
    const store = safeStore(() => area);
    return (extra: { pageStart?: number } = {}) => new Session(store, browser, { sampleRate: 1, now: () => clock.now, pageStart: clock.now, ...extra });
  };
  return { ...t, clock, page, stored, duplicate };
}

test('isHeld: visible marks expire after the TTL, hidden and legacy marks do not', () => {
  const rec = (r: Partial<SessionRecord>): SessionRecord => ({ id: 'abcdefgh', seq: 0, ...r });
  assert.equal(isHeld(rec({}), 0), false, 'released');
  assert.equal(isHeld(rec({ live: 'p', beat: 1000 }), 1000 + LIVE_TTL_MS - 1), true);
  assert.equal(isHeld(rec({ live: 'p', beat: 1000 }), 1000 + LIVE_TTL_MS), false);
  assert.equal(isHeld(rec({ live: 'p', beat: 5000 }), 1000), true, 'a beat after the reference time');
  assert.equal(isHeld(rec({ live: 'p', beat: 1000, hidden: true }), 1000 + 3_600_000), true, 'hidden: timers may be frozen');
  assert.equal(isHeld(rec({ live: 'p' }), 1e15), true, 'a mark from an SDK without heartbeat');
});

test('heartbeat refreshes the mark while the page holds it, and only then', () => {
  const c = clockTab();
  const a = c.page();
  assert.equal(c.stored().beat, c.clock.now);
  c.clock.now += HEARTBEAT_MS;
  a.heartbeat(false);
  assert.equal(c.stored().beat, c.clock.now);
  assert.equal(c.stored().hidden, undefined);
  c.clock.now += HEARTBEAT_MS;
  a.heartbeat(true);
  assert.deepEqual([c.stored().beat, c.stored().hidden], [c.clock.now, true]);
  a.nextSeq();
  assert.equal(c.stored().hidden, true, 'other writes keep the hidden flag');
  a.heartbeat(false);
  assert.equal(c.stored().hidden, undefined);
  a.release();
  const released = rawRecord(c);
  c.clock.now += HEARTBEAT_MS;
  a.heartbeat(false);
  assert.equal(rawRecord(c), released, 'no beat after release');
  assert.equal(c.stored().live, undefined);
  assert.equal(c.stored().beat, undefined);
});

function rawRecord(c: ReturnType<typeof clockTab>): string | null {
  return c.area.getItem(SESSION_KEY);
}

test('a visible page that died without pagehide: its mark expires, the next page continues the session', () => {
  const c = clockTab();
  const a = c.page();
  a.nextSeq();
  a.nextSeq();
  // The page crashes: no release. The tab is reloaded 2 s later: still held, so the new page waits...
  c.clock.now += 2000;
  const early = c.page();
  assert.equal(early.isPending, true);
  // ...and as nobody releases it, it keeps its own session.
  assert.equal(early.settle(), false);
  assert.notEqual(early.id, a.id);

  const d = clockTab();
  const b = d.page();
  b.nextSeq();
  d.clock.now += LIVE_TTL_MS + 500;
  const late = d.page();
  assert.equal(late.isPending, false);
  assert.equal(late.id, b.id, 'stale mark: continued');
  assert.equal(late.nextSeq(), 1);
  assert.equal(d.stored().live, late.pageId);
});

test("the previous page's pagehide runs after the new page started: the new page continues the session", () => {
  const c = clockTab();
  const a = c.page();
  assert.equal(a.nextSeq(), 0);
  a.setUser('u-1');
  // Navigation: the new page's script runs while the old page is still live (bfcache, process swap).
  c.clock.now += 300;
  const b = c.page();
  assert.equal(b.isPending, true);
  const provisional = b.id;
  assert.notEqual(provisional, a.id);
  assert.equal(b.userId, 'u-1');
  let adopted: [string, string] | undefined;
  b.onAdopt = (from, to) => (adopted = [from, to]);
  // The old page leaves late: it seals its last chunk and releases. The new page has written nothing meanwhile.
  c.clock.now += 200;
  assert.equal(a.nextSeq(), 1);
  a.release();
  assert.equal(c.stored().id, a.id);
  c.clock.now += 500;
  assert.equal(b.settle(), true);
  assert.equal(b.id, a.id);
  assert.deepEqual(adopted, [provisional, a.id]);
  assert.equal(b.nextSeq(), 2, 'seq continues after the old page\'s last chunk');
  assert.equal(c.stored().live, b.pageId);
});

test('the first seq settles a pending start (nothing is numbered under a provisional id)', () => {
  const c = clockTab();
  const a = c.page();
  a.nextSeq();
  const b = c.page();
  assert.equal(b.isPending, true);
  a.release();
  assert.equal(b.nextSeq(), 1);
  assert.equal(b.id, a.id);
});

test('a duplicated tab (both pages alive) gets its own session, however slowly the copy loads', () => {
  const c = clockTab();
  const a = c.page();
  assert.equal(a.nextSeq(), 0);
  c.clock.now += 400;
  a.heartbeat(false);
  // The browser copies sessionStorage when it duplicates the tab; the copy's navigation starts right after.
  const copyOf = c.duplicate();
  const pageStart = c.clock.now + 10;
  // A slow page: its script runs 10 s later, long after the copied mark's TTL.
  c.clock.now += 10_000;
  a.heartbeat(false);
  const dup = copyOf({ pageStart });
  assert.equal(dup.isPending, true, 'judged against the time the copy started loading');
  c.clock.now += 1500;
  assert.equal(dup.settle(), false, 'the copy of the mark is never released');
  assert.notEqual(dup.id, a.id);
  assert.equal(dup.nextSeq(), 0);
  assert.equal(dup.sampled, a.sampled, 'inherits the sampling decision');
  // The original keeps its numbering.
  assert.equal(a.nextSeq(), 1);
  assert.equal(c.stored().id, a.id);
});

test('a duplicate of a hidden tab (timers throttled, no recent beat) gets its own session', () => {
  const c = clockTab();
  const a = c.page();
  a.nextSeq();
  a.heartbeat(true);
  c.clock.now += 10 * 60_000;
  const dup = c.duplicate()();
  assert.equal(dup.isPending, true);
  assert.equal(dup.settle(), false);
  assert.notEqual(dup.id, a.id);
});

test('a same-origin iframe (shared storage, the top page keeps beating) gets its own session', () => {
  const c = clockTab();
  const top = c.page();
  top.nextSeq();
  const frame = c.page();
  for (let i = 0; i < 3; i++) {
    c.clock.now += HEARTBEAT_MS;
    top.heartbeat(false);
  }
  assert.equal(frame.settle(), false);
  assert.notEqual(frame.id, top.id);
  assert.equal(c.stored().id, frame.id, 'the frame wrote its own record');
  // The top page stops beating a record that is no longer its own, and keeps counting in memory.
  const before = rawRecord(c);
  top.heartbeat(false);
  assert.equal(rawRecord(c), before);
  assert.equal(top.nextSeq(), 1);
});

test('a tab the browser discarded continues its session although the hidden mark never expires', () => {
  const c = clockTab();
  const a = c.page();
  a.nextSeq();
  a.heartbeat(true);
  c.clock.now += 3_600_000;
  const reloaded = c.page({ discarded: true });
  assert.equal(reloaded.isPending, false);
  assert.equal(reloaded.id, a.id);
  assert.equal(reloaded.nextSeq(), 1);
});

test('identify while pending is kept over the user id the released session had', () => {
  const c = clockTab();
  const a = c.page();
  a.setUser('old');
  const b = c.page();
  b.setUser('new');
  a.release();
  assert.equal(b.settle(), true);
  assert.equal(b.userId, 'new');
  assert.equal(c.stored().uid, 'new');
});

test('a page leaving while pending marks nothing', () => {
  const c = clockTab();
  const a = c.page();
  const b = c.page();
  const before = rawRecord(c);
  b.release();
  b.heartbeat(false);
  assert.equal(rawRecord(c), before);
  assert.equal(c.stored().live, a.pageId);
});

test('back/forward cache restore while the page it returns from is still leaving: pending, then continued', () => {
  const c = clockTab();
  const a = c.page();
  assert.equal(a.nextSeq(), 0);
  a.release();
  const b = c.page();
  assert.equal(b.isPending, false);
  assert.equal(b.nextSeq(), 1);
  // Back to a: b is still live when a is restored.
  assert.equal(a.claim(), 'pending');
  b.release();
  assert.equal(a.settle(), true);
  assert.equal(a.id, b.id);
  assert.equal(a.nextSeq(), 2);
});

test('the errors/events draw is made once per session, kept across page loads and inherited by a duplicate', () => {
  const t = tab();
  const browser = memoryStore();
  const first = new Session(t.store, browser, { sampleRate: 1, random: () => 0.42 });
  assert.equal(first.draw, 0.42);
  first.release();
  const second = new Session(t.store, browser, { sampleRate: 1, random: () => 0.9 });
  assert.equal(second.draw, 0.42, 'same session, same draw');
});

test('setSampled (replay.start/stop) is kept for the rest of the session', () => {
  const t = tab();
  const browser = memoryStore();
  const s = new Session(t.store, browser, { sampleRate: 0 });
  assert.equal(s.sampled, false);
  s.setSampled(true);
  s.release();
  assert.equal(new Session(t.store, browser, { sampleRate: 0 }).sampled, true);
});
