// What the sessions page knows about a session (start, first URL, user id),
// handed to the player page in this tab: a fallback for a manifest that does
// not carry them (its `start`, `url`, `user_id` are optional).

export interface SessionInfo {
  start?: number;
  url?: string | null;
  user_id?: string | null;
}

const KEY = 'observer.sessions';
const MAX_ENTRIES = 200;

function readAll(): Record<string, SessionInfo> {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(KEY) ?? '{}');
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, SessionInfo>) : {};
  } catch {
    return {};
  }
}

export function rememberSession(sessionId: string, info: SessionInfo): void {
  const all = readAll();
  delete all[sessionId];
  all[sessionId] = info;
  const ids = Object.keys(all);
  for (const id of ids.slice(0, Math.max(0, ids.length - MAX_ENTRIES))) delete all[id];
  try {
    sessionStorage.setItem(KEY, JSON.stringify(all));
  } catch {
    // Storage full or disabled: the player shows what the recording says.
  }
}

export function recallSession(sessionId: string): SessionInfo {
  return readAll()[sessionId] ?? {};
}
