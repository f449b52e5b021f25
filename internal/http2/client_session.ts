/**
 * One connection of the engine's client with the bounds that keep a call from hanging
 * on a server that stopped or wedged: while streams are open or a call waits for a
 * slot, a PING once the server has been quiet for the keepalive interval (an ACK that
 * comes too late fails the connection), a bounded wait for a stream slot
 * (MAX_CONCURRENT_STREAMS), and a bounded wait on the send window per stream.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { ByteStream } from "../runtime/types.ts";
import type { H2ClientOptions } from "./client.ts";
import { Connection } from "./connection.ts";
import { Http2Error } from "./errors.ts";
import { CANCEL, ENHANCE_YOUR_CALM, NO_ERROR } from "./frames.ts";
import type { H2Stream } from "./stream.ts";

/** The largest stream id (RFC 9113 section 5.1.1). */
const MAX_STREAM_ID = 0x7fffffff;
/** The longest delay a timer takes (2^31 - 1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 0x7fffffff;
/** Streams failed by the client itself (a stall), with the error their caller sees. */
const stalled = new WeakMap<H2Stream, unknown>();

/**
 * What a failed stream's caller sees: the client's own reason when it ended the stream
 * (a send window that never opened), else `error`.
 *
 * @example
 * ```ts ignore
 * const body = await stream.readAll(limit).catch((error) => {
 *   throw streamFailure(stream, error);
 * });
 * ```
 */
export function streamFailure(stream: H2Stream, error: unknown): unknown {
  return stalled.get(stream) ?? error;
}

/** A call waiting for a stream slot. */
interface Waiter {
  wake(): void;
}

/**
 * One connection of an `H2Client`, with its keepalive and wait bounds.
 *
 * @example
 * ```ts ignore
 * const session = new Session(socket, options, 10_000, () => {});
 * if (session.conn.canOpenStream) session.open(block, true);
 * ```
 */
export class Session {
  /** The session's connection. */
  readonly conn: Connection;
  readonly #waiters = new Set<Waiter>();
  /** Streams whose body may wait on the send window. */
  readonly #watched = new Set<H2Stream>();
  readonly #interval: number;
  readonly #pingTimeout: number;
  readonly #waitTimeout: number;
  readonly #tickMs: number;
  #ticker?: ReturnType<typeof setTimeout>;
  #pingTimer?: ReturnType<typeof setTimeout>;
  #lastPing = 0;
  #ended = false;

  /**
   * `interval`: the client's keepalive interval now; `onTooManyPings`: the server ended
   * the connection for our PINGs.
   */
  constructor(
    socket: ByteStream,
    options: H2ClientOptions,
    interval: number,
    onTooManyPings: () => void,
  ) {
    this.#interval = interval;
    this.#pingTimeout = options.keepaliveTimeoutMs ?? 20_000;
    this.#waitTimeout = options.waitTimeoutMs ?? 30_000;
    this.#tickMs = Math.max(1, Math.min(this.#interval, this.#waitTimeout / 2));
    this.conn = new Connection(socket, {
      role: "client",
      initialWindowSize: options.streamWindowSize ?? 2 * 1024 * 1024,
      connectionWindowSize: options.connectionWindowSize ?? 8 * 1024 * 1024,
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      // Each stream's wait on the window is bounded here, not the whole connection's.
      stallTimeoutMs: MAX_TIMER_MS,
      onCapacity: () => this.#wake(),
      onGoAway: (_last, code, debug) => {
        if (code === ENHANCE_YOUR_CALM && debug === "too_many_pings") onTooManyPings();
        this.#wakeAll();
      },
      onTerminate: () => this.#end(),
    });
  }

  /** Whether new calls may start here (now, or once a slot frees). */
  get usable(): boolean {
    return !this.conn.isClosing;
  }

  /** Opens a stream now (the caller checked `conn.canOpenStream`). */
  open(block: Uint8Array, endStream: boolean): H2Stream {
    const stream = this.conn.openStream(block, endStream);
    if (stream.id + 2 > MAX_STREAM_ID) {
      // Out of stream ids: the streams open finish, later calls get a new connection.
      this.conn.goAway();
    }
    this.#activity();
    return stream;
  }

  /** Has the wait bound apply to a stream whose body may wait on the send window. */
  watch(stream: H2Stream): void {
    if (stream.isClosed || stream.sendEnded) return;
    this.#watched.add(stream);
    this.#activity();
  }

  /**
   * Waits until the connection takes a new stream or begins to close. Rejects
   * UNAVAILABLE after the wait bound, or with the signal's reason.
   */
  slot(signal: AbortSignal | undefined): Promise<void> {
    const conn = this.conn;
    if (conn.canOpenStream || conn.isClosing) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        wake: () => {
          if (!conn.canOpenStream && !conn.isClosing) return;
          done();
          resolve();
        },
      };
      const onAbort = () => (done(), reject(signal!.reason));
      const timer = setTimeout(() => {
        done();
        reject(
          new ConnectError(
            `HTTP/2: no stream slot within ${this.#waitTimeout} ms ` +
              "(the server's MAX_CONCURRENT_STREAMS stays reached)",
            Code.Unavailable,
          ),
        );
      }, this.#waitTimeout);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
      this.#activity();
    });
  }

  /** Closes the connection now. */
  close(error: Http2Error): void {
    this.conn.close(error);
  }

  /** Slots may have freed: wakes as many waiters as there are. */
  #wake(): void {
    if (this.#waiters.size === 0) return;
    if (this.conn.isClosing) return this.#wakeAll();
    let available = this.conn.availableStreams;
    for (const waiter of [...this.#waiters]) {
      if (available-- <= 0) break;
      waiter.wake();
    }
  }

  #wakeAll(): void {
    for (const waiter of [...this.#waiters]) waiter.wake();
  }

  #end(): void {
    this.#ended = true;
    clearTimeout(this.#ticker);
    clearTimeout(this.#pingTimer);
    this.#ticker = this.#pingTimer = undefined;
    this.#watched.clear();
    this.#wakeAll();
  }

  /** A stream or a waiter appeared: keep the ticker running. */
  #activity(): void {
    if (this.#ticker === undefined && !this.#ended) {
      this.#ticker = setTimeout(this.#tick, this.#tickMs);
    }
  }

  /** When the next PING is due: the interval after the last thing heard (or sent). */
  #pingDue(): number {
    return Math.max(this.conn.lastReceivedAt, this.#lastPing) + this.#interval;
  }

  readonly #tick = (): void => {
    this.#ticker = undefined;
    if (this.#ended) return;
    const conn = this.conn;
    if (conn.activeStreams === 0 && this.#waiters.size === 0) return;
    const now = Date.now();
    // Only a quiet server is pinged: grpc-go counts PINGs that come sooner than its
    // MinTime after the last one as strikes unless it has sent something since.
    if (this.#pingTimer === undefined && now >= this.#pingDue()) this.#ping(now);
    for (const stream of this.#watched) {
      if (stream.isClosed || stream.sendEnded) {
        this.#watched.delete(stream);
      } else if (stream.blockedAt > 0 && now - stream.blockedAt >= this.#waitTimeout) {
        this.#watched.delete(stream);
        stalled.set(
          stream,
          new ConnectError(
            `HTTP/2: the server gave no send window for ${now - stream.blockedAt} ms`,
            Code.Unavailable,
          ),
        );
        stream.reset(CANCEL);
      }
    }
    if (this.#ticker === undefined && !this.#ended) {
      // Wake when the next PING is due rather than up to a tick after it.
      const delay = this.#pingTimer === undefined
        ? Math.min(this.#tickMs, Math.max(1, this.#pingDue() - now))
        : this.#tickMs;
      this.#ticker = setTimeout(this.#tick, delay);
    }
  };

  #ping(now: number): void {
    this.#lastPing = now;
    const timeout = this.#pingTimeout;
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      this.close(
        new Http2Error(`the server did not answer a PING within ${timeout} ms`, NO_ERROR, {
          connection: true,
        }),
      );
    }, timeout);
    this.conn.ping().then(
      () => {
        clearTimeout(this.#pingTimer);
        this.#pingTimer = undefined;
      },
      () => {
        clearTimeout(this.#pingTimer);
        this.#pingTimer = undefined;
      },
    );
  }
}
