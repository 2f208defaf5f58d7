/** rrweb's `record` from a separately loaded rrweb UMD script (`window.rrweb`), for the core IIFE build. */

import type { RecordFn } from './types';

export function loadRecord(): Promise<RecordFn | undefined> {
  const rrweb = (globalThis as { rrweb?: { record?: RecordFn } }).rrweb;
  return Promise.resolve(rrweb && typeof rrweb.record === 'function' ? rrweb.record : undefined);
}
