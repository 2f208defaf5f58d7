// The player page (/replay/{session_id}): access, the session's details,
// progressive loading (./loader.ts) into rrweb-player, and the controls.
import 'rrweb-player/dist/style.css';
import './page.css';
import './player.css';
import RrwebPlayer from 'rrweb-player';
import { ApiFailure, getJson, isShareToken, sessionToken, signIn, signedIn, takeTokenFromUrl, tokenFromInput } from './api';
import { Controls } from './controls';
import { startTime } from './deep-link';
import { EventType, type Gap, type Manifest, type RrwebEvent, loadSession } from './loader';
import {
  askForToken,
  byId,
  formatDateTime,
  formatDuration,
  hideAccess,
  hideMessage,
  refreshSignOut,
  setUpSignOut,
  showMessage,
} from './page';
import { Panels } from './panels';
import { recallSession } from './session-info';

const SPEEDS = [1, 2, 4, 8];
const sessionId = decodeURIComponent(location.pathname.replace(/^\/replay\//, '').replace(/\/+$/, ''));
const apiBase = `/api/observer/replays/${encodeURIComponent(sessionId)}`;

/** The credential of this page: a share token, or null for the sign-in cookie. */
type Access = string | null;

let replay: Replay | null = null;

function start(): void {
  document.title = `Replay ${sessionId} · Observer`;
  setUpSignOut(() => {
    // A replay opened through the sign-in stops being watchable.
    if (replay && replay.access === null) location.reload();
  });
  const fromUrl = takeTokenFromUrl();
  if (fromUrl) {
    use(fromUrl);
    return;
  }
  const share = sessionToken.get(sessionId);
  if (share) void open(share);
  else if (signedIn.likely()) void open(null);
  else ask('Watching this replay needs a share link or a viewer token. Signing in with a viewer token once opens every replay link in this browser.');
}

/** A token from the address bar or the access form: a share token opens this replay, a viewer token signs in. */
function use(token: string): void {
  if (isShareToken(token)) {
    sessionToken.set(sessionId, token);
    void open(token);
  } else {
    void signInWith(token);
  }
}

function ask(reason: string): void {
  refreshSignOut();
  askForToken(reason, (entered) => use(tokenFromInput(entered)));
}

async function signInWith(token: string): Promise<void> {
  showMessage('Signing in…');
  try {
    await signIn(token);
  } catch (e) {
    const failure = e instanceof ApiFailure ? e : new ApiFailure('server', String(e));
    hideMessage();
    if (failure.isAccess) ask('The viewer token was not accepted. Enter a share link or a viewer token.');
    else showMessage(`Could not sign in: ${failure.message}`, 'error', [['Retry', () => void signInWith(token)]]);
    return;
  }
  refreshSignOut();
  void open(null);
}

async function open(access: Access): Promise<void> {
  showMessage('Loading the recording…');
  let manifest: Manifest;
  try {
    manifest = await getJson<Manifest>(apiBase, access);
  } catch (e) {
    fail(e, access, () => void open(access));
    return;
  }
  hideAccess();
  if (!Array.isArray(manifest.chunks) || manifest.chunks.length === 0) {
    showMessage(`There is no recording for session ${sessionId}.`, 'error');
    return;
  }
  replay = new Replay(manifest, access);
  replay.run();
}

/**
 * Access problems forget the refused credential and ask again (a refused
 * share link falls back to the sign-in when there is one); the rest is a
 * message.
 */
function fail(e: unknown, access: Access, retry: () => void): void {
  const failure = e instanceof ApiFailure ? e : new ApiFailure('server', String(e));
  if (failure.isAccess) {
    hideMessage();
    if (access === null) {
      signedIn.set(null);
      ask('Your sign-in has expired or was ended. Enter a share link, or a viewer token to sign in again.');
      return;
    }
    if (sessionToken.get(sessionId) === access) sessionToken.set(sessionId, null);
    if (signedIn.likely()) void open(null);
    else ask(accessReason(failure));
  } else if (failure.kind === 'not_found') {
    showMessage(`There is no recording for session ${sessionId}.`, 'error');
  } else {
    showMessage(`Could not load the recording: ${failure.message}`, 'error', [['Retry', retry]]);
  }
}

function accessReason(failure: ApiFailure): string {
  switch (failure.kind) {
    case 'token_expired':
      return 'This share link has expired. Ask for a new link, or enter a viewer token.';
    case 'token_invalid':
      return 'This share link is not valid: it is incomplete, changed, or for another session. Enter a valid link or a viewer token.';
    default:
      return 'The token was not accepted. Enter a share link or a viewer token.';
  }
}

/** One session being watched. All times are absolute ms timestamps. */
class Replay {
  private player: RrwebPlayer | null = null;
  private controls: Controls;
  /** Errors, console and network beside the replay (./panels/). */
  private panels: Panels;
  private readonly first: number;
  private readonly last: number;
  /** The timestamp of the replayer's time offset 0 (its first event). */
  private replayStart = 0;
  /** The last event handed to the player. */
  private lastEvent = 0;
  private loadedUntil: number;
  private done = false;
  private started = false;
  /** Where playback starts (?t=, see ./deep-link.ts) or should jump to once loaded. */
  private target: number;
  private wantPlay = true;
  private buffering = false;
  private bufferedAt = 0;
  private ended = false;
  private speed = 1;
  private skip = true;
  private readonly gaps: Gap[] = [];
  private errorNoticeUntil = 0;
  /** The user id of the latest `identify` custom event loaded so far. */
  private identified: string | null = null;

  constructor(
    private readonly manifest: Manifest,
    readonly access: Access,
  ) {
    this.first = manifest.first_timestamp;
    this.last = Math.max(manifest.last_timestamp, manifest.first_timestamp);
    this.loadedUntil = this.first;
    this.target = startTime(new URLSearchParams(location.search).get('t'), this.first, this.last);
    this.controls = new Controls(this.first, this.last, {
      toggle: () => this.toggle(),
      seek: (timestamp) => this.seek(timestamp),
      speed: (speed) => this.setSpeed(speed),
      skipInactive: (on) => this.setSkip(on),
    });
    this.controls.setSpeed(this.speed);
    this.panels = new Panels(this.first, (timestamp) => this.seek(timestamp));
  }

  run(): void {
    this.showDetails(null);
    showMessage('Loading the first part of the recording…');
    void loadSession(
      this.manifest,
      (seq) => getJson<unknown>(`${apiBase}/chunks/${seq}`, this.access),
      {
        onEvents: (events) => this.append(events),
        onGap: (gap) => {
          if (!this.gaps.includes(gap)) this.gaps.push(gap);
          this.controls.showGap(gap);
        },
        onError: (mark) => {
          this.controls.addError(mark, (timestamp) => this.seek(timestamp));
          this.panels.addError(mark);
        },
        onActivity: (event) => this.panels.add(event),
        onIdentify: (userId) => {
          if (userId === null) return;
          this.identified = userId;
          this.showUser();
        },
        onProgress: (timestamp) => {
          this.loadedUntil = timestamp;
          this.controls.setLoaded(timestamp);
          this.maybeStart();
        },
        onFatal: (failure) => {
          this.done = true;
          if (this.player) showMessage(`Loading stopped: ${accessReason(failure)}`, 'error');
          else fail(failure, this.access, () => location.reload());
        },
        onDone: () => {
          this.done = true;
          this.controls.setLoaded(this.last);
          if (!this.player) showMessage('This recording has no full snapshot, so there is nothing to show.', 'error');
          else this.maybeStart();
          if (this.buffering) this.onFinish();
        },
      },
    );
    requestAnimationFrame(() => this.tick());
  }

  /**
   * The session's details. Each comes from the manifest when the server sends it (newer servers send `user_id`,
   * `url` and `start`), else from what the sessions page knew, else from the recording itself.
   */
  private showDetails(firstEvents: RrwebEvent[] | null): void {
    const known = recallSession(sessionId);
    const meta = firstEvents?.find((e) => e.type === EventType.Meta);
    byId('info-id').textContent = sessionId;
    const start = validTime(this.manifest.start) ?? this.first;
    byId('info-start').textContent = formatDateTime(start);
    byId('info-duration').textContent = formatDuration(this.manifest.duration_ms ?? this.last - this.first);
    const url = text(this.manifest.url) ?? text(meta?.data?.href) ?? text(known.url) ?? '';
    const urlCell = byId('info-url');
    urlCell.textContent = url || '—';
    urlCell.title = url;
    this.showUser();
    byId('info-chunks').textContent = String(this.manifest.chunks.length);
    byId('replay').hidden = false;
  }

  /** The user id: the manifest's, else the listing's, else the latest `identify` in the events loaded so far. */
  private showUser(): void {
    const user = text(this.manifest.user_id) ?? text(recallSession(sessionId).user_id) ?? this.identified ?? '—';
    const cell = byId('info-user');
    if (cell.textContent !== user) cell.textContent = user;
  }

  private append(events: RrwebEvent[]): void {
    this.lastEvent = Math.max(this.lastEvent, events[events.length - 1].timestamp);
    if (!this.player) {
      this.create(events);
      return;
    }
    for (const event of events) this.player.addEvent(event as never);
    if (this.buffering && this.wantPlay) {
      this.buffering = false;
      hideMessage();
      this.player.goto(this.bufferedAt, true);
    }
  }

  private create(events: RrwebEvent[]): void {
    this.replayStart = events[0].timestamp;
    this.showDetails(events);
    const { width, height } = stageSize();
    const player = new RrwebPlayer({
      target: byId('stage'),
      props: {
        // The replayer annotates events in place; give it its own array.
        events: [...events] as never,
        width,
        height,
        autoPlay: false,
        showController: false,
        skipInactive: this.skip,
        speed: this.speed,
        speedOption: SPEEDS,
        mouseTail: false,
        // Replayed focus events would move the viewer's keyboard focus into the replay (out of the timeline or
        // the side panel) at every recorded focus; the replayed page then shows no :focus style, a smaller loss.
        triggerFocus: false,
        UNSAFE_replayCanvas: false,
      },
    });
    this.player = player;
    const replayer = player.getReplayer();
    replayer.on('state-change', () => this.controls.setPlaying(this.wantPlay && !this.ended));
    replayer.on('finish', () => this.onFinish());
    replayer.on('skip-end', () => {
      // A speed picked while skipping is lost when the skip ends.
      if (replayer.config.speed !== this.speed) player.setSpeed(this.speed);
    });
    replayer.on('custom-event', (event) => {
      const e = event as RrwebEvent;
      if (e.data?.tag !== 'error' || Math.abs(this.now() - e.timestamp) > 1000) return;
      this.errorNoticeUntil = performance.now() + 4000;
      this.setStatus(`Error: ${e.data?.payload?.message ?? 'error'}`, 'error');
    });
    addEventListener('resize', () => {
      const size = stageSize();
      (player as unknown as { $set(props: object): void }).$set(size);
      requestAnimationFrame(() => player.triggerResize());
    });
    hideMessage();
    this.maybeStart();
  }

  /** Starts (or jumps to `target`) once everything up to it has loaded. */
  private maybeStart(): void {
    if (this.started || !this.player) return;
    if (!this.done && this.loadedUntil < this.target) {
      showMessage(`Loading up to ${formatDuration(this.target - this.first)}…`);
      return;
    }
    hideMessage();
    this.started = true;
    const offset = Math.max(0, Math.min(this.target, this.lastEvent) - this.replayStart);
    this.ended = false;
    this.buffering = false;
    this.player.goto(offset, this.wantPlay);
    this.controls.setPlaying(this.wantPlay);
  }

  private onFinish(): void {
    if (!this.player) return;
    if (!this.done) {
      // Playback caught up with loading: resume when the next chunk is in.
      this.buffering = true;
      this.bufferedAt = this.player.getReplayer().getCurrentTime();
      showMessage('Loading…');
    } else {
      this.buffering = false;
      this.ended = true;
      this.controls.setPlaying(false);
    }
  }

  private now(): number {
    if (!this.player || !this.started) return this.target;
    return this.replayStart + this.player.getReplayer().getCurrentTime();
  }

  private toggle(): void {
    if (!this.player) return;
    if (this.ended) {
      this.ended = false;
      this.wantPlay = true;
      this.player.goto(0, true);
    } else if (this.wantPlay) {
      this.wantPlay = false;
      this.buffering = false;
      this.player.pause();
    } else {
      this.wantPlay = true;
      this.player.goto(this.player.getReplayer().getCurrentTime(), true);
    }
    this.controls.setPlaying(this.wantPlay && !this.ended);
  }

  private seek(timestamp: number): void {
    if (!this.player) return;
    if (timestamp > this.lastEvent && !this.done) {
      // Not loaded yet: go there as soon as it is.
      this.started = false;
      this.target = timestamp;
      this.maybeStart();
      return;
    }
    this.ended = false;
    this.buffering = false;
    const offset = Math.max(0, Math.min(timestamp, this.lastEvent) - this.replayStart);
    this.player.goto(offset, this.wantPlay);
    this.controls.setTime(this.replayStart + offset);
  }

  private setSpeed(speed: number): void {
    this.speed = speed;
    this.player?.setSpeed(speed);
  }

  private setSkip(on: boolean): void {
    if (on === this.skip) return;
    this.skip = on;
    this.player?.toggleSkipInactive();
  }

  private setStatus(text: string, kind: 'info' | 'error' = 'info'): void {
    const status = byId('status');
    if (status.textContent !== text) status.textContent = text;
    status.className = `status status--${kind}`;
  }

  /** Each frame: the clock, the position, and what to say under the player. */
  private tick(): void {
    const now = this.now();
    this.controls.setTime(now);
    this.panels.setTime(now);
    if (performance.now() > this.errorNoticeUntil) {
      const gap = this.gaps.find((g) => now >= g.start && now < g.end);
      if (gap) {
        const what = gap.seqs.length ? `chunk ${gap.seqs.join(', ')} could not be loaded` : 'no full snapshot here';
        this.setStatus(`Part of this recording is missing (${what}); playback continues at the next full snapshot.`);
      } else if (this.ended) {
        this.setStatus('End of the recording.');
      } else {
        this.setStatus(this.done ? '' : `Loading… ${formatDuration(this.loadedUntil - this.first)} loaded`);
      }
    }
    requestAnimationFrame(() => this.tick());
  }
}

/** A non-empty string, else undefined. */
function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A plausible ms timestamp, else undefined. */
function validTime(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

function stageSize(): { width: number; height: number } {
  const width = Math.max(320, byId('stage').clientWidth);
  const height = Math.max(240, Math.min(window.innerHeight - 260, Math.round(width * 0.625)));
  return { width, height };
}

start();
