/**
 * The core IIFE build records no console: the plugin and the wrapper that bounds what it records come with the
 * replay bundle (`observer.iife.js`, or the ESM build). rrweb's plugin alone would record DOM nodes as their
 * unmasked `outerHTML` and strings of any length, so it is not picked up from the page either.
 */

import type { RecordPlugin } from './console';

export function loadConsolePlugin(): Promise<((levels: readonly string[]) => RecordPlugin) | undefined> {
  return Promise.resolve(undefined);
}
