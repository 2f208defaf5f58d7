// What docs/logs.md says Observer writes: the stream labels, the
// structured metadata and the JSON fields of each record kind, with their
// types. The LogQL checks accept a label or field only if it is listed here,
// so the doc stays the one contract between Observer and the dashboards.

export const KINDS = ['error', 'event', 'replay', 'server'];
const CLIENT_KINDS = ['error', 'event', 'replay'];

/** Backticked names of a table row's first cell: `a`, `b` → [a, b]. */
function namesOf(cell) {
  return [...cell.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)].map((m) => m[1]);
}

function tableRows(lines) {
  return lines
    .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l))
    .slice(1) // the header
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
}

/**
 * @returns {{streamLabels: Set<string>, metadata: Map<string, Set<string>>,
 *   fields: Map<string, Map<string, string>>}} fields: kind → (name → type)
 */
export function parseLogsDoc(text) {
  const sections = new Map();
  let current = null;
  for (const line of text.split('\n')) {
    const h = /^## (.*)$/.exec(line);
    if (h) {
      current = h[1].trim();
      sections.set(current, []);
    } else if (current) {
      sections.get(current).push(line);
    }
  }
  const section = (pred) => {
    const key = [...sections.keys()].find(pred);
    if (!key) throw new Error(`docs/logs.md: no section matching ${pred}`);
    return sections.get(key);
  };

  const streamLabels = new Set(tableRows(section((k) => k.startsWith('Stream labels'))).flatMap((r) => namesOf(r[0])));
  const metadata = new Map();
  for (const row of tableRows(section((k) => k.startsWith('Structured metadata')))) {
    const kinds = new Set(row[1].split(',').map((k) => k.trim()).filter((k) => KINDS.includes(k)));
    for (const name of namesOf(row[0])) metadata.set(name, kinds);
  }
  const fields = new Map(KINDS.map((k) => [k, new Map()]));
  const addRows = (kinds, rows) => {
    for (const row of rows) {
      for (const name of namesOf(row[0])) {
        for (const kind of kinds) fields.get(kind).set(name, row[1].replace(/`/g, '').trim());
      }
    }
  };
  addRows(CLIENT_KINDS, tableRows(section((k) => k.startsWith('Fields common to client records'))));
  for (const kind of CLIENT_KINDS) {
    addRows([kind], tableRows(section((k) => k.startsWith(`\`kind="${kind}"\``))));
  }
  if (streamLabels.size === 0 || metadata.size === 0 || fields.get('error').size === 0) {
    throw new Error('docs/logs.md: could not read its label, metadata and field tables');
  }
  const fieldNames = new Set([...fields.values()].flatMap((f) => [...f.keys()]));
  return { streamLabels, metadata, fields, fieldNames };
}

/**
 * Names a query over records of `kinds` may use after the stream selector:
 * stream labels, structured metadata of those kinds, their JSON fields
 * (nested object keys flattened by `| json` as `parent_key`), and the
 * `_extracted` names `| json` gives a field that shares a stream label's name.
 * @returns {(name: string) => {ok: boolean, type?: string}}
 */
export function nameChecker(doc, kinds) {
  return (name) => {
    if (doc.streamLabels.has(name)) return { ok: true, type: 'string' };
    for (const kind of kinds) {
      if (doc.metadata.get(name)?.has(kind)) return { ok: true, type: 'string' };
      const fields = doc.fields.get(kind);
      if (fields.has(name)) return { ok: true, type: fields.get(name) };
      const extracted = /^(.*)_extracted$/.exec(name);
      if (extracted && doc.streamLabels.has(extracted[1]) && fields.has(extracted[1])) {
        return { ok: true, type: fields.get(extracted[1]) };
      }
      for (const [field, type] of fields) {
        if (type === 'object' && name.startsWith(`${field}_`)) return { ok: true, type: 'unknown' };
      }
    }
    return { ok: false };
  };
}
