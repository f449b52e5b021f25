/**
 * The time bounds and counters that keep a slow, stuck or hostile peer cheap: header
 * blocks must arrive whole in time, an idle connection closes, data may not wait on a
 * closed window for ever, and streams reset before their answer (rapid reset,
 * CVE-2023-44487) are counted. The flood bound on what the peer makes us queue is
 * `output.ts`'s, the bounds on one header block `inbound_headers.ts`'s.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { ENHANCE_YOUR_CALM } from "./frames.ts";

/** The span over which peer resets are counted. */
const RESET_WINDOW_MS = 10_000;

/**
 * Starts the header timeout, unless it runs already: the first request's head (server,
 * from the start) and every later block from its first frame must come whole in time.
 *
 * @example
 * ```ts ignore
 * if (connection.partial !== undefined) armHeaderTimer(connection);
 * ```
 */
export function armHeaderTimer(conn: Connection): void {
  const ms = conn.options.headerTimeoutMs;
  if (ms === undefined || conn.headerTimer !== undefined || conn.terminating) return;
  conn.headerTimer = setTimeout(() => {
    conn.headerTimer = undefined;
    conn.timedOut("header timeout", "the peer's headers took too long");
  }, ms);
}

/**
 * Stops the header timeout: no header block is on its way.
 *
 * @example
 * ```ts ignore
 * clearHeaderTimer(connection);
 * ```
 */
export function clearHeaderTimer(conn: Connection): void {
  if (conn.headerTimer === undefined) return;
  clearTimeout(conn.headerTimer);
  conn.headerTimer = undefined;
}

/**
 * Closes the connection once it has had no stream for `ms` (checked again when it fires).
 *
 * @example
 * ```ts ignore
 * armIdleTimer(connection, 300_000);
 * ```
 */
export function armIdleTimer(conn: Connection, ms: number): void {
  conn.idleTimer = setTimeout(() => {
    conn.idleTimer = undefined;
    if (conn.terminating) return;
    if (conn.streams.size > 0) return armIdleTimer(conn, ms);
    const idle = Date.now() - conn.idleSince;
    if (idle < ms) return armIdleTimer(conn, ms - idle);
    conn.timedOut("idle", "the connection was idle");
  }, ms);
}

/**
 * Starts the stall bound, unless it runs already: data that has waited on a zero window
 * (or on a peer that does not read) for `stallTimeoutMs` ends the connection.
 *
 * @example
 * ```ts ignore
 * stream.blockedAt = Date.now();
 * armStallTimer(connection);
 * ```
 */
export function armStallTimer(conn: Connection, delay?: number): void {
  const ms = conn.options.stallTimeoutMs ?? 30_000;
  if (conn.stallTimer !== undefined || conn.terminating) return;
  conn.stallTimer = setTimeout(() => {
    conn.stallTimer = undefined;
    if (conn.terminating) return;
    const now = Date.now();
    let oldest = Infinity;
    for (const stream of conn.pending) {
      if (stream.blockedAt > 0 && stream.blockedAt < oldest) oldest = stream.blockedAt;
    }
    if (oldest === Infinity) return;
    if (now - oldest >= ms) {
      conn.connectionError(ENHANCE_YOUR_CALM, "the peer took no data for too long");
      return;
    }
    armStallTimer(conn, ms - (now - oldest));
  }, delay ?? ms);
}

/**
 * Counts a stream the peer reset before its answer was done; false (and the connection
 * ends) past `maxPeerResets` within 10 s.
 *
 * @example
 * ```ts ignore
 * if (!stream.sendEnded && !countPeerReset(connection)) return;
 * ```
 */
export function countPeerReset(conn: Connection): boolean {
  const now = Date.now();
  if (now - conn.resetsSince > RESET_WINDOW_MS) {
    conn.resetsSince = now;
    conn.resets = 0;
  }
  if (++conn.resets > conn.maxResets) {
    conn.connectionError(ENHANCE_YOUR_CALM, "too many streams reset (rapid reset)");
    return false;
  }
  return true;
}
