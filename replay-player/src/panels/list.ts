// One time-ordered list of a side panel (errors, console or network),
// built to stay cheap on long sessions:
// - entries arrive while chunks load and are inserted in time order once per
//   animation frame, in one batch; a row is built once and never rebuilt;
// - filters are classes on the list that CSS reads, so filtering touches no
//   row (the `visible` predicate mirrors those rules for the keyboard and the
//   current-entry highlight);
// - the current entry (the last visible one at or before the playback time)
//   is found by binary search, and only two rows change when it moves;
// - rows use `content-visibility: auto`, so off-screen rows cost no layout.
// Keyboard: one tab stop per list (roving tabindex); ↑/↓/Home/End move,
// Enter/Space jumps the replay to the entry, →/← open/close its details.

export interface Timed {
  timestamp: number;
}

export interface ListOptions<T extends Timed> {
  /** The scrolling element that holds `list`. */
  scroller: HTMLElement;
  list: HTMLElement;
  /** Shown when no entry passes the filter (its text is set here). */
  empty: HTMLElement;
  emptyText: { none: string; filtered: string };
  /** Builds the entry's row (an `li`, as text only); called once per entry. */
  render(entry: T): HTMLElement;
  /** Whether the current filter shows the entry (mirrors the CSS filter classes). */
  visible(entry: T): boolean;
  jump(entry: T): void;
  /** Opens (true), closes (false) or toggles (undefined) the row's details, if it has any. */
  expand?(row: HTMLElement, entry: T, open?: boolean): void;
  /** Most entries kept; later ones are counted, not shown. */
  max: number;
}

/** Quiet time after the viewer scrolls or uses the keyboard in a list before it follows playback again. */
const FOLLOW_PAUSE_MS = 4000;

export class EntryList<T extends Timed> {
  private readonly entries: T[] = [];
  private readonly rows: HTMLElement[] = [];
  private readonly byRow = new WeakMap<Element, T>();
  private pending: T[] = [];
  private flushQueued = false;
  private dropped = 0;
  private readonly droppedNote: HTMLElement;
  private visibleCount = 0;
  private current: HTMLElement | null = null;
  private currentAt = Number.NaN;
  private now = Number.NEGATIVE_INFINITY;
  private shown = false;
  private hovered = false;
  private busyUntil = 0;
  private tabStop: HTMLElement | null = null;
  /** Called after each batch is in (counts in tabs and filters). */
  onChange: () => void = () => {};

  constructor(private readonly o: ListOptions<T>) {
    this.droppedNote = document.createElement('p');
    this.droppedNote.className = 'entries__dropped';
    this.droppedNote.hidden = true;
    o.scroller.append(this.droppedNote);
    o.list.addEventListener('click', (event) => this.onClick(event));
    o.list.addEventListener('keydown', (event) => this.onKey(event));
    o.list.addEventListener('focusin', (event) => {
      const row = this.rowOf(event.target);
      if (row) this.setTabStop(row);
    });
    const pause = () => (this.busyUntil = performance.now() + FOLLOW_PAUSE_MS);
    for (const type of ['wheel', 'touchstart', 'keydown', 'pointerdown']) o.scroller.addEventListener(type, pause, { passive: true });
    o.scroller.addEventListener('pointerenter', () => (this.hovered = true));
    o.scroller.addEventListener('pointerleave', () => (this.hovered = false));
    this.showEmpty();
  }

  get size(): number {
    return this.entries.length + this.pending.length + this.dropped;
  }

  /** All entries kept so far (in time order), for counts. */
  get all(): readonly T[] {
    return this.entries;
  }

  add(entry: T): void {
    if (this.entries.length + this.pending.length >= this.o.max) {
      this.dropped++;
    } else {
      this.pending.push(entry);
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  /** Inserts the waiting entries in time order: one DOM append when they all come after the last row (the usual case). */
  flush(): void {
    this.flushQueued = false;
    const batch = this.pending.sort((a, b) => a.timestamp - b.timestamp);
    this.pending = [];
    const tail = document.createDocumentFragment();
    for (const entry of batch) {
      const row = this.o.render(entry);
      row.classList.add('entry');
      row.tabIndex = -1;
      this.byRow.set(row, entry);
      if (this.o.visible(entry)) this.visibleCount++;
      const at = this.upperBound(entry.timestamp);
      if (at === this.entries.length) {
        tail.append(row);
      } else {
        // Earlier than rows already shown (a request logged when it ended, with its start time).
        this.o.list.insertBefore(row, this.rows[at]);
      }
      this.entries.splice(at, 0, entry);
      this.rows.splice(at, 0, row);
    }
    this.o.list.append(tail);
    if (!this.tabStop) this.refreshTabStop();
    if (this.dropped) {
      this.droppedNote.textContent = `${this.dropped} more not shown (a list keeps the first ${this.o.max}).`;
      this.droppedNote.hidden = false;
    }
    this.showEmpty();
    this.currentAt = Number.NaN;
    this.setTime(this.now);
    this.onChange();
  }

  /** The filter changed: the CSS already hides rows; recount and move the highlight and tab stop. */
  refilter(): void {
    this.visibleCount = this.entries.reduce((n, e) => n + (this.o.visible(e) ? 1 : 0), 0);
    this.showEmpty();
    if (this.tabStop && !this.o.visible(this.byRow.get(this.tabStop)!)) this.refreshTabStop();
    this.currentAt = Number.NaN;
    this.setTime(this.now, true);
  }

  /** The list's panel was shown or hidden; a shown list brings its current entry into view. */
  setShown(shown: boolean): void {
    this.shown = shown;
    if (shown && this.current) this.reveal(this.current, true);
  }

  /** Highlights the entry at `now` (absolute ms); cheap when it has not changed. */
  setTime(now: number, force = false): void {
    this.now = now;
    const last = this.upperBound(now) - 1;
    if (last === this.currentAt && !force) return;
    this.currentAt = last;
    let i = last;
    while (i >= 0 && !this.o.visible(this.entries[i])) i--;
    let row = i >= 0 ? this.rows[i] : null;
    // Entries at the same moment: keep the one that was picked (clicked or jumped to).
    const kept = this.current ? this.byRow.get(this.current) : undefined;
    if (row && kept && kept.timestamp === this.entries[i].timestamp && this.o.visible(kept)) row = this.current;
    if (row === this.current) return;
    this.current?.classList.remove('is-current');
    this.current?.removeAttribute('aria-current');
    this.current = row;
    if (!row) return;
    row.classList.add('is-current');
    row.setAttribute('aria-current', 'true');
    this.reveal(row, force);
  }

  /** Makes `row` the current entry now (it was clicked), before playback gets there. */
  private pick(row: HTMLElement): void {
    this.current?.classList.remove('is-current');
    this.current?.removeAttribute('aria-current');
    this.current = row;
    row.classList.add('is-current');
    row.setAttribute('aria-current', 'true');
  }

  /** Scrolls the list (never the page) so `row` is visible, unless the viewer is busy in it. */
  private reveal(row: HTMLElement, always: boolean): void {
    if (!this.shown) return;
    if (!always && (this.hovered || performance.now() < this.busyUntil)) return;
    const scroller = this.o.scroller;
    // The scroller is the rows' offsetParent (position: relative in player.css).
    const top = row.offsetTop;
    if (top >= scroller.scrollTop && top + row.offsetHeight <= scroller.scrollTop + scroller.clientHeight) return;
    scroller.scrollTop = Math.max(0, top - scroller.clientHeight / 3);
  }

  private showEmpty(): void {
    const shown = this.visibleCount === 0 && this.pending.length === 0;
    this.o.empty.hidden = !shown;
    if (shown) this.o.empty.textContent = this.entries.length ? this.o.emptyText.filtered : this.o.emptyText.none;
  }

  /** Index of the first entry after `timestamp`. */
  private upperBound(timestamp: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid].timestamp <= timestamp) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private rowOf(target: EventTarget | null): HTMLElement | null {
    const row = target instanceof Element ? target.closest<HTMLElement>('.entry') : null;
    return row && this.byRow.has(row) ? row : null;
  }

  private onClick(event: MouseEvent): void {
    const row = this.rowOf(event.target);
    if (!row) return;
    const entry = this.byRow.get(row)!;
    if (event.target instanceof Element && event.target.closest('.entry__more')) {
      this.o.expand?.(row, entry);
      return;
    }
    // Selecting text in a row is not a click to jump.
    if (getSelection()?.toString()) return;
    this.setTabStop(row);
    this.pick(row);
    this.o.jump(entry);
  }

  private onKey(event: KeyboardEvent): void {
    const row = this.rowOf(event.target);
    if (!row || event.target !== row) return;
    const entry = this.byRow.get(row)!;
    let next: HTMLElement | null = null;
    switch (event.key) {
      case 'ArrowDown':
        next = this.step(row, 1);
        break;
      case 'ArrowUp':
        next = this.step(row, -1);
        break;
      case 'Home':
        next = this.step(null, 1);
        break;
      case 'End':
        next = this.step(null, -1);
        break;
      case 'Enter':
      case ' ':
        this.pick(row);
        this.o.jump(entry);
        break;
      case 'ArrowRight':
      case 'ArrowLeft':
        this.o.expand?.(row, entry, event.key === 'ArrowRight');
        break;
      default:
        return;
    }
    event.preventDefault();
    if (next) {
      this.setTabStop(next);
      next.focus({ preventScroll: true });
      this.reveal(next, true);
    }
  }

  /** The next visible row after (dir 1) or before (dir -1) `from`; from the ends when `from` is null. */
  private step(from: HTMLElement | null, dir: 1 | -1): HTMLElement | null {
    let i = from ? this.rows.indexOf(from) + dir : dir === 1 ? 0 : this.rows.length - 1;
    for (; i >= 0 && i < this.rows.length; i += dir) {
      if (this.o.visible(this.entries[i])) return this.rows[i];
    }
    return null;
  }

  private setTabStop(row: HTMLElement): void {
    if (this.tabStop === row) return;
    if (this.tabStop) this.tabStop.tabIndex = -1;
    this.tabStop = row;
    row.tabIndex = 0;
  }

  private refreshTabStop(): void {
    const row = this.current && this.o.visible(this.byRow.get(this.current)!) ? this.current : this.step(null, 1);
    if (row) this.setTabStop(row);
    else if (this.tabStop) {
      this.tabStop.tabIndex = -1;
      this.tabStop = null;
    }
  }
}
