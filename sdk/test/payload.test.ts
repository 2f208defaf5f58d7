import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boundedObject, describeError, LIMITS, optionalDimension, optionalText, safeStringify, stripHash, truncate } from '../src/payload';
import { utf8Length } from '../src/transport';

test('truncate never splits a surrogate pair', () => {
  assert.equal(truncate('abc', 5), 'abc');
  assert.equal(truncate('abcdef', 3), 'abc');
  const s = 'ab😀cd'; // 😀 is two UTF-16 units at 2..3
  assert.equal(truncate(s, 3), 'ab');
  assert.equal(truncate(s, 4), 'ab😀');
});

test('utf8Length matches Buffer.byteLength', () => {
  for (const s of ['', 'ascii', 'é', '€uro', '😀', 'a😀b', '\ud800x', 'x\udc00']) {
    assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
  }
});

test('optional fields', () => {
  assert.equal(optionalText('', 5), undefined);
  assert.equal(optionalText(3, 5), undefined);
  assert.equal(optionalText('abcdefg', 5), 'abcde');
  assert.equal(optionalDimension(1920.4), 1920);
  assert.equal(optionalDimension(-3), 0);
  assert.equal(optionalDimension(1e9), LIMITS.screen);
  assert.equal(optionalDimension(NaN), undefined);
  assert.equal(optionalDimension('10'), undefined);
});

test('safeStringify survives cycles, BigInt and throwing toJSON', () => {
  const a: Record<string, unknown> = { n: 1 };
  a.self = a;
  assert.equal(safeStringify(a), '{"n":1,"self":"[Circular]"}');
  const shared = { x: 1 };
  assert.equal(safeStringify({ p: shared, q: shared }), '{"p":{"x":1},"q":{"x":1}}', 'shared, not circular');
  assert.equal(safeStringify({ b: 10n }), '{"b":"10"}');
  assert.equal(safeStringify({ toJSON() { throw new Error('x'); } }), undefined);
});

test('boundedObject keeps small objects and trims large ones to 16 KiB', () => {
  assert.deepEqual(boundedObject({ a: 1, b: 'x' }), { a: 1, b: 'x' });
  assert.equal(boundedObject('str'), undefined);
  assert.equal(boundedObject([1, 2]), undefined);
  assert.equal(boundedObject(null), undefined);
  const big = { small: 1, huge: 'x'.repeat(20_000), after: 'kept' };
  const out = boundedObject(big) as Record<string, unknown>;
  assert.equal(out._truncated, true);
  assert.equal(out.small, 1);
  assert.equal(out.after, 'kept');
  assert.equal(out.huge, undefined);
  assert.ok(utf8Length(JSON.stringify(out)) <= LIMITS.objectBytes);
  const many: Record<string, string> = {};
  for (let i = 0; i < 1000; i++) many['k' + i] = 'é'.repeat(20);
  assert.ok(utf8Length(JSON.stringify(boundedObject(many))) <= LIMITS.objectBytes);
});

test('describeError for Errors, strings, objects and primitives', () => {
  const e = new TypeError('bad thing');
  const d = describeError(e);
  assert.equal(d.message, 'bad thing');
  assert.equal(d.type, 'TypeError');
  assert.match(d.stack as string, /bad thing/);
  assert.deepEqual(describeError('oops'), { message: 'oops' });
  assert.deepEqual(describeError(''), { message: 'Error' });
  assert.deepEqual(describeError(42), { message: '42' });
  assert.deepEqual(describeError(undefined), { message: 'undefined' });
  assert.deepEqual(describeError({ code: 7 }), { message: '{"code":7}', type: undefined, stack: undefined });
  const empty = new Error();
  assert.equal(describeError(empty).message, 'Error');
});

test('stripHash drops the fragment only', () => {
  assert.equal(stripHash('https://a.test/p?q=1#access_token=secret'), 'https://a.test/p?q=1');
  assert.equal(stripHash('https://a.test/p'), 'https://a.test/p');
});
