/** `web-vitals`, bundled (the full IIFE build, `observer.iife.js`). */

import { onCLS, onFCP, onINP, onLCP, onTTFB } from 'web-vitals';
import type { WebVitalsApi } from './vitals';

export function loadWebVitals(): Promise<WebVitalsApi | undefined> {
  return Promise.resolve({ onCLS, onFCP, onINP, onLCP, onTTFB } as WebVitalsApi);
}
