/** `sessionStorage` / `localStorage` that never throw: a memory map stands in when the browser refuses (Safari private mode, blocked cookies, quota). */

export interface KeyValueStore {
  get(key: string): string | null;
  /** Returns false when the value could only be kept in memory (it will not survive this page). */
  set(key: string, value: string): boolean;
  remove(key: string): void;
  /** Whether values survive this page (false: memory only). */
  readonly persistent: boolean;
}

const PROBE_KEY = '__observer_probe__';

/** Memory-only store, for when Web Storage is unusable. */
export function memoryStore(): KeyValueStore {
  const map = new Map<string, string>();
  return {
    persistent: false,
    get: (key) => (map.has(key) ? (map.get(key) as string) : null),
    set: (key, value) => {
      map.set(key, value);
      return false;
    },
    remove: (key) => {
      map.delete(key);
    },
  };
}

/**
 * Wraps a Web Storage area. `getArea` may throw (accessing `window.localStorage` does when storage is blocked)
 * or return an area whose writes throw (Safari private mode used to have a quota of 0): then the store is memory only.
 * When a single write fails later (quota exceeded), the stale stored value is removed — so a later page never
 * reads an outdated value — and the new value is kept in memory for this page.
 */
export function safeStore(getArea: () => Storage | null | undefined): KeyValueStore {
  let area: Storage | null | undefined;
  try {
    area = getArea();
    if (area) {
      area.setItem(PROBE_KEY, '1');
      area.removeItem(PROBE_KEY);
    }
  } catch {
    area = null;
  }
  if (!area) return memoryStore();
  const storage = area;
  const overlay = new Map<string, string>();
  return {
    persistent: true,
    get(key) {
      if (overlay.has(key)) return overlay.get(key) as string;
      try {
        return storage.getItem(key);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        storage.setItem(key, value);
        overlay.delete(key);
        return true;
      } catch {
        try {
          storage.removeItem(key);
        } catch {
          // nothing more to do
        }
        overlay.set(key, value);
        return false;
      }
    },
    remove(key) {
      overlay.delete(key);
      try {
        storage.removeItem(key);
      } catch {
        // ignore
      }
    },
  };
}
