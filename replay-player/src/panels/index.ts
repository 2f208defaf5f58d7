// The side panel beside the replay: tabs Errors · Console · Network with
// counts, a filter per tab, click (or Enter) to jump, and the entry at the
// playback time highlighted as the replay plays. Rows are built by
// ./list.ts; what a row says comes from ./entries.ts. The markup (tabs,
// filter buttons, lists) is in player.html; everything from a recording is
// put in as text.
import './panels.css';
import type { ErrorMark, RrwebEvent } from '../loader';
import { byId, el, formatDuration } from '../page';
import {
  CONSOLE_LEVELS,
  type ConsoleEntry,
  type ConsoleFilterLevel,
  type NetworkEntry,
  consoleEntry,
  formatBytes,
  formatMs,
  networkEntry,
} from './entries';
import { EntryList } from './list';

/** Most rows per list: a session with more is unusual, and the DOM stays bounded. */
const MAX_ROWS = 20_000;
/** Jumping to an error starts this much before it, to see what led to it. */
const ERROR_LEAD_MS = 2000;

const TABS = ['errors', 'console', 'network'] as const;
type Tab = (typeof TABS)[number];
const NETWORK_FILTERS = ['all', 'failed', 'fetch', 'xhr'] as const;
type NetworkFilter = (typeof NETWORK_FILTERS)[number];

export class Panels {
  private readonly errors: EntryList<ErrorMark>;
  private readonly console: EntryList<ConsoleEntry>;
  private readonly network: EntryList<NetworkEntry>;
  private readonly hiddenLevels = new Set<ConsoleFilterLevel>();
  private networkFilter: NetworkFilter = 'all';
  private readonly levelCounts = new Map<ConsoleFilterLevel, number>(CONSOLE_LEVELS.map((l) => [l, 0]));
  private failedCount = 0;
  private readonly initiatorCounts = { fetch: 0, xhr: 0 };
  private tab: Tab = 'errors';

  constructor(
    /** The session's first timestamp: offsets are shown from it, as on the clock. */
    private readonly start: number,
    seek: (timestamp: number) => void,
  ) {
    this.errors = new EntryList<ErrorMark>({
      ...parts('errors'),
      emptyText: { none: 'No errors in this recording.', filtered: '' },
      render: (mark) => el('li', { class: 'lvl-error' }, this.time(mark.timestamp), el('span', { class: 'entry__text' }, mark.message)),
      visible: () => true,
      jump: (mark) => seek(Math.max(this.start, mark.timestamp - ERROR_LEAD_MS)),
      max: MAX_ROWS,
    });
    this.console = new EntryList<ConsoleEntry>({
      ...parts('console'),
      emptyText: { none: 'No console messages in this recording.', filtered: 'No console messages at the chosen levels.' },
      render: (entry) => this.consoleRow(entry),
      visible: (entry) => !this.hiddenLevels.has(entry.group),
      jump: (entry) => seek(entry.timestamp),
      expand: (row, entry, open) => toggleDetails(row, open, () => el('pre', { class: 'entry__details' }, entry.trace.join('\n'))),
      max: MAX_ROWS,
    });
    this.network = new EntryList<NetworkEntry>({
      ...parts('network'),
      emptyText: { none: 'No requests in this recording.', filtered: 'No requests match the filter.' },
      render: (entry) => this.networkRow(entry),
      visible: (entry) => this.showsRequest(entry),
      jump: (entry) => seek(entry.timestamp),
      expand: (row, entry, open) => toggleDetails(row, open, () => networkDetails(entry)),
      max: MAX_ROWS,
    });
    this.errors.onChange = () => this.setCount('errors', this.errors.size, 0);
    this.console.onChange = () => this.showConsoleCounts();
    this.network.onChange = () => this.showNetworkCounts();
    this.setUpTabs();
    this.setUpFilters();
    this.select('errors', false);
  }

  addError(mark: ErrorMark): void {
    this.errors.add(mark);
  }

  /** Any event of the recording: console and network ones are listed, the rest ignored. */
  add(event: RrwebEvent): void {
    const log = consoleEntry(event);
    if (log) {
      this.levelCounts.set(log.group, (this.levelCounts.get(log.group) ?? 0) + 1);
      this.console.add(log);
      return;
    }
    const request = networkEntry(event);
    if (request) {
      if (request.failed) this.failedCount++;
      if (request.initiator !== 'other') this.initiatorCounts[request.initiator]++;
      this.network.add(request);
    }
  }

  /** The playback time (absolute ms), every frame. */
  setTime(now: number): void {
    this.errors.setTime(now);
    this.console.setTime(now);
    this.network.setTime(now);
  }

  private time(timestamp: number): HTMLElement {
    return el('span', { class: 'entry__time' }, formatOffset(timestamp - this.start));
  }

  private consoleRow(entry: ConsoleEntry): HTMLElement {
    const row = el(
      'li',
      { class: `lvl-${entry.group}` },
      this.time(entry.timestamp),
      el('span', { class: 'entry__level' }, entry.level),
      el('span', { class: 'entry__text' }, entry.text),
    );
    if (entry.trace.length) row.append(moreButton('Stack trace'));
    return row;
  }

  /** Two lines: time, method, URL, status; under the URL, duration · response size, and the error if any. */
  private networkRow(entry: NetworkEntry): HTMLElement {
    const status = entry.status === 0 ? 'failed' : String(entry.status);
    const row = el(
      'li',
      { class: `net init-${entry.initiator}${entry.failed ? ' is-failed' : ''}` },
      this.time(entry.timestamp),
      el('span', { class: 'entry__method' }, entry.method),
      el('span', { class: 'entry__url', title: entry.url }, entry.url),
      el('span', { class: 'entry__status', title: entry.error ?? '' }, status),
      moreButton('Request details'),
      el('span', { class: 'entry__meta' }, `${formatMs(entry.durationMs)} · ${formatBytes(entry.responseBytes)}`),
    );
    if (entry.error) row.append(el('span', { class: 'entry__error' }, entry.error));
    return row;
  }

  private showsRequest(entry: NetworkEntry): boolean {
    switch (this.networkFilter) {
      case 'all':
        return true;
      case 'failed':
        return entry.failed;
      default:
        return entry.initiator === this.networkFilter;
    }
  }

  private setUpTabs(): void {
    const tablist = byId('panel-tabs');
    for (const tab of TABS) byId(`tab-${tab}`).addEventListener('click', () => this.select(tab, false));
    tablist.addEventListener('keydown', (event) => {
      const i = TABS.indexOf(this.tab);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1 + TABS.length, Home: 0, End: TABS.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      this.select(TABS[next % TABS.length], true);
    });
  }

  private select(tab: Tab, focus: boolean): void {
    this.tab = tab;
    for (const t of TABS) {
      const button = byId(`tab-${t}`);
      button.setAttribute('aria-selected', String(t === tab));
      button.tabIndex = t === tab ? 0 : -1;
      byId(`panel-${t}`).hidden = t !== tab;
      if (t === tab && focus) button.focus();
    }
    this.errors.setShown(tab === 'errors');
    this.console.setShown(tab === 'console');
    this.network.setShown(tab === 'network');
  }

  private setUpFilters(): void {
    const consoleList = byId('console');
    for (const button of document.querySelectorAll<HTMLButtonElement>('[data-level]')) {
      const level = button.dataset.level as ConsoleFilterLevel;
      button.addEventListener('click', () => {
        const hide = !this.hiddenLevels.has(level);
        if (hide) this.hiddenLevels.add(level);
        else this.hiddenLevels.delete(level);
        button.setAttribute('aria-pressed', String(!hide));
        consoleList.classList.toggle(`hide-${level}`, hide);
        this.console.refilter();
      });
    }
    const networkList = byId('network');
    const buttons = document.querySelectorAll<HTMLButtonElement>('[data-net]');
    for (const button of buttons) {
      button.addEventListener('click', () => {
        this.networkFilter = button.dataset.net as NetworkFilter;
        for (const other of buttons) other.setAttribute('aria-pressed', String(other === button));
        for (const f of NETWORK_FILTERS) networkList.classList.toggle(`only-${f}`, f === this.networkFilter && f !== 'all');
        this.network.refilter();
      });
    }
  }

  private showConsoleCounts(): void {
    this.setCount('console', this.console.size, this.levelCounts.get('error') ?? 0);
    for (const level of CONSOLE_LEVELS) setText(byId(`count-level-${level}`), String(this.levelCounts.get(level)));
  }

  private showNetworkCounts(): void {
    const size = this.network.size;
    this.setCount('network', size, this.failedCount);
    setText(byId('count-net-all'), String(size));
    setText(byId('count-net-failed'), String(this.failedCount));
    setText(byId('count-net-fetch'), String(this.initiatorCounts.fetch));
    setText(byId('count-net-xhr'), String(this.initiatorCounts.xhr));
  }

  /** A tab's count, and its errors or failures in red when there are any. */
  private setCount(tab: Tab, total: number, bad: number): void {
    setText(byId(`count-${tab}`), String(total));
    const badge = byId(`bad-${tab}`);
    badge.hidden = bad === 0 || tab === 'errors';
    setText(badge, String(bad));
  }
}

/** The scroller, list and empty note of a panel, by the ids in player.html. */
function parts(name: Tab): { scroller: HTMLElement; list: HTMLElement; empty: HTMLElement } {
  return { scroller: byId(`scroll-${name}`), list: byId(name), empty: byId(`empty-${name}`) };
}

function moreButton(label: string): HTMLElement {
  // Not a tab stop: the row is; → and ← open and close it from the keyboard.
  return el('button', { type: 'button', class: 'entry__more', tabindex: '-1', 'aria-expanded': 'false', 'aria-label': label }, '▸');
}

/** Opens or closes (or, with `open` undefined, toggles) a row's details, built on first open. */
function toggleDetails(row: HTMLElement, open: boolean | undefined, build: () => HTMLElement): void {
  const button = row.querySelector('.entry__more');
  if (!button) return;
  const show = open ?? button.getAttribute('aria-expanded') !== 'true';
  let details = row.querySelector<HTMLElement>('.entry__details');
  if (show && !details) {
    details = build();
    details.classList.add('entry__details');
    row.append(details);
  }
  if (details) details.hidden = !show;
  row.classList.toggle('is-open', show);
  button.setAttribute('aria-expanded', String(show));
  button.textContent = show ? '▾' : '▸';
}

function networkDetails(entry: NetworkEntry): HTMLElement {
  const lines = [
    `${entry.method} ${entry.url}`,
    `initiator: ${entry.initiator}`,
    `status: ${entry.status === 0 ? '0 (no response)' : entry.status}`,
    `duration: ${formatMs(entry.durationMs)}`,
    `request body: ${formatBytes(entry.requestBytes)}`,
    `response body: ${formatBytes(entry.responseBytes)}`,
  ];
  if (entry.error) lines.push(`error: ${entry.error}`);
  return el('pre', {}, lines.join('\n'));
}

/** "0:05.2": the clock's format with tenths, since console lines come close together. */
export function formatOffset(ms: number): string {
  const clamped = Math.max(0, ms);
  return `${formatDuration(clamped)}.${Math.floor((clamped % 1000) / 100)}`;
}

function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}
