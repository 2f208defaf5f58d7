/** rrweb's `record`, bundled (the full IIFE build, `observer.iife.js`). */

import { record } from 'rrweb';
import type { RecordFn } from './types';

export function loadRecord(): Promise<RecordFn | undefined> {
  return Promise.resolve(record as unknown as RecordFn);
}
