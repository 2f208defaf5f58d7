// Calls to Observer's replay fetch API (docs/replay-api.md) and how the page
// gets access:
// - a viewer token is exchanged once for a sign-in cookie
//   (POST /api/observer/viewer/session, token in `Authorization: Bearer`).
//   The cookie is HttpOnly (no script can read it) and shared by every tab
//   of the browser until it expires or the viewer signs out; the token
//   itself is never stored.
// - a share token (`v1.…`, one session) is kept in sessionStorage for its
//   session (this tab) and sent as `Authorization: Bearer`.
// Tokens are removed from the address bar as soon as they are read and
// never put in a request URL.

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

  /** Whether different access could help (the page then asks for it). */
  get isAccess(): boolean {
    return this.kind === 'unauthorized' || this.kind === 'token_expired' || this.kind === 'token_invalid';
  }
}

const SIGN_IN = '/api/observer/viewer/session';

/** GET as JSON, with `token` as a bearer, or else with the sign-in cookie. */
export async function getJson<T>(path: string, token: string | null): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return answer<T>(await send(path, { headers }));
}

/** A conditional GET's answer: `body` is null when the server answered 304 (nothing changed since `etag`). */
export interface Revalidated<T> {
  body: T | null;
  etag: string | null;
}

/** GET as JSON with `If-None-Match: etag` (when given); a 304 gives no body. */
export async function getJsonIfChanged<T>(path: string, token: string | null, etag: string | null): Promise<Revalidated<T>> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (etag) headers['If-None-Match'] = etag;
  // The answers are `no-store`: the browser keeps nothing, so the tag is sent by hand.
  const response = await send(path, { headers, cache: 'no-store' });
  if (response.status === 304) return { body: null, etag };
  const body = await answer<T>(response);
  return { body, etag: response.headers.get('ETag') };
}

/**
 * Exchanges a viewer token for the sign-in cookie. Resolves when signed in;
 * an `unauthorized` failure means the token was not accepted.
 */
export async function signIn(token: string): Promise<void> {
  const response = await send(SIGN_IN, { method: 'POST', headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
  const body = await answer<{ expires_at?: string }>(response);
  const until = Date.parse(body.expires_at ?? '');
  signedIn.set(Number.isFinite(until) ? until : Date.now() + 3600_000);
}

/** Ends the sign-in in this browser (every tab). */
export async function signOut(): Promise<void> {
  signedIn.set(null);
  await send(SIGN_IN, { method: 'DELETE' });
}

async function send(path: string, init: RequestInit): Promise<Response> {
  try {
    // same-origin: the sign-in cookie goes along; the server prefers an
    // Authorization header when there is one.
    return await fetch(path, { ...init, credentials: 'same-origin', referrerPolicy: 'no-referrer' });
  } catch (e) {
    throw new ApiFailure('network', `Observer cannot be reached (${(e as Error).message}).`);
  }
}

async function answer<T>(response: Response): Promise<T> {
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
    case 429:
      throw new ApiFailure('server', 'Too many failed attempts from this network; wait a minute and retry.', 429);
    default:
      throw new ApiFailure(
        'server',
        response.ok ? 'Observer sent an answer that is not JSON.' : `Observer answered ${response.status}.`,
        response.status,
      );
  }
}

/** Whether `token` is a share token (`v1.<expiry>.<mac>`) rather than a viewer token. */
export function isShareToken(token: string): boolean {
  return token.startsWith('v1.');
}

function read(storage: () => Storage, key: string): string | null {
  try {
    return storage().getItem(key);
  } catch {
    return null;
  }
}

function write(storage: () => Storage, key: string, value: string | null): void {
  try {
    if (value === null) storage().removeItem(key);
    else storage().setItem(key, value);
  } catch {
    // Storage disabled: the value lives for this page view only.
  }
}

const tab = () => sessionStorage;
const browser = () => localStorage;

// Pages of an earlier version kept the viewer token itself in this tab.
write(tab, 'observer.viewer_token', null);

/**
 * When the sign-in cookie expires, as the server said (ms). Not a secret
 * and not a credential: it only spares a request that would be refused
 * when this browser has not signed in. The cookie decides.
 */
const SIGNED_IN_UNTIL = 'observer.signed_in_until';

export const signedIn = {
  likely: () => Number(read(browser, SIGNED_IN_UNTIL)) > Date.now(),
  set: (until: number | null) => write(browser, SIGNED_IN_UNTIL, until === null ? null : String(until)),
};

const sessionTokenKey = (sessionId: string) => `observer.token.${sessionId}`;

export const sessionToken = {
  get: (sessionId: string) => read(tab, sessionTokenKey(sessionId)),
  set: (sessionId: string, token: string | null) => write(tab, sessionTokenKey(sessionId), token),
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
