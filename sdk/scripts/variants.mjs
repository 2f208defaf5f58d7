// Which way each optional dependency reaches a build; shared by build.mjs and check-size.mjs.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Swaps the modules that load the optional dependencies for another way of getting them: `bundled` (inside the
 * file) or `global` (from the page's own script: window.rrweb, window.rrwebPluginConsoleRecord,
 * window.webVitals). The `*-source.ts` defaults (ESM build) import them dynamically.
 *   src/replay/rrweb-source.ts     rrweb's record
 *   src/capture/console-source.ts  rrweb's console record plugin
 *   src/capture/vitals-source.ts   web-vitals
 */
export const SOURCES = { rrweb: 'src/replay', console: 'src/capture', vitals: 'src/capture' };
export const sourcesFrom = (variants) => ({
  name: 'optional-sources',
  setup(b) {
    b.onResolve({ filter: /\/(rrweb|console|vitals)-source$/ }, (args) => {
      const name = /(rrweb|console|vitals)-source$/.exec(args.path)[1];
      return { path: join(root, SOURCES[name], `${name}-${variants[name]}.ts`) };
    });
  },
});
export const ALL_BUNDLED = { rrweb: 'bundled', console: 'bundled', vitals: 'bundled' };
export const ALL_GLOBAL = { rrweb: 'global', console: 'global', vitals: 'global' };
/** The packages the ESM build leaves to the app's bundler. */
export const OPTIONAL_DEPS = ['rrweb', '@rrweb/rrweb-plugin-console-record', 'web-vitals'];
