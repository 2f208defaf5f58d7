// Builds the replay pages into dist/ for the server to embed (server/build.rs):
//   sessions.html, player.html        page templates with the asset names filled in
//   sessions-HASH.js/.css,            bundles, minified; HASH is a content hash, so
//   player-HASH.js/.css               the server can let browsers cache them forever
//   *.gz                              gzip -9 of each file, served when accepted
// The HTML holds no inline script or style (the pages' CSP forbids inline scripts).
import { readFile, rm, mkdir, writeFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import * as esbuild from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
const out = join(here, 'dist');
const pages = ['sessions', 'player'];

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

const result = await esbuild.build({
  entryPoints: Object.fromEntries(pages.map((page) => [page, join(here, 'src', `${page}.ts`)])),
  outdir: out,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  charset: 'utf8',
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

// Entry name → emitted file names (the JS and, when it imports CSS, its CSS bundle).
const names = {};
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (!output.entryPoint) continue;
  const page = basename(output.entryPoint, '.ts');
  names[`${page}.js`] = basename(file);
  if (output.cssBundle) names[`${page}.css`] = basename(output.cssBundle);
}

for (const page of pages) {
  const template = await readFile(join(here, 'src', `${page}.html`), 'utf8');
  const html = template.replace(/\{\{([a-z]+\.(?:js|css))\}\}/g, (_, name) => {
    if (!names[name]) throw new Error(`${page}.html refers to ${name}, which the build did not produce`);
    return `/replay/assets/${names[name]}`;
  });
  if (/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i.test(html)) {
    throw new Error(`${page}.html has an inline script, style or handler; the CSP forbids them`);
  }
  await writeFile(join(out, `${page}.html`), html);
}

const rows = [];
for (const file of (await readdir(out)).sort()) {
  const bytes = await readFile(join(out, file));
  const gzip = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION });
  await writeFile(join(out, `${file}.gz`), gzip);
  rows.push(`  ${file.padEnd(28)} ${String(bytes.length).padStart(8)} B  ${String(gzip.length).padStart(7)} B gzip`);
}
console.log(`replay-player: built dist/\n${rows.join('\n')}`);
