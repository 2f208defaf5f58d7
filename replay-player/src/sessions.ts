// The sessions page (/replay/): recent sessions, newest first, from
// GET /api/observer/replays, each linking to its player page. Filters (user
// id, URL, dates, errors, live) are applied by the server and kept in the
// address bar; the keyboard moves through the rows (j/k, arrows), opens one
// (Enter) and focuses the filters (/).
import './page.css';
import { ApiFailure, getJson, isShareToken, signIn, signedIn, takeTokenFromUrl, tokenFromInput } from './api';
import {
  askForToken,
  byId,
  el,
  formatDateTime,
  formatDuration,
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
  /** Optional (newer servers). */
  duration_ms?: number;
  pages?: number;
  errors?: number;
  browser?: string | null;
  os?: string | null;
  live?: boolean;
}

interface SessionList {
  sessions: SessionSummary[];
  next_cursor: string | null;
  /** Session entries the server examined for this page (newer servers). */
  scanned?: number;
}

/** The filter fields, by query parameter. */
const FILTERS = ['user_id', 'url', 'from', 'to', 'has_errors', 'live'] as const;

const PAGE_SIZE = 50;
const SHARE_LINK_HERE = 'A share link opens one replay only, not the list of sessions. Enter a viewer token to sign in.';

function start(): void {
  setUpFilters();
  setUpKeys();
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
  const query = filterQuery();
  query.set('limit', String(PAGE_SIZE));
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
  if (first) {
    rows.replaceChildren();
    selected = -1;
  }
  for (const session of page.sessions) {
    rememberSession(session.session_id, { start: session.start, url: session.url, user_id: session.user_id });
    const href = `/replay/${encodeURIComponent(session.session_id)}`;
    const id = el('td', { class: 'id' }, el('a', { href }, session.session_id));
    if (session.live) id.append(el('span', { class: 'live-badge', 'data-testid': 'live-marker', title: 'Still recording' }, 'Live'));
    const errors = session.errors;
    const row = el(
      'tr',
      { 'data-href': href },
      id,
      el('td', { class: 'time' }, formatDateTime(session.start)),
      el('td', { class: 'num' }, typeof session.duration_ms === 'number' ? formatDuration(session.duration_ms) : '—'),
      el('td', { class: 'num' }, count(session.pages)),
      el('td', { class: typeof errors === 'number' && errors > 0 ? 'num errors--some' : 'num' }, count(errors)),
      el('td', {}, session.browser ?? '—'),
      el('td', {}, session.os ?? '—'),
      el('td', {}, session.user_id ?? '—'),
      el('td', { class: 'url', title: session.url ?? '' }, session.url ?? '—'),
    );
    row.addEventListener('click', (event) => {
      if ((event.target as HTMLElement).closest('a')) return;
      location.href = href;
    });
    rows.append(row);
  }
  if (first && rows.children.length > 0) select(0);
  const filtered = FILTERS.some((name) => filterQuery().has(name));
  const empty = byId('empty');
  empty.textContent = filtered ? 'No session matches these filters.' : 'No sessions recorded yet.';
  empty.hidden = !(rows.children.length === 0 && !page.next_cursor);
  // The server examines a bounded number of sessions per request: say so when that is why a page is short.
  const scanned = byId('scanned');
  const short = filtered && page.next_cursor && page.sessions.length < PAGE_SIZE;
  scanned.textContent = short ? `${page.scanned ?? 'Some'} sessions examined so far; load more to keep searching.` : '';
  scanned.hidden = !short;
  byId('sessions').hidden = false;
  const more = byId<HTMLButtonElement>('more');
  more.hidden = !page.next_cursor;
  more.disabled = false;
  more.onclick = page.next_cursor ? () => void load(page.next_cursor) : null;
}

function count(value: number | undefined): string {
  return typeof value === 'number' ? String(value) : '—';
}

// ---- filters -------------------------------------------------------------------------------------------------

const input = (id: string) => byId<HTMLInputElement>(id);

/** The filters in the address bar, as the listing's query parameters. */
function filterQuery(): URLSearchParams {
  const from = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const name of FILTERS) {
    const value = from.get(name);
    if (value) query.set(name, value);
  }
  return query;
}

/** A date input's day as ms since the epoch: its first (or, for `to`, last) millisecond, local time. */
function dayBound(value: string, end: boolean): string | null {
  if (!value) return null;
  const day = new Date(`${value}T00:00:00`);
  if (Number.isNaN(day.getTime())) return null;
  if (end) day.setDate(day.getDate() + 1);
  return String(day.getTime() - (end ? 1 : 0));
}

function dayOf(ms: string | null): string {
  const date = new Date(Number(ms));
  if (!ms || Number.isNaN(date.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function setUpFilters(): void {
  const query = filterQuery();
  input('f-user').value = query.get('user_id') ?? '';
  input('f-url').value = query.get('url') ?? '';
  input('f-from').value = dayOf(query.get('from'));
  input('f-to').value = dayOf(query.get('to'));
  input('f-errors').checked = query.get('has_errors') === 'true';
  input('f-live').checked = query.get('live') === 'true';
  const apply = () => {
    const next = new URLSearchParams();
    const set = (name: string, value: string | null) => value && next.set(name, value);
    set('user_id', input('f-user').value.trim());
    set('url', input('f-url').value.trim());
    set('from', dayBound(input('f-from').value, false));
    set('to', dayBound(input('f-to').value, true));
    if (input('f-errors').checked) next.set('has_errors', 'true');
    if (input('f-live').checked) next.set('live', 'true');
    const search = next.toString();
    history.replaceState(history.state, '', search ? `${location.pathname}?${search}` : location.pathname);
    void load(null);
  };
  const form = byId<HTMLFormElement>('filters');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply();
  });
  for (const id of ['f-from', 'f-to', 'f-errors', 'f-live']) input(id).addEventListener('change', apply);
  byId('f-clear').addEventListener('click', () => {
    form.reset();
    apply();
  });
}

// ---- keyboard ------------------------------------------------------------------------------------------------

let selected = -1;

function select(index: number): void {
  const rows = byId('rows').children;
  if (rows.length === 0) return;
  rows[selected]?.classList.remove('is-selected');
  rows[selected]?.removeAttribute('aria-selected');
  selected = Math.max(0, Math.min(rows.length - 1, index));
  const row = rows[selected] as HTMLElement;
  row.classList.add('is-selected');
  row.setAttribute('aria-selected', 'true');
  row.scrollIntoView({ block: 'nearest' });
}

function setUpKeys(): void {
  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || byId('sessions').hidden) return;
    const target = event.target as HTMLElement;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
    if (typing) {
      // Escape leaves a filter field for the rows; Enter there applies the filters (the form).
      if (event.key === 'Escape') target.blur();
      return;
    }
    if (target instanceof HTMLButtonElement && event.key === 'Enter') return;
    const rows = byId('rows').children;
    switch (event.key) {
      case '/':
        event.preventDefault();
        input('f-user').focus();
        return;
      case 'j':
      case 'ArrowDown':
        event.preventDefault();
        select(selected + 1);
        return;
      case 'k':
      case 'ArrowUp':
        event.preventDefault();
        select(selected - 1);
        return;
      case 'Enter': {
        const row = rows[selected] as HTMLElement | undefined;
        if (row?.dataset.href) {
          event.preventDefault();
          location.href = row.dataset.href;
        }
        return;
      }
    }
  });
}

start();
