// Reports the built bundles' sizes and fails when the SDK without rrweb exceeds its budget (15 KB gzipped).
// Besides the files in dist/, it builds in memory the script-tag bundle with rrweb but without the console plugin
// and web-vitals ("replay only"), so the cost of each part shows: core → + rrweb → + console plugin and web-vitals.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { sourcesFrom } from './variants.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUDGET_GZIP_BYTES = 15 * 1024;
const files = [
  ['observer.core.iife.js', 'core: no rrweb, no console plugin, no web-vitals'],
  ['observer.esm.js', 'ESM: rrweb, console plugin, web-vitals external'],
  ['observer.iife.js', 'full: rrweb + console plugin + web-vitals'],
  ['solid.esm.js', '@observer/browser/solid: imports the SDK, solid-js and @solidjs/router'],
];

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const line = (name, raw, gz, what) => console.log(`${name.padEnd(30)} ${kb(raw).padStart(10)} raw ${kb(gz).padStart(10)} gzip   ${what}`);
let core;
for (const [file, what] of files) {
  const raw = readFileSync(join(root, 'dist', file));
  const gz = gzipSync(raw, { level: 9 }).length;
  if (file === 'observer.core.iife.js') core = gz;
  line(file, raw.length, gz, what);
}
const replayOnly = await build({
  entryPoints: [join(root, 'src/index.ts')],
  bundle: true,
  minify: true,
  write: false,
  format: 'iife',
  globalName: 'Observer',
  target: 'es2020',
  platform: 'browser',
  legalComments: 'none',
  define: { __OBSERVER_VERSION__: '"size"' },
  logLevel: 'warning',
  plugins: [sourcesFrom({ rrweb: 'bundled', console: 'global', vitals: 'global' })],
});
const bytes = replayOnly.outputFiles[0].contents;
line('(in memory) replay only', bytes.length, gzipSync(bytes, { level: 9 }).length, 'core + rrweb, no console plugin, no web-vitals');
if (core > BUDGET_GZIP_BYTES) {
  console.error(`size budget exceeded: observer.core.iife.js is ${core} bytes gzipped, budget ${BUDGET_GZIP_BYTES}`);
  process.exit(1);
}
// The Solid entry must use the app's copy of the SDK, never carry its own (two SDKs would record twice).
const solid = readFileSync(join(root, 'dist/solid.esm.js'), 'utf8');
if (!/from\s*["']@observer\/browser["']/.test(solid) || solid.includes('__observerSdk')) {
  console.error('dist/solid.esm.js must import the SDK from "@observer/browser", not bundle a copy of it');
  process.exit(1);
}
console.log(`size budget ok: SDK without rrweb ${core} bytes gzipped <= ${BUDGET_GZIP_BYTES}`);
