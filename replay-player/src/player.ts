// The player page (/replay/{session_id}): access, the session's details,
// progressive loading (./loader.ts) into rrweb-player, and the controls.
import 'rrweb-player/dist/style.css';
import './page.css';
import './player.css';
import RrwebPlayer from 'rrweb-player';
import { ApiFailure, getJson, isShareToken, sessionToken, signIn, signedIn, takeTokenFromUrl, tokenFromInput } from './api';
import { Controls } from './controls';
import { startTime } from './deep-link';
import { ChunkLoader, EventType, type Gap, type LoaderEvents, type Manifest, type RrwebEvent } from './loader';
import { LiveFollower } from './live';
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
/** "Jump to live" lands this long before the newest event, so there is something to see. */
const LIVE_LAG_MS = 1000;
/** Playback this close to the newest event counts as live. */
const LIVE_EDGE_MS = 3000;
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
  /** Grows while a live session is followed. */
  private last: number;
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
  /** A live session whose new chunks are being loaded as they arrive (./live.ts). */
  private following = false;
  private follower: LiveFollower | null = null;

  constructor(
    private readonly manifest: Manifest,
    readonly access: Access,
  ) {
    this.first = manifest.first_timestamp;
    this.last = Math.max(manifest.last_timestamp, manifest.first_timestamp);
    this.loadedUntil = this.first;
    // A live session starts where any replay does (a shared link shows what led up to now); "Jump to live" is one click.
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
    const events: LoaderEvents = {
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
    };
    const loader = new ChunkLoader(this.first, (seq) => getJson<unknown>(`${apiBase}/chunks/${seq}`, this.access), events);
    byId('jump-live').addEventListener('click', () => this.jumpToLive());
    void (async () => {
      if (!(await loader.feed(this.manifest.chunks))) return;
      if (this.manifest.live === true) this.follow(loader);
      else loader.finish(this.last);
    })();
    requestAnimationFrame(() => this.tick());
  }

  /** Keeps loading the chunks of a live session as they are stored, until it goes idle. */
  private follow(loader: ChunkLoader): void {
    this.following = true;
    const grow = (manifest: Manifest) => {
      const last = Math.max(this.last, manifest.last_timestamp);
      if (last > this.last) {
        this.last = last;
        this.controls.setEnd(last);
        byId('info-duration').textContent = formatDuration(last - this.first);
      }
      if (typeof manifest.last_seq === 'number') byId('info-chunks').textContent = String(manifest.last_seq + 1);
    };
    this.follower = new LiveFollower(apiBase, this.access, () => loader.seq, {
      onChunks: async (manifest) => {
        grow(manifest);
        if (!(await loader.feed(manifest.chunks))) this.follower?.stop();
      },
      onIdle: (manifest) => {
        grow(manifest);
        this.following = false;
        loader.finish(this.last);
      },
      onFatal: (failure) => {
        this.following = false;
        showMessage(`Following stopped: ${accessReason(failure)}`, 'error');
      },
    });
    this.follower.start();
  }

  /** Back to the newest events of a live session, playing. */
  private jumpToLive(): void {
    if (!this.player) return;
    this.wantPlay = true;
    this.seek(Math.max(this.replayStart, this.lastEvent - LIVE_LAG_MS));
    this.controls.setPlaying(true);
  }

  /** Whether playback is at the newest events (a followed session's live edge). */
  private atLiveEdge(): boolean {
    return this.buffering || this.now() >= this.lastEvent - LIVE_EDGE_MS;
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
      // At a live edge, show the new events as they come rather than the quiet time before them.
      const resume = this.following ? Math.max(this.bufferedAt, events[0].timestamp - this.replayStart) : this.bufferedAt;
      this.player.goto(resume, true);
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

  /**
   * Starts (or jumps to `target`) once the player holds events up to it. Loaded progress is not enough: a
   * missing chunk counts as loaded up to its end before the chunk after it (the next full snapshot) is in,
   * and starting then would stall at the gap's edge instead of at `target`.
   */
  private maybeStart(): void {
    if (this.started || !this.player) return;
    if (!this.done && this.lastEvent < this.target) {
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
      // A followed session waits for its next chunk; the status line says so.
      if (!this.following) showMessage('Loading…');
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
    const live = byId('live');
    if (live.hidden === this.following) live.hidden = !this.following;
    const edge = this.following && this.atLiveEdge();
    live.classList.toggle('live--edge', edge);
    const jump = byId('jump-live');
    if (jump.hidden === (this.following && !edge)) jump.hidden = !(this.following && !edge);
    if (performance.now() > this.errorNoticeUntil) {
      const gap = this.gaps.find((g) => now >= g.start && now < g.end);
      if (gap) {
        const what = gap.seqs.length ? `chunk ${gap.seqs.join(', ')} could not be loaded` : 'no full snapshot here';
        this.setStatus(`Part of this recording is missing (${what}); playback continues at the next full snapshot.`);
      } else if (this.ended) {
        this.setStatus('End of the recording.');
      } else if (this.following) {
        this.setStatus(this.atLiveEdge() ? 'Live: new events appear as they are recorded.' : 'Live: you are watching an earlier moment.');
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
