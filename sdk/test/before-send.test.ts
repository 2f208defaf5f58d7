import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyBeforeSend } from '../src/control/before-send';
import { fakeLogger } from './helpers';

const error = () => ({ message: 'card 4111 1111 1111 1111 declined', url: 'https://shop.test/pay?token=abc', session_id: 'sessionid1' });

test('scrubs: what beforeSend returns is queued, the original is left alone', () => {
  const original = error();
  const out = applyBeforeSend(
    (item: { message: string; url?: string }, kind) => {
      assert.equal(kind, 'error');
      item.message = item.message.replace(/\d{4}( \d{4}){3}/, '[card]');
      delete item.url;
      return item;
    },
    original,
    'error',
    fakeLogger(),
  );
  assert.deepEqual(out, { message: 'card [card] declined', session_id: 'sessionid1' });
  assert.equal(original.message, error().message);
});

test('drops on null, undefined, non-objects, promises and exceptions; never throws', () => {
  const log = fakeLogger();
  const cases: Array<() => unknown> = [
    () => null,
    () => undefined,
    () => 'text',
    () => [error()],
    () => Promise.resolve(error()),
    () => {
      throw new Error('bug in beforeSend');
    },
    () => ({ url: 'no message' }),
  ];
  for (const fn of cases) assert.equal(applyBeforeSend(fn as never, error(), 'error', log), null, String(fn));
  assert.equal(log.lines.length, 5, "a warning for each but null and undefined");
});

test('fields Observer does not accept are removed; fields of the item are kept', () => {
  const event = { type: 'web_vital', name: 'LCP', value: 1200, rating: 'good' };
  const out = applyBeforeSend((e: Record<string, unknown>) => ({ ...e, value: 1300, password: 'x', properties: { a: 1 } }), event, 'event', fakeLogger());
  assert.deepEqual(out, { type: 'web_vital', name: 'LCP', value: 1300, rating: 'good', properties: { a: 1 } });
  const cyclic: Record<string, unknown> = { message: 'm' };
  cyclic.context = { self: cyclic };
  assert.deepEqual(applyBeforeSend(() => cyclic, error(), 'error', fakeLogger()), { message: 'm', context: { self: '[Circular]' } });
});

test('no beforeSend: the item as it is', () => {
  const e = error();
  assert.equal(applyBeforeSend(undefined, e, 'error', fakeLogger()), e);
});
