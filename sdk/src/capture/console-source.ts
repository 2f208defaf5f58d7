/**
 * Where console capture comes from: rrweb's console record plugin wrapped by `console.ts`, both part of the
 * replay bundle. This file serves the ESM build: the plugin stays an external dependency, imported only when a
 * session is recorded with console capture on. The IIFE builds swap this module (scripts/build.mjs):
 * `console-bundled.ts` (inside `observer.iife.js`) and `console-global.ts` (core build: no console capture, which
 * keeps the core within its size budget).
 */

import { createConsolePlugin, type RecordPlugin } from './console';

export function loadConsolePlugin(): Promise<((levels: readonly string[]) => RecordPlugin) | undefined> {
  return import('@rrweb/rrweb-plugin-console-record').then((m) => (levels: readonly string[]) => createConsolePlugin(m.getRecordConsolePlugin as never, levels));
}
