/** `web-vitals` from the page's own IIFE script (`window.webVitals`), for the core IIFE build. */

import type { WebVitalsApi } from './vitals';

export function loadWebVitals(): Promise<WebVitalsApi | undefined> {
  const api = (globalThis as { webVitals?: WebVitalsApi }).webVitals;
  return Promise.resolve(api && typeof api.onLCP === 'function' ? api : undefined);
}
