/**
 * The visitor's persistent opt-out: `observer.optout` = `1` in localStorage. It is the one thing the SDK reads
 * before consent (and writes without it): honouring a refusal needs remembering it. Reads go straight to the
 * storage area — `safeStore`'s write probe would be a write.
 */

import { SESSION_KEY, VISITOR_KEY } from '../session';
import { SPILL_KEY } from '../spill';
import { OFFLINE_KEY } from './offline';

export const OPT_OUT_KEY = 'observer.optout';

function area(win: Window): Storage | undefined {
  try {
    return win.localStorage || undefined;
  } catch {
    return undefined;
  }
}

/** Whether the visitor opted out (on this page — `memory` — or in an earlier one). */
export function isOptedOut(win: Window, memory: boolean | undefined): boolean {
  if (memory !== undefined) return memory;
  try {
    const a = area(win);
    return !!a && a.getItem(OPT_OUT_KEY) === '1';
  } catch {
    return false;
  }
}

/** Persists the choice (kept in memory by the caller too: blocked storage still holds for this page). */
export function setOptOut(win: Window, out: boolean): void {
  try {
    const a = area(win);
    if (a) {
      if (out) a.setItem(OPT_OUT_KEY, '1');
      else a.removeItem(OPT_OUT_KEY);
    }
  } catch {
    // blocked or full storage: the choice holds for this page only
  }
}

/**
 * Removes what the SDK keeps in the browser (ids, unsent items) but the opt-out flag: for a page where it does not
 * run, after an earlier page left them.
 */
export function forgetStored(win: Window): void {
  for (const [getArea, keys] of [
    [() => win.localStorage, [VISITOR_KEY, OFFLINE_KEY]],
    [() => win.sessionStorage, [SESSION_KEY, SPILL_KEY]],
  ] as Array<[() => Storage, string[]]>) {
    try {
      for (const key of keys) getArea().removeItem(key);
    } catch {
      // blocked storage holds nothing
    }
  }
}

/** Calls `onOptOut` when another tab of the origin opts out (the `storage` event). */
export function watchOptOut(win: Window, onOptOut: () => void): void {
  win.addEventListener('storage', (event) => {
    try {
      if (event.key === OPT_OUT_KEY && event.newValue === '1') onOptOut();
    } catch {
      // never into the host page
    }
  });
}
