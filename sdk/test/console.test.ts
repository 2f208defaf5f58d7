import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boundedArg, boundLogData, CONSOLE_LIMITS, createConsolePlugin, rateLimiter, type ConsolePluginFactory } from '../src/capture/console';

test('arguments: cycles, huge strings, deep and wide objects, throwing getters, functions', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  assert.deepEqual(boundedArg(cyclic), { a: 1, self: '[Circular]' });
  const huge = 'x'.repeat(100_000);
  const cut = boundedArg(huge) as string;
  assert.ok(cut.length < CONSOLE_LIMITS.stringChars + 30 && cut.endsWith('(100000 chars)'));
  assert.deepEqual(boundedArg({ a: { b: { c: { d: 1 } } } }), { a: { b: { c: '[Object]' } } });
  const wide = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i]));
  assert.equal(Object.keys(boundedArg(wide) as object).length, CONSOLE_LIMITS.keys + 1);
  assert.equal((boundedArg(Array.from({ length: 100 })) as unknown[]).length, CONSOLE_LIMITS.keys + 1);
  const getter = Object.defineProperty({}, 'boom', {
    enumerable: true,
    get() {
      throw new Error('no');
    },
  });
  assert.deepEqual(boundedArg(getter), { boom: '[unreadable]' });
  assert.equal(boundedArg(function named() {}), '[Function named]');
  assert.equal(boundedArg(10n), '10n');
  assert.match(boundedArg(new Error('bad thing')) as string, /bad thing/);
});

test('payload strings and traces are cut, and stay JSON', () => {
  const data = { payload: ['"short"', JSON.stringify('y'.repeat(5000)), ...Array.from({ length: 30 }, () => '1')], trace: Array.from({ length: 50 }, () => 'f'.repeat(1000)) };
  boundLogData(data);
  assert.equal(data.payload.length, CONSOLE_LIMITS.args);
  assert.equal(data.payload[0], '"short"');
  assert.ok(data.payload[1].length <= CONSOLE_LIMITS.argChars + 10);
  assert.equal(typeof JSON.parse(data.payload[1]), 'string');
  assert.equal(data.trace.length, CONSOLE_LIMITS.traceFrames);
  assert.ok(data.trace.every((f: string) => f.length === CONSOLE_LIMITS.frameChars));
});

test('the rate limiter allows a burst, then a steady rate', () => {
  let now = 0;
  const limiter = rateLimiter(3, 2, () => now);
  assert.deepEqual([limiter.take(), limiter.take(), limiter.take(), limiter.take()], [true, true, true, false]);
  now = 500;
  assert.deepEqual([limiter.take(), limiter.take()], [true, false]);
});

/** A stand-in for the plugin: patches `logger[level]` like the real one and reports the raw arguments. */
const fakeFactory: ConsolePluginFactory = () => ({
  name: 'rrweb/console@1',
  observer(cb, _win, options) {
    const logger = (options as { logger: Record<string, (...a: unknown[]) => void> }).logger;
    for (const level of Object.keys(logger)) {
      const original = logger[level];
      logger[level] = (...args: unknown[]) => {
        original(...args);
        cb({ level, payload: args.map((a) => JSON.stringify(a)), trace: ['plugin-frame-removed-by-it', 'our-wrapper', 'caller'].slice(1) });
      };
    }
    return () => undefined;
  },
});

test('the page console still prints everything; the replay gets bounded copies within the rate, not our own lines', () => {
  const printed: unknown[][] = [];
  const fakeConsole = { log: (...a: unknown[]) => printed.push(a), warn: (...a: unknown[]) => printed.push(a) };
  const win = { console: fakeConsole } as unknown as Window;
  const recorded: Array<{ level: string; payload: string[]; trace: string[] }> = [];
  const now = 0;
  const plugin = createConsolePlugin(fakeFactory, ['log', 'warn'], () => now);
  const stop = plugin.observer!((p) => recorded.push(p as never), win, plugin.options);
  const node = { huge: 'z'.repeat(50_000) };
  fakeConsole.log('hello', node);
  fakeConsole.warn('[observer] internal');
  assert.equal(printed[0][1], node, 'the original gets the original arguments');
  assert.equal(printed.length, 2);
  assert.equal(recorded.length, 1);
  assert.equal(recorded[0].level, 'log');
  assert.equal(recorded[0].payload[0], '"hello"');
  assert.ok(recorded[0].payload[1].length < 1100);
  assert.deepEqual(recorded[0].trace, ['caller'], "the wrapper's own frame is dropped");
  for (let i = 0; i < 500; i++) fakeConsole.log('loop', i);
  assert.equal(printed.length, 502, 'the page console is never rate limited');
  assert.equal(recorded.length, CONSOLE_LIMITS.burst);
  stop();
  assert.equal(typeof fakeConsole.log, 'function');
  fakeConsole.log('after stop');
  assert.equal(recorded.length, CONSOLE_LIMITS.burst);
});
