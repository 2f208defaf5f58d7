import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RECORDER_SETTINGS, Recorder } from '../src/replay/recorder';
import type { Chunk, ReplayOutbox } from '../src/replay/outbox';
import type { RecordFn, RecordOptions, RrwebEvent } from '../src/replay/types';
import { Session } from '../src/session';
import { memoryStore } from '../src/storage';
import { fakeLogger } from './helpers';

function setup(overrides: Partial<typeof DEFAULT_RECORDER_SETTINGS> = {}) {
  const chunks: Chunk[] = [];
  const outbox = { add: (c: Chunk) => chunks.push(c) } as unknown as ReplayOutbox;
  const session = new Session(memoryStore(), memoryStore(), { sampleRate: 1 });
  let options!: RecordOptions;
  const custom: Array<[string, unknown]> = [];
  const record = ((o: RecordOptions) => {
    options = o;
    return () => undefined;
  }) as RecordFn;
  record.addCustomEvent = (tag, payload) => custom.push([tag, payload]);
  const recorder = new Recorder(session, outbox, fakeLogger(), { ...DEFAULT_RECORDER_SETTINGS, maskAllInputs: true, ...overrides });
  const emit = (e: RrwebEvent, checkout?: boolean) => options.emit(e, checkout);
  return { chunks, recorder, record, emit, custom, session, options: () => options };
}

const ev = (type: number, size = 0): RrwebEvent => ({ type, timestamp: 1, data: { s: 'x'.repeat(size) } });

test('rrweb gets masking, selectors and a checkout every 5 minutes', async () => {
  const s = setup();
  await s.recorder.start(async () => s.record);
  const o = s.options();
  assert.equal(o.maskAllInputs, true);
  assert.equal(o.checkoutEveryNms, 300_000);
  assert.equal(s.recorder.recording, true);
});

test('a chunk is sealed 5 s after its first event, 1 s after a full snapshot', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  const s = setup();
  const recorder = new Recorder(s.session, { add: (c: Chunk) => s.chunks.push(c) } as unknown as ReplayOutbox, fakeLogger(), { ...DEFAULT_RECORDER_SETTINGS, maskAllInputs: true }, () => now);
  await recorder.start(async () => s.record);
  s.emit(ev(3));
  t.mock.timers.tick(4999);
  assert.equal(s.chunks.length, 0);
  t.mock.timers.tick(1);
  assert.equal(s.chunks.length, 1);
  s.emit(ev(4));
  s.emit(ev(2));
  t.mock.timers.tick(1000);
  assert.equal(s.chunks.length, 2);
  assert.deepEqual(JSON.parse(s.chunks[1].json as string).map((e: RrwebEvent) => e.type), [4, 2]);
  assert.deepEqual(s.chunks.map((c) => c.seq), [0, 1]);
});

test('a chunk is sealed at the size bound', async () => {
  const s = setup({ maxChunkChars: 1000 });
  await s.recorder.start(async () => s.record);
  s.emit(ev(3, 600));
  assert.equal(s.chunks.length, 0);
  s.emit(ev(3, 600));
  assert.equal(s.chunks.length, 1);
  assert.equal(JSON.parse(s.chunks[0].json as string).length, 2);
});

test('a checkout starts a new chunk with its Meta event', async () => {
  const s = setup();
  await s.recorder.start(async () => s.record);
  s.emit(ev(3));
  s.emit(ev(4), true);
  s.emit(ev(2), true);
  s.recorder.seal();
  assert.deepEqual(s.chunks.map((c) => JSON.parse(c.json as string).map((e: RrwebEvent) => e.type)), [[3], [4, 2]]);
});

test('chunks carry the session id, seq and user id; seal with nothing buffered makes no chunk', async () => {
  const s = setup();
  await s.recorder.start(async () => s.record);
  s.recorder.seal();
  assert.equal(s.chunks.length, 0);
  s.session.setUser('u-9');
  s.emit(ev(3));
  s.recorder.seal();
  assert.deepEqual({ ...s.chunks[0], json: undefined }, { sid: s.session.id, seq: 0, uid: 'u-9', json: undefined });
});

test('errors become rrweb custom events tagged "error" with message, type and a truncated stack', async () => {
  const s = setup();
  await s.recorder.start(async () => s.record);
  s.recorder.addError({ message: 'boom', type: 'TypeError', stack: 's'.repeat(5000) });
  assert.equal(s.custom.length, 1);
  const [tag, payload] = s.custom[0] as [string, { message: string; type: string; stack: string }];
  assert.equal(tag, 'error');
  assert.equal(payload.message, 'boom');
  assert.equal(payload.type, 'TypeError');
  assert.equal(payload.stack.length, 1000);
});

test('no rrweb (core build without window.rrweb): not recording, nothing throws', async () => {
  const s = setup();
  await s.recorder.start(async () => undefined);
  assert.equal(s.recorder.recording, false);
  s.recorder.addError({ message: 'x' });
  s.recorder.takeFullSnapshot();
  await s.recorder.start(async () => {
    throw new Error('chunk load failed');
  });
  assert.equal(s.recorder.recording, false);
});

test('identify becomes an rrweb custom event tagged "identify" with {user_id}; repeats are recorded once', async () => {
  const s = setup();
  await s.recorder.start(async () => s.record);
  s.recorder.addIdentify('user-42');
  s.recorder.addIdentify('user-42');
  s.recorder.addIdentify(undefined);
  assert.deepEqual(s.custom, [
    ['identify', { user_id: 'user-42' }],
    ['identify', { user_id: null }],
  ]);
});

test('identify before rrweb takes custom events waits for the first full snapshot', async () => {
  const s = setup();
  let recording = false;
  s.record.addCustomEvent = (tag, payload) => {
    if (!recording) throw new Error('please add custom event after start recording');
    s.custom.push([tag, payload]);
  };
  // Called while rrweb is still loading, then again (the latest wins).
  s.recorder.addIdentify('first');
  s.recorder.addIdentify('user-7');
  await s.recorder.start(async () => s.record);
  s.recorder.addIdentify('user-7');
  assert.deepEqual(s.custom, []);
  // rrweb's init: Meta + FullSnapshot emitted, then it counts as recording.
  s.emit(ev(4));
  s.emit(ev(2));
  recording = true;
  await Promise.resolve();
  assert.deepEqual(s.custom, [['identify', { user_id: 'user-7' }]]);
});

test('identify with a long id is cut to the user id limit', async () => {
  const s = setup();
  await s.recorder.start(async () => s.record);
  s.recorder.addIdentify('u'.repeat(1000));
  assert.equal((s.custom[0][1] as { user_id: string }).user_id.length, 256);
});

test('stop seals what was recorded; start records again from a new full snapshot; both idempotent', async () => {
  const s = setup();
  let starts = 0;
  let stops = 0;
  const record = ((o: RecordOptions) => {
    starts++;
    o.emit({ type: 4, timestamp: 1 });
    o.emit({ type: 2, timestamp: 1 });
    return () => void stops++;
  }) as RecordFn;
  await Promise.all([s.recorder.start(async () => record), s.recorder.start(async () => record)]);
  assert.equal(starts, 1, 'a second start while starting does nothing');
  s.recorder.stop();
  s.recorder.stop();
  assert.equal(stops, 1);
  assert.equal(s.chunks.length, 1, 'what was recorded is sealed at stop');
  await s.recorder.start(async () => record);
  assert.equal(starts, 2);
  s.recorder.stop();
  assert.deepEqual(JSON.parse(s.chunks[1].json as string).map((e: RrwebEvent) => e.type), [4, 2], 'the new recording opens with Meta + FullSnapshot');
});

test('a start whose rrweb arrives after a stop does not record; discard forgets the unsealed events', async () => {
  const s = setup();
  let release!: (r: RecordFn) => void;
  const late = s.recorder.start(() => new Promise<RecordFn>((r) => (release = r)));
  s.recorder.stop();
  release(s.record);
  await late;
  assert.equal(s.recorder.recording, false);
  await s.recorder.start(async () => s.record);
  s.emit(ev(3));
  s.recorder.discard();
  assert.equal(s.chunks.length, 0);
  assert.equal(s.recorder.recording, false);
});
