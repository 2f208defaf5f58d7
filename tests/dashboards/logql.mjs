// LogQL checks: Grafana's own grammar (@grafana/lezer-logql, the parser its
// Loki query editor marks errors with) for syntax, then what the grammar
// accepts but Loki refuses or answers wrongly, then every label and field a
// query names against docs/logs.md.

import { parser } from '@grafana/lezer-logql';

import { KINDS, nameChecker } from './logs-doc.mjs';

/** Range aggregations that need `| unwrap`, and those that must not have it. */
const NEEDS_UNWRAP = new Set([
  'SumOverTime', 'AvgOverTime', 'MaxOverTime', 'MinOverTime', 'StdvarOverTime', 'StddevOverTime',
  'QuantileOverTime', 'FirstOverTime', 'LastOverTime', 'RateCounter',
]);
const NO_UNWRAP = new Set(['CountOverTime', 'Rate', 'BytesOverTime', 'BytesRate', 'AbsentOverTime']);
const NUMERIC_TYPES = new Set(['integer', 'number', 'float']);
const BUILTIN_LABELS = new Set(['__error__', '__error_details__', '__line__', '__timestamp__']);

function children(node) {
  const out = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

function descendants(node, name) {
  const out = [];
  const walk = (n) => {
    for (const c of children(n)) {
      if (c.name === name) out.push(c);
      walk(c);
    }
  };
  walk(node);
  return out;
}

function unquote(text) {
  if (text.startsWith('`')) return text.slice(1, -1);
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(1, -1);
  }
}

/** `.name` references of a Go template, outside its quoted strings. */
export function templateRefs(template) {
  const refs = [];
  for (const action of template.matchAll(/\{\{(.*?)\}\}/gs)) {
    const code = action[1].replace(/"(?:[^"\\]|\\.)*"|`[^`]*`/g, '""');
    for (const m of code.matchAll(/(?:^|[\s(])\.([A-Za-z_][A-Za-z0-9_]*)/g)) refs.push(m[1]);
  }
  return refs;
}

/** Does a matcher, after substitution, select something non-empty (Loki refuses selectors that match everything)? */
function matcherIsSelective(op, value) {
  if (op === 'Eq') return value !== '';
  if (op === 'Re') {
    try {
      return !new RegExp(`^(?:${value})$`).test('');
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * Parses one Loki expression (Grafana macros and variables already
 * substituted) and returns its problems as strings; `instant` says the
 * panel runs it as an instant query; every label and field it names is
 * added to `used`.
 */
export function checkLogql(expr, doc, { instant = false, used = new Set() } = {}) {
  const problems = [];
  const text = (n) => expr.slice(n.from, n.to);
  const tree = parser.parse(expr);
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) {
        problems.push(`syntax error at ${n.from}: …${expr.slice(Math.max(0, n.from - 30), n.from)}⟨here⟩${expr.slice(n.from, n.from + 30)}…`);
      }
    },
  });
  if (problems.length) return problems;
  const top = tree.topNode;

  if (instant && !descendants(top, 'MetricExpr').length) {
    problems.push('an instant query must be a metric query (Loki refuses log queries as instant queries)');
  }

  for (const selector of descendants(top, 'Selector')) {
    const matchers = descendants(selector, 'Matcher').map((m) => {
      const [id, op, value] = children(m);
      return { label: text(id), op: op.name, value: unquote(text(value)) };
    });
    if (!matchers.some((m) => matcherIsSelective(m.op, m.value))) {
      problems.push(`stream selector ${text(selector)} has no matcher that excludes the empty value; Loki refuses it`);
    }
    for (const m of matchers) {
      used.add(m.label);
      if (!doc.streamLabels.has(m.label)) {
        problems.push(`stream selector uses "${m.label}", which is not a stream label in docs/logs.md (ids belong after the selector)`);
      }
    }
  }

  // The record kinds a query reads decide which fields exist.
  const kinds = new Set();
  for (const selector of descendants(top, 'Selector')) {
    const kindMatchers = descendants(selector, 'Matcher').filter((m) => text(children(m)[0]) === 'kind');
    let selected = KINDS;
    for (const m of kindMatchers) {
      const [, op, v] = children(m);
      const value = unquote(text(v));
      const re = new RegExp(`^(?:${value})$`);
      const hit = (k) => (op.name === 'Eq' ? k === value : op.name === 'Neq' ? k !== value : op.name === 'Re' ? re.test(k) : !re.test(k));
      selected = selected.filter(hit);
    }
    selected.forEach((k) => kinds.add(k));
  }
  const known = nameChecker(doc, [...kinds]);
  const created = new Set();
  const use = (name, where) => {
    used.add(name);
    if (BUILTIN_LABELS.has(name) || created.has(name)) return;
    if (!known(name).ok) {
      problems.push(`${where} "${name}" is not a label, structured metadata or field of kind ${[...kinds].join('|')} records in docs/logs.md`);
    }
  };

  // Labels the query makes itself (label_format targets, json expressions)
  // count as known wherever they are used: `by (page)` is written before the
  // `label_format page=…` it groups by.
  tree.iterate({
    enter: (n) => {
      if (n.name === 'LabelExtractionExpression' || n.name === 'LabelFormatMatcher') {
        created.add(text(n.node.firstChild));
        return false;
      }
      return undefined;
    },
  });
  tree.iterate({
    enter: (n) => {
      switch (n.name) {
        case 'LabelFormatMatcher': {
          const [, , source] = children(n.node);
          if (source.name === 'Identifier') use(text(source), 'label_format renames');
          else templateRefs(unquote(text(source))).forEach((r) => use(r, 'label_format template uses'));
          return false;
        }
        case 'LineFormatExpr':
          templateRefs(unquote(text(n.node.lastChild))).forEach((r) => use(r, 'line_format template uses'));
          return false;
        case 'LabelFilter':
          descendants(n.node, 'Identifier').forEach((id) => use(text(id), 'label filter on'));
          return false;
        case 'Grouping':
        case 'OnOrIgnoringModifier':
          for (const id of [...descendants(n.node, 'Identifier'), ...descendants(n.node, 'LabelName')]) use(text(id), 'grouping by');
          return false;
        default:
          return undefined;
      }
    },
  });

  for (const agg of descendants(top, 'RangeAggregationExpr')) {
    const op = children(children(agg)[0])[0]?.name;
    const unwraps = descendants(agg, 'Unwrap');
    const unwrapExprs = descendants(agg, 'UnwrapExpr');
    if (NEEDS_UNWRAP.has(op) && !unwraps.length) problems.push(`${op} needs "| unwrap <field>" (Loki refuses it otherwise)`);
    if (NO_UNWRAP.has(op) && unwraps.length) problems.push(`${op} cannot take an unwrapped range`);
    for (const u of unwrapExprs) {
      const id = children(u).find((c) => c.name === 'Identifier');
      if (!id) continue;
      const name = text(id);
      use(name, 'unwrap of');
      const info = known(name);
      const hasConversion = children(u).some((c) => c.name === 'ConvOp');
      if (info.ok && !hasConversion && !NUMERIC_TYPES.has(info.type) && info.type !== 'unknown') {
        problems.push(`unwrap of "${name}", a ${info.type} field, not a number: every sample would be a conversion error`);
      }
    }
    const parsed = descendants(agg, 'LabelParser').length + descendants(agg, 'JsonExpressionParser').length > 0;
    const grouped = children(agg).some((c) => c.name === 'Grouping');
    if (unwraps.length && parsed && !grouped) {
      problems.push(`${op} over "| json" without "by (...)": every parsed label set becomes a series (use ${op}(...) by (label))`);
    }
  }
  return problems;
}

const DURATIONS = {
  __auto: '1m', __interval: '1m', __interval_ms: '60000', __range: '6h', __range_s: '21600', __range_ms: '21600000',
  __rate_interval: '4m',
};

/**
 * Replaces Grafana's macros and the dashboard's variables by plausible
 * values, as Grafana does before the query reaches Loki. A variable the
 * dashboard does not define is a problem.
 */
export function substitute(expr, values, problems = []) {
  const replace = (name) => {
    if (name in DURATIONS) return DURATIONS[name];
    if (name in values) return values[name];
    problems.push(`undefined variable $${name}`);
    return 'x';
  };
  return expr
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z]+)?\}/g, (_, n) => replace(n))
    .replace(/\[\[([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z]+)?\]\]/g, (_, n) => replace(n))
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, n) => replace(n));
}
