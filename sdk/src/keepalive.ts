/**
 * The keepalive budget: browsers cap the bodies of all in-flight `keepalive` requests of a page at 64 KiB
 * together (Chrome rejects a request that would exceed it). We track our own in-flight keepalive bytes and
 * leave a margin for the host page's own beacons.
 */

export const KEEPALIVE_LIMIT_BYTES = 64 * 1024;
/** What Observer allows itself of the 64 KiB, leaving 4 KiB for the host page. */
export const KEEPALIVE_BUDGET_BYTES = KEEPALIVE_LIMIT_BYTES - 4 * 1024;

export class KeepaliveBudget {
  private inFlight = 0;

  constructor(readonly limit: number = KEEPALIVE_BUDGET_BYTES) {}

  get remaining(): number {
    return Math.max(0, this.limit - this.inFlight);
  }

  /** Reserves `bytes` when they fit; the caller releases them when its request settles. */
  tryReserve(bytes: number): boolean {
    if (bytes > this.remaining) return false;
    this.inFlight += bytes;
    return true;
  }

  release(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
  }
}

/**
 * Given body sizes in priority order, picks which fit into `remaining` bytes: greedily, skipping a body that does
 * not fit and trying the following (smaller) ones. Returns the chosen indexes in order.
 */
export function planKeepalive(sizes: readonly number[], remaining: number): number[] {
  const chosen: number[] = [];
  let left = remaining;
  sizes.forEach((size, index) => {
    if (size <= left) {
      chosen.push(index);
      left -= size;
    }
  });
  return chosen;
}
