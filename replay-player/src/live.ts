// Following a live session (docs/player.md#live-sessions): while the
// manifest says `live`, poll it for chunks after the last one loaded
// (`?after_seq=`, with the previous answer's ETag, so an unchanged poll is
// a 304 without a body) and hand new chunks to the player. Everything lives
// in the store, so any Observer replica answers the poll. Following stops
// when the server says the session went idle (no chunk accepted within its
// live window) or on a failure no retry can fix.
import { ApiFailure, getJsonIfChanged } from './api';
import type { Manifest } from './loader';

/** How often the manifest is polled: with the SDK's ~5 s chunks, a new chunk shows within ~2 s of its upload. */
export const POLL_MS = 1500;

export interface LiveEvents {
  /** New chunks (their manifest lines in `manifest.chunks`); the next poll waits for this to settle. */
  onChunks(manifest: Manifest): Promise<void>;
  /** The session stopped recording (`manifest` is its last state). */
  onIdle(manifest: Manifest): void;
  /** Access was lost: following stops. */
  onFatal(failure: ApiFailure): void;
}

export class LiveFollower {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private etag: string | null = null;
  private stopped = false;

  constructor(
    private readonly apiBase: string,
    private readonly access: string | null,
    /** The last seq loaded, asked for at each poll. */
    private readonly lastSeq: () => number | null,
    private readonly on: LiveEvents,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (!this.stopped) this.timer = setTimeout(() => void this.poll(), POLL_MS);
  }

  private async poll(): Promise<void> {
    const after = this.lastSeq();
    const path = after === null ? this.apiBase : `${this.apiBase}?after_seq=${after}`;
    try {
      const { body, etag } = await getJsonIfChanged<Manifest>(path, this.access, this.etag);
      this.etag = etag;
      if (body) {
        if (Array.isArray(body.chunks) && body.chunks.length > 0) await this.on.onChunks(body);
        if (body.live === false) {
          this.stop();
          this.on.onIdle(body);
          return;
        }
      }
    } catch (e) {
      const failure = e instanceof ApiFailure ? e : new ApiFailure('network', String(e));
      if (failure.isAccess) {
        this.stop();
        this.on.onFatal(failure);
        return;
      }
      // Network trouble or a 5xx: try again at the next poll.
    }
    this.schedule();
  }
}
