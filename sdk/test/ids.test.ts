import assert from 'node:assert/strict';
import { test } from 'node:test';
import { base64url, ID_PATTERN, isValidId, newId, randomBytes } from '../src/ids';

test('new ids match the server id format and do not repeat', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = newId();
    assert.match(id, ID_PATTERN);
    assert.equal(id.length, 22);
    seen.add(id);
  }
  assert.equal(seen.size, 2000);
});

test('base64url agrees with Node for every length remainder', () => {
  for (let len = 0; len < 40; len++) {
    const bytes = randomBytes(len);
    assert.equal(base64url(bytes), Buffer.from(bytes).toString('base64url'));
  }
});

test('ids fall back to Math.random without crypto, or when crypto throws', () => {
  assert.match(newId(null as unknown as Crypto), ID_PATTERN);
  const throwing = { getRandomValues: () => { throw new Error('nope'); } } as unknown as Crypto;
  assert.match(newId(throwing), ID_PATTERN);
});

test('isValidId follows ^[A-Za-z0-9_-]{8,128}$', () => {
  assert.ok(isValidId('abcdEFGH'));
  assert.ok(isValidId('a'.repeat(128)));
  assert.ok(isValidId('A-b_c-1234'));
  assert.ok(!isValidId('short'));
  assert.ok(!isValidId('a'.repeat(129)));
  assert.ok(!isValidId('has space1'));
  assert.ok(!isValidId('../../etc/passwd'));
  assert.ok(!isValidId(12345678));
  assert.ok(!isValidId(undefined));
});
