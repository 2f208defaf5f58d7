// The sessions page (/replay/): recent sessions, newest first, from
// GET /api/observer/replays, each linking to its player page.
import './page.css';
import { ApiFailure, getJson, isShareToken, signIn, signedIn, takeTokenFromUrl, tokenFromInput } from './api';
import {
  askForToken,
  byId,
  el,
  formatDateTime,
  hideAccess,
  hideMessage,
  refreshSignOut,
  setUpSignOut,
  showMessage,
} from './page';
import { rememberSession } from './session-info';

interface SessionSummary {
  session_id: string;
  start: number;
  url?: string | null;
  user_id?: string | null;
  chunks: number;
}

interface SessionList {
  sessions: SessionSummary[];
  next_cursor: string | null;
}

const PAGE_SIZE = 50;
const SHARE_LINK_HERE = 'A share link opens one replay only, not the list of sessions. Enter a viewer token to sign in.';

function start(): void {
  setUpSignOut(() => ask('Signed out. Enter a viewer token to sign in again.'));
  const fromUrl = takeTokenFromUrl();
  if (fromUrl) {
    // The link Observer prints at first start carries the viewer token.
    if (isShareToken(fromUrl)) ask(SHARE_LINK_HERE);
    else void signInWith(fromUrl);
  } else if (signedIn.likely()) {
    void load(null);
  } else {
    ask('Sign in with a viewer token to see the recorded sessions.');
  }
}

function ask(reason: string): void {
  byId('sessions').hidden = true;
  byId('rows').replaceChildren();
  refreshSignOut();
  askForToken(reason, (entered) => {
    const token = tokenFromInput(entered);
    if (isShareToken(token)) ask(SHARE_LINK_HERE);
    else void signInWith(token);
  });
}

async function signInWith(token: string): Promise<void> {
  showMessage('Signing in…');
  try {
    await signIn(token);
  } catch (e) {
    const failure = e instanceof ApiFailure ? e : new ApiFailure('server', String(e));
    hideMessage();
    if (failure.isAccess) ask('The viewer token was not accepted. Enter a viewer token.');
    else showMessage(`Could not sign in: ${failure.message}`, 'error', [['Retry', () => void signInWith(token)]]);
    return;
  }
  refreshSignOut();
  void load(null);
}

async function load(cursor: string | null): Promise<void> {
  const more = byId<HTMLButtonElement>('more');
  more.disabled = true;
  showMessage(cursor ? 'Loading more sessions…' : 'Loading sessions…');
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (cursor) query.set('cursor', cursor);
  try {
    const page = await getJson<SessionList>(`/api/observer/replays?${query}`, null);
    hideMessage();
    hideAccess();
    render(page, cursor === null);
  } catch (e) {
    const failure = e instanceof ApiFailure ? e : new ApiFailure('server', String(e));
    if (failure.isAccess) {
      signedIn.set(null);
      hideMessage();
      ask('Your sign-in has expired or was ended. Enter a viewer token to sign in again.');
    } else {
      showMessage(`Could not load sessions: ${failure.message}`, 'error', [['Retry', () => void load(cursor)]]);
      more.disabled = false;
    }
  }
}

function render(page: SessionList, first: boolean): void {
  const rows = byId('rows');
  for (const session of page.sessions) {
    rememberSession(session.session_id, { start: session.start, url: session.url, user_id: session.user_id });
    const href = `/replay/${encodeURIComponent(session.session_id)}`;
    rows.append(
      el(
        'tr',
        {},
        el('td', { class: 'id' }, el('a', { href }, session.session_id)),
        el('td', { class: 'time' }, formatDateTime(session.start)),
        el('td', { class: 'url', title: session.url ?? '' }, session.url ?? '—'),
        el('td', {}, session.user_id ?? '—'),
        el('td', { class: 'num' }, String(session.chunks)),
      ),
    );
  }
  const empty = byId('empty');
  empty.hidden = !(first && page.sessions.length === 0);
  byId('sessions').hidden = false;
  const more = byId<HTMLButtonElement>('more');
  more.hidden = !page.next_cursor;
  more.disabled = false;
  more.onclick = page.next_cursor ? () => void load(page.next_cursor) : null;
}

start();
