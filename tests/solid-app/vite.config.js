// Builds the app into dist/ (`npm run build`). The SDK is the repository's own build (../../sdk/dist, made by
// scripts/build-assets), imported under its package names as an app would after `npm install @observer/browser`.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import solid from 'vite-plugin-solid';

const sdkDist = fileURLToPath(new URL('../../sdk/dist/', import.meta.url));

export default defineConfig({
  plugins: [solid()],
  resolve: {
    alias: [
      { find: /^@observer\/browser\/solid$/, replacement: `${sdkDist}solid.esm.js` },
      { find: /^@observer\/browser$/, replacement: `${sdkDist}observer.esm.js` },
    ],
    // The SDK's files live outside this app: solid-js and the router must still come from the app's node_modules
    // (two copies of solid-js break its reactivity and contexts).
    dedupe: ['solid-js', '@solidjs/router'],
  },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
