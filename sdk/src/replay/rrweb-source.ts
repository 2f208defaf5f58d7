/**
 * Where rrweb's `record` comes from. This file serves the ESM build: rrweb stays an external dependency and is
 * imported only when a session is actually recorded, so a bundler can split it off. The IIFE builds swap this
 * module (scripts/build.mjs): `rrweb-bundled.ts` (rrweb inside) and `rrweb-global.ts` (core: `window.rrweb`).
 */

import type { RecordFn } from './types';

export function loadRecord(): Promise<RecordFn | undefined> {
  return import('rrweb').then((m) => m.record as unknown as RecordFn);
}
