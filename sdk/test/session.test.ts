import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ID_PATTERN } from '../src/ids';
import { SESSION_KEY, Session, VISITOR_KEY, parseSessionRecord } from '../src/session';
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
  assert.equal(copy.nextSeq(), 0);
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
  assert.equal(a.claim(), false);
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
  assert.deepEqual(parseSessionRecord('{"id":"abcdefgh","seq":3,"sampled":true,"uid":"u"}'), { id: 'abcdefgh', seq: 3, sampled: true, uid: 'u', live: undefined });
});
