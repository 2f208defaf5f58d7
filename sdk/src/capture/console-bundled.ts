/** Console capture, bundled (the full IIFE build, `observer.iife.js`): rrweb's console record plugin wrapped by `console.ts`. */

import { getRecordConsolePlugin } from '@rrweb/rrweb-plugin-console-record';
import { createConsolePlugin, type RecordPlugin } from './console';

export function loadConsolePlugin(): Promise<((levels: readonly string[]) => RecordPlugin) | undefined> {
  return Promise.resolve((levels: readonly string[]) => createConsolePlugin(getRecordConsolePlugin as never, levels));
}
