// Reports the built bundles' sizes and fails when the SDK without rrweb exceeds its budget (15 KB gzipped).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUDGET_GZIP_BYTES = 15 * 1024;
const files = ['observer.core.iife.js', 'observer.esm.js', 'observer.iife.js', 'solid.esm.js'];

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
let core;
for (const file of files) {
  const raw = readFileSync(join(root, 'dist', file));
  const gz = gzipSync(raw, { level: 9 }).length;
  if (file === 'observer.core.iife.js') core = gz;
  console.log(`${file.padEnd(24)} ${kb(raw.length).padStart(10)} raw ${kb(gz).padStart(10)} gzip`);
}
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
