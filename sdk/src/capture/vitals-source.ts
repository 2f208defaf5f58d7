/**
 * Where Google's `web-vitals` comes from. This file serves the ESM build: `web-vitals` stays an external
 * dependency, imported after `init` (a bundler can split it off). The IIFE builds swap this module
 * (scripts/build.mjs): `vitals-bundled.ts` (inside `observer.iife.js`) and `vitals-global.ts` (core: the page's
 * own `web-vitals` IIFE script, `window.webVitals`), which keeps the core build within its size budget.
 */

import type { WebVitalsApi } from './vitals';

export function loadWebVitals(): Promise<WebVitalsApi | undefined> {
  return import('web-vitals') as Promise<WebVitalsApi>;
}
