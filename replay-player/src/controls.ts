// The player's own controls: play/pause, speed, skip inactivity and a
// timeline scaled to the whole session (from the manifest), so it does not
// jump while chunks arrive. It shows what has loaded, gaps and error
// markers (the Errors list is in the side panel, ./panels/).
import type { ErrorMark, Gap } from './loader';
import { byId, el, formatDuration } from './page';

export interface ControlActions {
  toggle(): void;
  seek(timestamp: number): void;
  speed(speed: number): void;
  skipInactive(on: boolean): void;
}

export class Controls {
  private readonly timeline = byId('timeline');
  private readonly played = byId('played');
  private readonly loaded = byId('loaded');
  private readonly marks = byId('marks');
  private readonly clock = byId('clock');
  private readonly play = byId<HTMLButtonElement>('play');
  private readonly gapMarks = new Map<Gap, HTMLElement>();
  private readonly errorMarks: { marker: HTMLElement; timestamp: number }[] = [];
  private current: number;
  private loadedUntil: number;

  constructor(
    private readonly start: number,
    private end: number,
    actions: ControlActions,
  ) {
    this.loadedUntil = start;
    this.current = start;
    this.play.addEventListener('click', () => actions.toggle());
    this.timeline.addEventListener('click', (event) => {
      const rect = this.timeline.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
      actions.seek(this.start + fraction * (this.end - this.start));
    });
    this.timeline.addEventListener('keydown', (event) => {
      const step = event.key === 'ArrowLeft' ? -5000 : event.key === 'ArrowRight' ? 5000 : 0;
      if (!step) return;
      event.preventDefault();
      actions.seek(Math.min(this.end, Math.max(this.start, this.current + step)));
    });
    this.timeline.setAttribute('aria-valuemax', String(Math.round((end - start) / 1000)));
    for (const button of document.querySelectorAll<HTMLButtonElement>('[data-speed]')) {
      button.addEventListener('click', () => {
        const speed = Number(button.dataset.speed);
        this.setSpeed(speed);
        actions.speed(speed);
      });
    }
    const skip = byId<HTMLInputElement>('skip');
    skip.addEventListener('change', () => actions.skipInactive(skip.checked));
    this.setTime(start);
  }

  private percent(timestamp: number): number {
    const span = this.end - this.start;
    const clamped = Math.min(this.end, Math.max(this.start, timestamp));
    return span > 0 ? (100 * (clamped - this.start)) / span : 0;
  }

  setTime(timestamp: number): void {
    this.current = timestamp;
    this.played.style.width = `${this.percent(timestamp)}%`;
    const offset = Math.max(0, timestamp - this.start);
    this.clock.textContent = `${formatDuration(offset)} / ${formatDuration(this.end - this.start)}`;
    this.timeline.setAttribute('aria-valuenow', String(Math.round(offset / 1000)));
  }

  setLoaded(timestamp: number): void {
    this.loadedUntil = timestamp;
    this.loaded.style.width = `${this.percent(timestamp)}%`;
  }

  /** A live session grew: the timeline now ends at `end`, and every mark moves to its new place. */
  setEnd(end: number): void {
    if (end <= this.end) return;
    this.end = end;
    this.timeline.setAttribute('aria-valuemax', String(Math.round((end - this.start) / 1000)));
    for (const gap of this.gapMarks.keys()) this.showGap(gap);
    for (const { marker, timestamp } of this.errorMarks) marker.style.left = `${this.percent(timestamp)}%`;
    this.setLoaded(this.loadedUntil);
    this.setTime(this.current);
  }

  setPlaying(playing: boolean): void {
    this.play.textContent = playing ? '❚❚' : '▶';
    this.play.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    this.play.classList.toggle('is-playing', playing);
  }

  setSpeed(speed: number): void {
    for (const button of document.querySelectorAll<HTMLButtonElement>('[data-speed]')) {
      button.setAttribute('aria-pressed', String(Number(button.dataset.speed) === speed));
    }
  }

  showGap(gap: Gap): void {
    let mark = this.gapMarks.get(gap);
    if (!mark) {
      mark = el('div', { class: 'mark mark--gap', 'data-testid': 'gap-marker' });
      this.gapMarks.set(gap, mark);
      this.marks.append(mark);
    }
    const left = this.percent(gap.start);
    mark.style.left = `${left}%`;
    mark.style.width = `${Math.max(0.5, this.percent(gap.end) - left)}%`;
    const what = gap.seqs.length ? `chunk ${gap.seqs.join(', ')} missing` : 'no full snapshot to start from';
    mark.title = `Gap ${formatDuration(gap.start - this.start)}–${formatDuration(gap.end - this.start)}: ${what}`;
  }

  addError(mark: ErrorMark, seek: (timestamp: number) => void): void {
    const at = formatDuration(mark.timestamp - this.start);
    const marker = el('button', {
      type: 'button',
      class: 'mark mark--error',
      'data-testid': 'error-marker',
      title: `${at} ${mark.message}`,
      'aria-label': `Error at ${at}: ${mark.message}`,
    });
    marker.style.left = `${this.percent(mark.timestamp)}%`;
    this.errorMarks.push({ marker, timestamp: mark.timestamp });
    // Start a little before the error to see what led to it.
    const jump = (event: Event) => {
      event.stopPropagation();
      seek(Math.max(this.start, mark.timestamp - 2000));
    };
    marker.addEventListener('click', jump);
    this.marks.append(marker);
  }
}
