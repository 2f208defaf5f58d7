// Calls to Observer's replay fetch API (docs/api.md) and where the page
// keeps access tokens. Tokens live in sessionStorage only (this tab), are
// removed from the address bar as soon as they are read, and are sent as
// `Authorization: Bearer`, never in a request URL.

export type FailureKind =
  | 'unauthorized'
  | 'token_expired'
  | 'token_invalid'
  | 'not_found'
  | 'network'
  | 'server';

export class ApiFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }

  /** Whether a different token could help (the page then asks for one). */
  get isAccess(): boolean {
    return this.kind === 'unauthorized' || this.kind === 'token_expired' || this.kind === 'token_invalid';
  }
}

export async function getJson<T>(path: string, token: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiFailure('network', `Observer cannot be reached (${(e as Error).message}).`);
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status decides below.
  }
  if (response.ok && body !== null) return body as T;
  const code = typeof body === 'object' && body && 'error' in body ? String((body as { error: unknown }).error) : '';
  switch (response.status) {
    case 401:
      if (code === 'token_expired') throw new ApiFailure('token_expired', 'This share link has expired.', 401);
      if (code === 'token_invalid') throw new ApiFailure('token_invalid', 'This share link is not valid.', 401);
      throw new ApiFailure('unauthorized', 'The token was not accepted.', 401);
    case 404:
      throw new ApiFailure('not_found', 'Not found.', 404);
    default:
      throw new ApiFailure(
        'server',
        response.ok ? 'Observer sent an answer that is not JSON.' : `Observer answered ${response.status}.`,
        response.status,
      );
  }
}

const VIEWER_TOKEN = 'observer.viewer_token';
const sessionTokenKey = (sessionId: string) => `observer.token.${sessionId}`;

function read(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // Storage disabled: the token lives for this page view only.
  }
}

export const viewerToken = {
  get: () => read(VIEWER_TOKEN),
  set: (token: string | null) => write(VIEWER_TOKEN, token),
};

export const sessionToken = {
  get: (sessionId: string) => read(sessionTokenKey(sessionId)),
  set: (sessionId: string, token: string | null) => write(sessionTokenKey(sessionId), token),
};

/**
 * Reads `?token=` once and removes it from the address bar (and so from
 * history, bookmarks and screenshots of the URL).
 */
export function takeTokenFromUrl(): string | null {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token === null) return null;
  url.searchParams.delete('token');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  return token.trim() || null;
}

/** A pasted share link or a bare token → the token. */
export function tokenFromInput(input: string): string {
  const text = input.trim();
  if (text.includes('token=')) {
    try {
      const token = new URL(text, location.origin).searchParams.get('token');
      if (token) return token.trim();
    } catch {
      // Not a URL: use the text as it is.
    }
  }
  return text;
}
