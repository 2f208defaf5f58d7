// Builds the SDK with esbuild.
//   node scripts/build.mjs          dist/observer.esm.js, dist/observer.iife.js, dist/observer.core.iife.js,
//                                   dist/solid.esm.js (@observer/browser/solid)
//   node scripts/build.mjs --tests  test/*.test.ts -> .test-build/*.test.mjs (for `node --test`)
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALL_BUNDLED, ALL_GLOBAL, OPTIONAL_DEPS, sourcesFrom } from './variants.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const define = { __OBSERVER_VERSION__: JSON.stringify(pkg.version) };


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

/**
 * The Solid entry imports the SDK as `../index`; published, that is the package's own main entry, so an app that
 * imports both `@observer/browser` and `@observer/browser/solid` runs one SDK (one session, one recorder).
 */
const coreAsPackage = {
  name: 'core-as-package',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index$/ }, () => ({ path: pkg.name, external: true }));
  },
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
    // @observer/browser/solid: ESM for the app's bundler, which supplies solid-js and @solidjs/router (peers).
    build({
      ...common,
      entryPoints: [join(root, 'src/solid/index.ts')],
      format: 'esm',
      external: ['solid-js', 'solid-js/*', '@solidjs/router'],
      plugins: [coreAsPackage],
      outfile: join(root, 'dist/solid.esm.js'),
    }),
  ]);
}
