// Builds the SDK with esbuild.
//   node scripts/build.mjs          dist/observer.esm.js, dist/observer.iife.js, dist/observer.core.iife.js
//   node scripts/build.mjs --tests  test/*.test.ts -> .test-build/*.test.mjs (for `node --test`)
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const define = { __OBSERVER_VERSION__: JSON.stringify(pkg.version) };

/**
 * Swaps the modules that load the optional dependencies for another way of getting them: `bundled` (inside the
 * file) or `global` (from the page's own script: window.rrweb, window.rrwebPluginConsoleRecord,
 * window.webVitals). The `*-source.ts` defaults (ESM build) import them dynamically.
 *   src/replay/rrweb-source.ts     rrweb's record
 *   src/capture/console-source.ts  rrweb's console record plugin
 *   src/capture/vitals-source.ts   web-vitals
 */
const SOURCES = { rrweb: 'src/replay', console: 'src/capture', vitals: 'src/capture' };
const sourcesFrom = (variants) => ({
  name: 'optional-sources',
  setup(b) {
    b.onResolve({ filter: /\/(rrweb|console|vitals)-source$/ }, (args) => {
      const name = /(rrweb|console|vitals)-source$/.exec(args.path)[1];
      return { path: join(root, SOURCES[name], `${name}-${variants[name]}.ts`) };
    });
  },
});
const ALL_BUNDLED = { rrweb: 'bundled', console: 'bundled', vitals: 'bundled' };
const ALL_GLOBAL = { rrweb: 'global', console: 'global', vitals: 'global' };
/** The packages the ESM build leaves to the app's bundler. */
const OPTIONAL_DEPS = ['rrweb', '@rrweb/rrweb-plugin-console-record', 'web-vitals'];

const common = {
  entryPoints: [join(root, 'src/index.ts')],
  bundle: true,
  minify: true,
  // Maps are written beside the bundles but not linked: /observer.js is
  // served without its map, and a dangling link shows as a 404 in devtools.
  sourcemap: 'external',
  target: 'es2020',
  platform: 'browser',
  legalComments: 'none',
  define,
  logLevel: 'warning',
};

if (process.argv.includes('--tests')) {
  const outdir = join(root, '.test-build');
  rmSync(outdir, { recursive: true, force: true });
  const tests = readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.ts'));
  await build({
    entryPoints: tests.map((f) => join(root, 'test', f)),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir,
    outExtension: { '.js': '.mjs' },
    external: ['node:*', ...OPTIONAL_DEPS],
    define,
    logLevel: 'warning',
  });
} else {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  await Promise.all([
    // npm consumers: ESM; rrweb and its console plugin loaded only when a session is recorded, web-vitals after init.
    build({ ...common, format: 'esm', external: OPTIONAL_DEPS, outfile: join(root, 'dist/observer.esm.js') }),
    // <script src="/observer.js">: one file, rrweb, the console plugin and web-vitals inside, global `Observer`.
    build({ ...common, format: 'iife', globalName: 'Observer', outfile: join(root, 'dist/observer.iife.js'), plugins: [sourcesFrom(ALL_BUNDLED)] }),
    // The SDK alone (uses window.rrweb, window.rrwebPluginConsoleRecord and window.webVitals when the page loads
    // them itself): the size budget is measured on this one.
    build({ ...common, format: 'iife', globalName: 'Observer', outfile: join(root, 'dist/observer.core.iife.js'), plugins: [sourcesFrom(ALL_GLOBAL)] }),
  ]);
}
