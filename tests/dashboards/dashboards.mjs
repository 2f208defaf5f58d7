// Reads the provisioned dashboards and checks what Grafana would not flag
// until someone opens them: panel ids and uids, datasources given by
// variable, every variable defined, links that lead to a page Observer
// serves, and every Loki expression (panels and variables) through logql.mjs.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { checkLogql, substitute } from './logql.mjs';

export const DATASOURCE_VARIABLES = { loki: 'loki', prometheus: 'prometheus' };
const BUILTIN_VARIABLES = new Set([
  '__auto', '__interval', '__interval_ms', '__range', '__range_s', '__range_ms', '__rate_interval',
  '__from', '__to', '__dashboard', '__org', '__user', '__timeFilter',
]);

export function loadDashboards(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  return files.map((file) => ({ file, json: JSON.parse(readFileSync(join(dir, file), 'utf8')) }));
}

/** Every panel, rows' nested panels included. */
export function panelsOf(dashboard) {
  const out = [];
  for (const p of dashboard.panels ?? []) {
    out.push(p);
    for (const nested of p.panels ?? []) out.push(nested);
  }
  return out;
}

/** The datasource type a datasource reference points at, through the dashboard's datasource variables. */
function datasourceType(ref) {
  if (!ref) return undefined;
  const m = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(ref.uid ?? '');
  return m ? DATASOURCE_VARIABLES[m[1]] : undefined;
}

/** Values each variable takes for the checks: a textbox's default, a query's "All" value. */
export function variableValues(dashboard) {
  const values = {};
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type === 'textbox' || v.type === 'constant') values[v.name] = v.query ?? '';
    else if (v.type === 'datasource') values[v.name] = v.name;
    else values[v.name] = v.includeAll && v.allValue ? v.allValue : 'x';
  }
  return values;
}

/**
 * Every query of a dashboard: {where, type ('loki' | 'prometheus'), expr,
 * instant}. Loki variable queries contribute their stream selector.
 */
export function queriesOf(dashboard) {
  const out = [];
  for (const p of panelsOf(dashboard)) {
    for (const t of p.targets ?? []) {
      const type = datasourceType(t.datasource ?? p.datasource);
      out.push({
        where: `panel ${p.id} "${p.title}" ${t.refId}`,
        type,
        expr: t.expr,
        instant: t.queryType === 'instant' || t.instant === true,
        panelType: p.type,
      });
    }
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const type = datasourceType(v.datasource);
    const q = v.query;
    if (type === 'loki' && typeof q === 'object' && q.stream) {
      out.push({ where: `variable ${v.name}`, type, expr: q.stream, instant: false, variable: true });
    } else if (type === 'prometheus') {
      out.push({ where: `variable ${v.name}`, type, expr: typeof q === 'object' ? q.query : q, instant: true, variable: true });
    } else if (type !== 'loki') {
      out.push({ where: `variable ${v.name}`, type, expr: String(q), instant: true, variable: true });
    }
  }
  return out;
}

/** Paths Observer serves, from the route table (server/src/routes/mod.rs), as regexes. */
export function serverRoutes(routesSource) {
  const paths = [...routesSource.matchAll(/\.route\(\s*(?:labels\.add\(\s*)?"([^"]+)"/g)].map((m) => m[1]);
  if (!paths.length) throw new Error('no .route("…") in server/src/routes/mod.rs');
  return paths.map((p) => ({ path: p, re: new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/?#]+')}$`) }));
}

/** Every `url` in link arrays: dashboard links, panel links, field and override data links. */
export function linksOf(dashboard) {
  const out = [];
  const walk = (node, where) => {
    if (Array.isArray(node)) node.forEach((n) => walk(n, where));
    else if (node && typeof node === 'object') {
      const here = node.title && typeof node.id === 'number' ? `panel ${node.id} "${node.title}"` : where;
      if (node.id === 'links' && Array.isArray(node.value)) node.value.forEach((l) => out.push({ where: here, url: l.url }));
      if (Array.isArray(node.links)) node.links.forEach((l) => l?.url !== undefined && out.push({ where: here, url: l.url }));
      for (const [k, v] of Object.entries(node)) if (k !== 'links') walk(v, here);
    }
  };
  walk(dashboard, 'dashboard');
  return out;
}

/** Every `datasource` object anywhere in the dashboard. */
function datasourceRefs(dashboard) {
  const out = [];
  const walk = (node, path) => {
    if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${path}[${i}]`));
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'datasource') out.push({ path: `${path}.${k}`, ref: v });
        walk(v, `${path}.${k}`);
      }
    }
  };
  walk(dashboard, '$');
  return out;
}

/** Structural problems of one dashboard (queries are checked separately). */
export function checkStructure(dashboard, { routes, doc }) {
  const problems = [];
  if (!dashboard.uid) problems.push('no uid');
  if (!(dashboard.schemaVersion >= 39)) problems.push(`schemaVersion ${dashboard.schemaVersion} < 39 (Grafana 11)`);

  const ids = new Map();
  for (const p of panelsOf(dashboard)) {
    if (typeof p.id !== 'number') problems.push(`panel "${p.title}" has no numeric id`);
    else if (ids.has(p.id)) problems.push(`panel id ${p.id} used by "${ids.get(p.id)}" and "${p.title}"`);
    else ids.set(p.id, p.title);
    if (p.type !== 'row' && !(p.targets ?? []).length) problems.push(`panel ${p.id} "${p.title}" has no query`);
    if (p.type !== 'row' && !p.description) problems.push(`panel ${p.id} "${p.title}" has no description`);
  }

  const variables = new Map((dashboard.templating?.list ?? []).map((v) => [v.name, v]));
  for (const [name, type] of Object.entries(DATASOURCE_VARIABLES)) {
    const v = variables.get(name);
    if (v && (v.type !== 'datasource' || v.query !== type)) problems.push(`variable ${name} must be a ${type} datasource variable`);
  }
  for (const { path, ref } of datasourceRefs(dashboard)) {
    if (typeof ref === 'string') {
      problems.push(`${path}: datasource given as a string "${ref}"; use {"type", "uid": "\${loki}"}`);
      continue;
    }
    const m = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(ref?.uid ?? '');
    if (!m) {
      problems.push(`${path}: fixed datasource uid "${ref?.uid}"; use a datasource variable`);
    } else if (!variables.has(m[1]) || variables.get(m[1]).type !== 'datasource') {
      problems.push(`${path}: datasource variable $${m[1]} is not defined`);
    } else if (ref.type !== variables.get(m[1]).query) {
      problems.push(`${path}: type "${ref.type}" but $${m[1]} is a ${variables.get(m[1]).query} datasource`);
    }
  }

  const defined = (name) => variables.has(name) || BUILTIN_VARIABLES.has(name) || name.startsWith('__');
  for (const link of linksOf(dashboard)) {
    for (const m of link.url.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::[A-Za-z]+)?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
      const name = (m[1] ?? m[2]).split('.')[0];
      if (!defined(name)) problems.push(`${link.where}: link uses undefined variable $${name}`);
    }
    for (const m of link.url.matchAll(/\$\{__data\.fields\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
      if (!doc.fieldNames.has(m[1]) && m[1] !== 'Time') problems.push(`${link.where}: link reads field "${m[1]}", which docs/logs.md does not list`);
    }
    const observer = /^\$\{observer_url(?::raw)?\}(\/[^?#]*)?(\?[^#]*)?$/.exec(link.url);
    if (!observer) {
      problems.push(`${link.where}: link "${link.url}" must start with \${observer_url:raw} and lead to an Observer page`);
      continue;
    }
    if (!/^\$\{observer_url:raw\}/.test(link.url)) {
      problems.push(`${link.where}: use \${observer_url:raw}: Grafana URI-encodes variables in data links, which would turn http:// into http%3A%2F%2F`);
    }
    const path = (observer[1] ?? '/').replace(/\$\{[^}]+\}/g, 'value');
    if (!routes.some((r) => r.re.test(path))) {
      problems.push(`${link.where}: link path ${observer[1]} matches no route Observer serves (${routes.map((r) => r.path).join(', ')})`);
    }
    if (observer[2] && !/^\?t=(\$\{[^}]+\}|\d+)$/.test(observer[2])) {
      problems.push(`${link.where}: the player takes only ?t= (epoch ms or an offset), not ${observer[2]}`);
    }
  }
  return problems;
}

/** Problems of every Loki query of a dashboard. */
export function checkLokiQueries(dashboard, doc, used = new Set()) {
  const problems = [];
  const values = variableValues(dashboard);
  for (const q of queriesOf(dashboard)) {
    if (q.type === undefined) {
      problems.push(`${q.where}: datasource is neither \${loki} nor \${prometheus}`);
      continue;
    }
    if (q.type !== 'loki') continue;
    if (!q.expr) {
      problems.push(`${q.where}: empty expression`);
      continue;
    }
    const subst = [];
    const expr = substitute(q.expr, values, subst);
    const found = [...subst, ...checkLogql(expr, doc, { instant: q.instant, used })];
    if (q.panelType === 'logs' && q.instant) found.push('a logs panel needs a range query');
    problems.push(...found.map((p) => `${q.where}: ${p}\n    ${q.expr}`));
  }
  return problems;
}
