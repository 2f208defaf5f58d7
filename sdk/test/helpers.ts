// Fakes shared by the unit tests.
import type { Logger } from '../src/log';
import type { Body, Post, SendResult } from '../src/transport';

/** A Web Storage area backed by a Map; `quota` limits the characters it holds, `broken` makes every call throw. */
export class FakeStorage implements Storage {
  map = new Map<string, string>();
  constructor(
    public quota = Infinity,
    public broken = false,
  ) {}
  get length(): number {
    return this.map.size;
  }
  clear(): void {
    this.map.clear();
  }
  key(i: number): string | null {
    return [...this.map.keys()][i] ?? null;
  }
  getItem(key: string): string | null {
    if (this.broken) throw new Error('SecurityError');
    return this.map.has(key) ? (this.map.get(key) as string) : null;
  }
  setItem(key: string, value: string): void {
    if (this.broken) throw new Error('SecurityError');
    let used = 0;
    for (const [k, v] of this.map) if (k !== key) used += k.length + v.length;
    if (used + key.length + value.length > this.quota) throw new Error('QuotaExceededError');
    this.map.set(key, String(value));
  }
  removeItem(key: string): void {
    if (this.broken) throw new Error('SecurityError');
    this.map.delete(key);
  }
}

export interface LoggedLine {
  level: string;
  message: string;
}

export function fakeLogger(): Logger & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const seen = new Set<string>();
  return {
    lines,
    debug: (message) => lines.push({ level: 'debug', message }),
    warn: (message) => lines.push({ level: 'warn', message }),
    warnOnce(key, message) {
      if (seen.has(key)) return;
      seen.add(key);
      lines.push({ level: 'warn', message });
    },
  };
}

export interface PostCall {
  url: string;
  body: Body;
  keepalive: boolean;
}

/** A `Post` that records calls and answers from `script` (then `fallback`). */
export function fakePost(script: SendResult[] = [], fallback: SendResult = { ok: true, status: 202 }): Post & { calls: PostCall[] } {
  const calls: PostCall[] = [];
  const post = (async (url: string, body: Body, keepalive: boolean) => {
    calls.push({ url, body, keepalive });
    return script.length > 0 ? (script.shift() as SendResult) : fallback;
  }) as Post & { calls: PostCall[] };
  post.calls = calls;
  return post;
}

/** Lets pending promise callbacks run (setImmediate is not mocked by the tests' mock timers). */
export function settle(rounds = 5): Promise<void> {
  let p = Promise.resolve();
  for (let i = 0; i < rounds; i++) p = p.then(() => new Promise<void>((r) => setImmediate(r)));
  return p;
}

/** Lets the event loop turn until `condition()` holds (gzip with CompressionStream takes real time); fails after `maxRounds`. */
export async function until(condition: () => boolean, maxRounds = 2000): Promise<void> {
  for (let i = 0; i < maxRounds; i++) {
    if (condition()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}

export function bodyText(body: Body): string {
  return typeof body === 'string' ? body : new TextDecoder().decode(body);
}
