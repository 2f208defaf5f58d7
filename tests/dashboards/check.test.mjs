// `npm test` here (scripts/test runs it): the dashboards in dashboards/ and
// the LogQL recipes in docs/ against Grafana's LogQL grammar, docs/logs.md
// and Observer's route table. PromQL is checked by the Rust test
// server/tests/integration/promql_queries.rs against the real /metrics.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { checkLokiQueries, checkStructure, loadDashboards, queriesOf, serverRoutes } from './dashboards.mjs';
import { parseLogsDoc } from './logs-doc.mjs';
import { checkLogql, substitute } from './logql.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const doc = parseLogsDoc(readFileSync(join(root, 'docs/logs.md'), 'utf8'));
const routes = serverRoutes(readFileSync(join(root, 'server/src/routes/mod.rs'), 'utf8'));
const dashboards = loadDashboards(join(root, 'dashboards'));
const EXPECTED = ['frontend-errors.json', 'observer-service.json', 'product-analytics.json', 'session-replay.json'];

const report = (problems) => assert.deepEqual(problems, [], `\n${problems.join('\n')}`);

test('the four dashboards are there', () => {
  assert.deepEqual(dashboards.map((d) => d.file), EXPECTED);
});

test('dashboard uids are unique', () => {
  const uids = dashboards.map((d) => d.json.uid);
  assert.equal(new Set(uids).size, uids.length, uids.join(', '));
});

for (const { file, json } of dashboards) {
  test(`${file}: ids, datasources, variables and links`, () => {
    report(checkStructure(json, { routes, doc }));
  });
  test(`${file}: every Loki expression parses and names only documented labels and fields`, (t) => {
    const used = new Set();
    report(checkLokiQueries(json, doc, used));
    if (used.size) t.diagnostic(`labels and fields used: ${[...used].sort().join(', ')}`);
  });
}

test('every panel query is LogQL or PromQL, and there are both', () => {
  const types = dashboards.flatMap((d) => queriesOf(d.json).map((q) => q.type));
  assert.ok(types.every((t) => t === 'loki' || t === 'prometheus'), types.join(','));
  assert.ok(types.filter((t) => t === 'loki').length >= 30);
});

test('recent errors link each session to its replay at the error time', () => {
  const errors = dashboards.find((d) => d.file === 'frontend-errors.json').json;
  const text = JSON.stringify(errors);
  assert.ok(text.includes('${observer_url:raw}/replay/${__value.raw}?t=${__data.fields.timestamp}'));
  assert.equal(doc.fields.get('error').get('timestamp'), 'integer');
});

/** Each ```logql block of the docs, split into queries at blank lines; `#` lines are comments. */
function docRecipes() {
  const out = [];
  for (const file of readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join(root, 'docs', file), 'utf8');
    for (const block of text.matchAll(/```logql\n([\s\S]*?)```/g)) {
      for (const chunk of block[1].split(/\n\s*\n/)) {
        const expr = chunk.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n').trim();
        if (expr) out.push({ file, expr });
      }
    }
  }
  return out;
}

test('the LogQL recipes in docs/ parse and name only documented labels and fields', () => {
  const recipes = docRecipes();
  assert.ok(recipes.filter((r) => r.file === 'logql.md').length >= 10, 'docs/logql.md has ten recipes');
  const problems = [];
  for (const { file, expr } of recipes) {
    const subst = [];
    const values = { service: 'observer', environment: '.*', __range: '1h' };
    const e = substitute(expr, values, subst);
    problems.push(...[...subst, ...checkLogql(e, doc)].map((p) => `docs/${file}: ${p}\n    ${expr}`));
  }
  report(problems);
});

test('the checker catches what the grammar lets through', () => {
  const bad = {
    'sum_over_time({kind="error"} [5m])': /needs "\| unwrap/,
    'count_over_time({kind="error"} | json | unwrap timestamp [5m])': /cannot take an unwrapped range/,
    'sum by (fingerprint) (sum_over_time({kind="error"} | json | unwrap message [5m]))': /a string field, not a number/,
    'max_over_time({kind="error"} | json | unwrap timestamp [5m])': /without "by \(\.\.\.\)"/,
    'topk(3, {kind="error"})': /syntax error/,
    '{kind="error", session_id="abc"}': /not a stream label/,
    '{kind="event"} | json | fingerprint="x"': /"fingerprint" is not a label/,
    'sum by (colour) (count_over_time({kind="error"} [5m]))': /"colour"/,
    '{service_name=~".*"}': /no matcher that excludes the empty value/,
    '{kind="error"} | json | line_format "{{.nope}}"': /"nope"/,
  };
  for (const [expr, want] of Object.entries(bad)) {
    const problems = checkLogql(expr, doc);
    assert.ok(problems.some((p) => want.test(p)), `${expr}\n  got: ${problems.join('; ') || 'no problem'}`);
  }
  assert.match(checkLogql('{kind="error"}', doc, { instant: true }).join(), /instant query must be a metric query/);
  const good = [
    'sum by (page) (count_over_time({kind="event"} | json | label_format page=`{{ regexReplaceAll "[?#].*" .url "" }}` [5m]))',
    'min_over_time({kind="error"} | json | unwrap timestamp | __error__="" [5m]) by (fingerprint)',
    'sum by (properties_plan) (count_over_time({kind="event"} | json [5m]))',
  ];
  for (const expr of good) report(checkLogql(expr, doc));
});

test('the structure check catches fixed datasources and stray links', () => {
  const d = {
    uid: 'x', schemaVersion: 39,
    templating: { list: [{ name: 'loki', type: 'datasource', query: 'loki' }, { name: 'observer_url', type: 'textbox', query: 'http://h' }] },
    panels: [
      { id: 1, title: 'a', description: 'd', type: 'table', datasource: { type: 'loki', uid: 'P8E80F9AEF21F6940' }, targets: [{ expr: '{kind="error"}' }] },
      { id: 1, title: 'b', description: 'd', type: 'table', targets: [{ expr: '{kind="error"}' }],
        fieldConfig: { defaults: { links: [{ url: '${observer_url}/replays/${__value.raw}' }, { url: 'https://elsewhere/' }] } } },
    ],
  };
  const problems = checkStructure(d, { routes, doc }).join('\n');
  assert.match(problems, /panel id 1 used by/);
  assert.match(problems, /fixed datasource uid/);
  assert.match(problems, /matches no route/);
  assert.match(problems, /use \$\{observer_url:raw\}/);
  assert.match(problems, /must start with \$\{observer_url:raw\}/);
});
