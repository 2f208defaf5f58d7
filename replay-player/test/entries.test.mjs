// How the side panels read rrweb events (src/panels/entries.ts), without a
// browser: the module is transpiled with the project's esbuild and imported.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as esbuild from 'esbuild';

const source = readFileSync(new URL('../src/panels/entries.ts', import.meta.url), 'utf8');
const { code } = await esbuild.transform(source, { loader: 'ts', format: 'esm' });
const { consoleEntry, consoleText, networkEntry, formatBytes, formatMs } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

const plugin = (payload) => ({ type: 6, timestamp: 1000, data: { plugin: 'rrweb/console@1', payload } });
const network = (payload) => ({ type: 5, timestamp: 2000, data: { tag: 'network', payload } });

test('console arguments: strings bare, the rest as the JSON the plugin stored', () => {
  const args = ['hello', { a: [1, 2] }, 42, null, 'undefined', 'say "hi"'].map((a) => JSON.stringify(a));
  assert.equal(consoleText(args), 'hello {"a":[1,2]} 42 null undefined say "hi"');
  assert.equal(consoleText(['"unterminated', 'plain text']), '"unterminated plain text', 'not JSON: shown as it is');
  assert.equal(consoleText([7, true]), '7 true', 'non-string items (not what the plugin sends) still show');
});

test('console events: level groups, trace, and anything else ignored', () => {
  const entry = consoleEntry(plugin({ level: 'error', payload: ['"boom"'], trace: ['a (x.js:1:1)', 5, 'b (x.js:2:2)'] }));
  assert.deepEqual(entry, { timestamp: 1000, level: 'error', group: 'error', text: 'boom', trace: ['a (x.js:1:1)', 'b (x.js:2:2)'] });
  for (const [level, group] of [['log', 'log'], ['info', 'info'], ['warn', 'warn'], ['debug', 'other'], ['assert', 'other'], ['other', 'other']]) {
    assert.equal(consoleEntry(plugin({ level, payload: [] })).group, group, level);
  }
  assert.equal(consoleEntry(plugin({ payload: ['"x"'] })).level, 'log', 'no level: log');
  assert.equal(consoleEntry(plugin('nope')), null);
  assert.equal(consoleEntry({ type: 6, timestamp: 1, data: { plugin: 'rrweb/sequential-id@1', payload: { id: 1 } } }), null);
  assert.equal(consoleEntry({ type: 5, timestamp: 1, data: { tag: 'network', payload: {} } }), null);
  const long = consoleEntry(plugin({ level: 'log', payload: [JSON.stringify('x'.repeat(20_000))], trace: Array(200).fill('f'.repeat(900)) }));
  assert.equal(long.text.length, 5001, 'capped, with an ellipsis');
  assert.equal(long.trace.length, 50);
  assert.equal(long.trace[0].length, 501);
});

test('network events: fields checked, failures classified', () => {
  const ok = networkEntry(network({ initiator: 'fetch', method: 'get', url: 'https://a.example/x?q=*', status: 200, duration_ms: 12.6, request_bytes: null, response_bytes: 300 }));
  assert.deepEqual(ok, {
    timestamp: 2000, initiator: 'fetch', method: 'GET', url: 'https://a.example/x?q=*', status: 200, durationMs: 12.6,
    requestBytes: null, responseBytes: 300, error: null, failed: false,
  });
  for (const [status, failed] of [[0, true], [204, false], [399, false], [400, true], [503, true]]) {
    assert.equal(networkEntry(network({ initiator: 'xhr', method: 'POST', url: '/', status })).failed, failed, String(status));
  }
  const odd = networkEntry(network({ initiator: 'beacon', status: -1, duration_ms: 'slow', response_bytes: -5, error: 'Failed to fetch' }));
  assert.equal(odd.initiator, 'other');
  assert.equal(odd.status, 0, 'no valid status: no response');
  assert.equal(odd.failed, true);
  assert.equal(odd.durationMs, null);
  assert.equal(odd.responseBytes, null);
  assert.equal(odd.error, 'Failed to fetch');
  assert.equal(networkEntry(network(null)), null);
  assert.equal(networkEntry({ type: 5, timestamp: 1, data: { tag: 'error', payload: { message: 'x' } } }), null);
});

test('sizes and durations', () => {
  assert.deepEqual([null, 0, 999, 2048, 1_500_000].map(formatBytes), ['—', '0 B', '999 B', '2.0 KB', '1.5 MB']);
  assert.deepEqual([null, 0, 87.4, 999, 3400].map(formatMs), ['—', '0 ms', '87 ms', '999 ms', '3.40 s']);
});
