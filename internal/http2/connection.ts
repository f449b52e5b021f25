/**
 * One HTTP/2 connection (RFC 9113) over a {@linkcode ByteStream}, for both roles: the
 * server (peer-opened, odd streams) and the client (streams we open). It keeps the
 * stream states of section 5.1, both sides' SETTINGS, flow control both ways, PING,
 * GOAWAY, RST_STREAM, CONTINUATION assembly, padding, header validation (RFC 9113
 * section 8.2 and 8.3) and the limits that keep a hostile peer cheap. No runtime
 * globals: only web ones (setTimeout, queueMicrotask, AbortController).
 *
 * ## API
 *
 * ```ts ignore
 * const connection = new Connection(socket, {
 *   role: "server",                 // or "client"
 *   prefix,                         // bytes already read from the socket, if any
 *   onStream: (stream) => {},       // server: a peer opened a stream with a valid head
 *   // our settings and limits: see ConnectionOptions
 * });
 * await connection.closed;          // resolves once the socket is closed (never rejects)
 * ```
 *
 * - Client: `connection.openStream(headerFields, endStream)` sends HEADERS on a new
 *   stream (ids in order) and returns its {@linkcode H2Stream}; `canOpenStream` and
 *   `availableStreams` say whether the peer takes more now, `onCapacity` (an option)
 *   is called whenever that may have changed. The answer's head arrives through
 *   `stream.head()` (or `stream.onHead`), 1xx heads through `stream.onInformational`.
 * - Both: `stream.read()` / `for await (const chunk of stream)` / `stream.readAll(limit)`
 *   / `stream.bufferedBody()` read the peer's body; our receive windows are refilled as
 *   the body is consumed, so a slow reader pushes back on the peer. `stream.trailers`
 *   holds the peer's trailers once `stream.receivedEnd`.
 * - Both: `stream.sendHeaders(fields, endStream)`, `stream.write(bytes)` (false: wait
 *   for `stream.whenWritable()`, about 64 KiB are queued), `stream.end(trailers?)`.
 *   Writes are queued per stream and sent as the peer's windows allow; frames made in
 *   one turn of the event loop go out in one socket write.
 * - Both: `stream.reset(code)`, `stream.signal` (aborts when the stream is reset, by
 *   either side, or the connection is lost), `stream.onClose`.
 * - Both: `connection.ping()` (resolves with the round trip in ms), `goAway(code)`
 *   (graceful with NO_ERROR: the peer's streams up to now finish, then the connection
 *   closes), `close(error?)` (now), `onGoAway` (an option: the peer's GOAWAY).
 *
 * Header fields travel flat: `[name, value, name, value, …]`, names lower case, byte
 * strings (one character per byte). Failures are {@linkcode Http2Error}s: `code` is the
 * RFC 9113 error code, `remote` says whether the peer sent it, `unprocessed` whether
 * the peer never processed the stream (REFUSED_STREAM, or above a GOAWAY's last
 * stream id), so that a client may retry it.
 *
 * ## Where things are
 *
 * This module holds a connection's state, its public surface and its end (errors,
 * GOAWAY, closing); the rest works on that state through free functions: `stream.ts`
 * (one stream), `inbound.ts` (the read loop and most frames), `inbound_headers.ts`
 * (header blocks), `flow.ts` (framing our output as the windows allow, giving ours
 * back), `output.ts` (the output buffer), `settings.ts` (SETTINGS both ways),
 * `defences.ts` (timers and the rapid-reset count), `header_block.ts` (validation),
 * `reset_memory.ts` (the streams we reset, whose late frames are ignored).
 *
 * @module
 */
import type { ByteStream } from "../runtime/types.ts";
import { armHeaderTimer, armIdleTimer } from "./defences.ts";
import { Http2Error, messageOf } from "./errors.ts";
import { creditConnection, pumpAll } from "./flow.ts";
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  errorName,
  FRAME_PING,
  INTERNAL_ERROR,
  MAX_MAX_FRAME,
  MAX_WINDOW,
  NO_ERROR,
  REFUSED_STREAM,
  writeUint32,
} from "./frames.ts";
import { HpackDecoder } from "./hpack.ts";
import { readLoop } from "./inbound.ts";
import type { PartialBlock } from "./inbound_headers.ts";
import { frame, PING_TAG, rememberReset, requestFlush, rstFrame, sendGoAway } from "./output.ts";
import { ResetIds } from "./reset_memory.ts";
import { sendPreface } from "./settings.ts";
import { H2Stream } from "./stream.ts";

/**
 * Which end of the connection we are.
 *
 * @example
 * ```ts
 * import type { Role } from "./connection.ts";
 * const role: Role = "server";
 * ```
 */
export type Role = "client" | "server";

/**
 * Everything a {@linkcode Connection} can be told. Sizes are in bytes, times in ms.
 *
 * @example
 * ```ts
 * import type { ConnectionOptions } from "./connection.ts";
 * const options: ConnectionOptions = { role: "server", maxConcurrentStreams: 100 };
 * ```
 */
export interface ConnectionOptions {
  /** Which end we are. */
  role: Role;
  /** Bytes the caller already read from the socket. */
  prefix?: Uint8Array;
  /** Server: a peer opened a stream and its head is valid. Throwing resets the stream. */
  onStream?: (stream: H2Stream) => void;
  /** The peer sent GOAWAY (streams above `lastStreamId` have already failed). */
  onGoAway?: (lastStreamId: number, code: number, debug: string) => void;
  /** Client: streams may have become available (one closed, or the peer's SETTINGS). */
  onCapacity?: () => void;
  /** The connection failed or began to close (its streams have just failed, if any). */
  onTerminate?: (failure: Http2Error) => void;
  /** Advertised: how many streams the peer may open at once (server). Default 1000. */
  maxConcurrentStreams?: number;
  /** Advertised: each stream's receive window. Default 1 MiB. */
  initialWindowSize?: number;
  /** The connection's receive window. Default 4 MiB. */
  connectionWindowSize?: number;
  /** Advertised: the largest frame we take. Default 16 384. */
  maxFrameSize?: number;
  /** Advertised: the largest header list we take, as RFC 9113 6.5.2 counts. Default 65 536. */
  maxHeaderListSize?: number;
  /** Encoded header block bytes past which we GOAWAY ENHANCE_YOUR_CALM. */
  maxHeaderBlockBytes?: number;
  /** CONTINUATION frames in one block past which we GOAWAY ENHANCE_YOUR_CALM. Default 1000. */
  maxContinuations?: number;
  /** Streams the peer may reset before their answer is done, per 10 s. */
  maxPeerResets?: number;
  /** Unwritten output the peer made us queue (ACKs, resets) past which we give up. 1 MiB. */
  maxQueuedControlBytes?: number;
  /** The same in frames. Default 10 000. */
  maxQueuedControlFrames?: number;
  /** SETTINGS entries in one frame past which the peer is abusive. Default 64. */
  maxSettingsEntries?: number;
  /** Data waiting on a zero send window this long: GOAWAY ENHANCE_YOUR_CALM. 30 000. */
  stallTimeoutMs?: number;
  /**
   * Header blocks must arrive whole within this: the first request's (server, from the
   * start) and every later block from its first frame. GOAWAY NO_ERROR, then close.
   */
  headerTimeoutMs?: number;
  /** No open stream for this long: GOAWAY NO_ERROR, then close. */
  idleTimeoutMs?: number;
  /** A stream's queued output past which `write` returns false. Default 64 KiB. */
  streamHighWaterMark?: number;
}

/** A written output buffer this small is kept for the next write. */
const SPARE_LIMIT = 1024 * 1024;
/** How long a closing connection waits for its last bytes to go out and drains input. */
const LINGER_MS = 3_000;
const EMPTY = new Uint8Array(0);

/**
 * One HTTP/2 connection; see the module documentation. Its fields marked internal are
 * the engine's (the modules of this folder), not its users'.
 *
 * @example
 * ```ts ignore
 * const connection = new Connection(socket, { role: "client" });
 * const stream = connection.openStream([
 *   ":method", "GET", ":scheme", "http", ":authority", "localhost", ":path", "/",
 * ], true);
 * const head = await stream.head();
 * const body = await stream.readAll(1024 * 1024);
 * ```
 */
export class Connection {
  /** Which end we are. */
  readonly role: Role;
  /** @internal A stream's queued output past which `write` returns false. */
  readonly streamHighWater: number;
  /** @internal */ readonly socket: ByteStream;
  /** @internal */ readonly options: ConnectionOptions;
  /** @internal The open streams by id. */ readonly streams = new Map<number, H2Stream>();
  /** @internal */ readonly decoder: HpackDecoder;
  /** @internal The highest stream id the peer opened. */ lastPeerId = 0;
  /** @internal */ nextLocalId: number;
  /** @internal */ peerOpen = 0;
  /** @internal */ localOpen = 0;
  /** @internal Peer stream ids skipped over (never opened): [from, to] pairs, oldest first. */
  skipped: number[] = [];
  /** @internal Streams we reset (see `rememberReset`). */ readonly resetByUs = new ResetIds();
  // Our settings (advertised) and the receive side.
  /** @internal */ readonly maxStreams: number;
  /** @internal Our INITIAL_WINDOW_SIZE, once the peer acknowledges it. */
  readonly localWindow: number;
  /** @internal */ recvInitialWindow = DEFAULT_WINDOW;
  /** @internal */ settingsAcked = false;
  /** @internal */ readonly connWindow: number;
  /** @internal */ recvWindow = DEFAULT_WINDOW;
  /** @internal */ connUnacked = 0;
  /** @internal */ readonly maxFrame: number;
  /** @internal */ readonly maxHeaderList: number;
  /** @internal */ readonly maxHeaderBlock: number;
  /** @internal */ readonly maxContinuations: number;
  // The peer's settings and our send side.
  /** @internal */ peerMaxFrame = DEFAULT_MAX_FRAME;
  /** @internal */ peerInitialWindow = DEFAULT_WINDOW;
  /** @internal */ peerMaxStreams = Infinity;
  /** @internal */ peerMaxHeaderList = Infinity;
  /** @internal */ sendWindow = DEFAULT_WINDOW;
  /** @internal */ settingsReceived = false;
  /** @internal The header block being assembled. */ partial?: PartialBlock;
  // GOAWAY both ways: the last stream id, or -1.
  /** @internal */ goAwaySent = -1;
  /** @internal */ goAwayReceived = -1;
  // Abuse accounting.
  /** @internal */ resets = 0;
  /** @internal */ resetsSince = 0;
  /** @internal */ readonly maxResets: number;
  // Output: the buffer frames are encoded into, and what is being written.
  /** @internal */ out = new Uint8Array(16 * 1024);
  /** @internal */ outLen = 0;
  /** @internal */ inflight = 0;
  /** @internal */ writing = false;
  /** @internal */ flushQueued = false;
  /** @internal */ controlFrames = 0;
  /** @internal */ controlBytes = 0;
  /** @internal */ inflightControlFrames = 0;
  /** @internal */ inflightControlBytes = 0;
  /** @internal Socket writes completed: the read loop waits for at most one. */
  writesDone = 0;
  /** @internal Streams with output waiting on a window or on room. */
  readonly pending = new Set<H2Stream>();
  /** @internal Pings we sent, by payload. */
  readonly pings = new Map<
    number,
    { sent: number; resolve: (ms: number) => void; reject: (e: unknown) => void }
  >();
  // Timers.
  /** @internal */ headerTimer?: ReturnType<typeof setTimeout>;
  /** @internal */ awaitingFirstHead: boolean;
  /** @internal */ idleTimer?: ReturnType<typeof setTimeout>;
  /** @internal */ idleSince = 0;
  /** @internal */ stallTimer?: ReturnType<typeof setTimeout>;
  /** @internal When bytes last came in (per read): keepalive pings only a quiet peer. */
  receivedAt = Date.now();
  // The end.
  /** @internal Why the connection failed or closed. */ error?: Http2Error;
  /** @internal */ terminating = false;
  /** @internal */ socketClosed = false;
  #spare?: Uint8Array<ArrayBuffer>;
  #pingSeq = 0;
  #lingerTimer?: ReturnType<typeof setTimeout>;
  #resolveClosed!: () => void;
  /** Resolves once the socket is closed; never rejects. */
  readonly closed: Promise<void>;

  /**
   * Starts the connection on `socket`: a client sends its preface at once, a server
   * once the client's has come.
   */
  constructor(socket: ByteStream, options: ConnectionOptions) {
    this.socket = socket;
    this.options = options;
    this.role = options.role;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.nextLocalId = options.role === "client" ? 1 : 2;
    this.maxStreams = options.maxConcurrentStreams ?? 1000;
    this.localWindow = Math.min(options.initialWindowSize ?? 1024 * 1024, MAX_WINDOW);
    this.connWindow = Math.min(
      Math.max(options.connectionWindowSize ?? 4 * 1024 * 1024, DEFAULT_WINDOW),
      MAX_WINDOW,
    );
    this.maxFrame = Math.min(
      Math.max(options.maxFrameSize ?? DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME),
      MAX_MAX_FRAME,
    );
    this.maxHeaderList = options.maxHeaderListSize ?? 65_536;
    this.maxHeaderBlock = options.maxHeaderBlockBytes ??
      Math.max(4 * this.maxHeaderList, 256 * 1024);
    this.maxContinuations = options.maxContinuations ?? 1000;
    this.maxResets = options.maxPeerResets ?? Math.max(1000, 2 * this.maxStreams);
    this.streamHighWater = options.streamHighWaterMark ?? 64 * 1024;
    this.decoder = new HpackDecoder(4096);
    this.awaitingFirstHead = options.role === "server";

    // A server sends its SETTINGS once the client's preface is in: a peer that is no
    // HTTP/2 client gets nothing but a GOAWAY.
    if (options.role === "client") sendPreface(this);
    requestFlush(this);
    if (options.headerTimeoutMs !== undefined && this.awaitingFirstHead) armHeaderTimer(this);
    this.idleSince = Date.now();
    if (options.idleTimeoutMs !== undefined) armIdleTimer(this, options.idleTimeoutMs);
    readLoop(this, options.prefix ?? EMPTY);
  }

  // ---------------------------------------------------------------- public

  /** Streams open now (both directions). */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Why the connection failed or closed, once it did. */
  get failure(): Http2Error | undefined {
    return this.error;
  }

  /** When the peer last sent anything (`Date.now()` of the last read; opening, before that). */
  get lastReceivedAt(): number {
    return this.receivedAt;
  }

  /** Whether the connection is closing or closed. */
  get isClosing(): boolean {
    return this.terminating || this.goAwaySent >= 0 || this.goAwayReceived >= 0;
  }

  /** The peer's SETTINGS_MAX_HEADER_LIST_SIZE (Infinity if it sent none). */
  get peerMaxHeaderListSize(): number {
    return this.peerMaxHeaderList;
  }

  /** Client: how many more streams the peer takes now. */
  get availableStreams(): number {
    if (!this.canOpenStream) return 0;
    const ids = Math.floor((MAX_WINDOW - this.nextLocalId) / 2) + 1;
    return Math.max(0, Math.min(this.peerMaxStreams - this.localOpen, ids));
  }

  /** Client: whether `openStream` would succeed now. */
  get canOpenStream(): boolean {
    return !this.terminating && this.goAwayReceived < 0 && this.goAwaySent < 0 &&
      this.nextLocalId <= MAX_WINDOW && this.localOpen < this.peerMaxStreams;
  }

  /** Client: opens a stream with its head (`fields` flat or an encoded block). */
  openStream(fields: readonly string[] | Uint8Array, endStream: boolean): H2Stream {
    if (!this.canOpenStream) {
      throw this.error ??
        new Http2Error("the connection takes no new streams now", REFUSED_STREAM, {
          unprocessed: true,
          connection: true,
        });
    }
    const id = this.nextLocalId;
    this.nextLocalId += 2;
    const stream = new H2Stream(this, id, this.peerInitialWindow, this.recvInitialWindow);
    this.streams.set(id, stream);
    this.localOpen++;
    if (!(fields instanceof Uint8Array)) {
      for (let i = 0; i < fields.length; i += 2) {
        if (fields[i] === ":method") stream.isHead = fields[i + 1] === "HEAD";
      }
    }
    stream.sendHeaders(fields, endStream);
    return stream;
  }

  /** Sends a PING; resolves with the round trip in ms once the ACK comes. */
  ping(): Promise<number> {
    if (this.terminating) return Promise.reject(this.error ?? this.closedError());
    const seq = ++this.#pingSeq;
    const at = frame(this, 8, FRAME_PING, 0, 0);
    writeUint32(this.out, at, PING_TAG);
    writeUint32(this.out, at + 4, seq);
    requestFlush(this);
    return new Promise((resolve, reject) => {
      this.pings.set(seq, { sent: Date.now(), resolve, reject });
    });
  }

  /**
   * Sends GOAWAY. NO_ERROR is graceful: streams the peer opened so far (and ours) finish,
   * new ones are refused, and the connection closes once none is left. Any other code
   * ends the connection now.
   */
  goAway(code: number = NO_ERROR, debug = ""): void {
    if (this.terminating) return;
    if (code !== NO_ERROR) {
      this.connectionError(code, debug || errorName(code));
      return;
    }
    if (this.goAwaySent >= 0) return;
    sendGoAway(this, NO_ERROR, debug);
    this.closeIfDone();
  }

  /** Closes the connection now: streams fail with `error` (or a plain "closed"). */
  close(error?: Error): void {
    if (this.terminating) return;
    const failure = error instanceof Http2Error
      ? error
      : new Http2Error(error?.message ?? "the connection was closed", NO_ERROR, {
        connection: true,
        cause: error,
      });
    this.terminate(failure, false);
  }

  // ------------------------------------------------------- stream lifecycle

  /** @internal Resets a stream from our side. */
  resetStream(stream: H2Stream, code: number, message: string): void {
    if (stream.closed || this.terminating) return;
    rstFrame(this, stream.id, code, false);
    this.closeStream(stream, new Http2Error(message, code), true);
  }

  /**
   * @internal A stream is done: `error` if it failed; `byUs` if we reset it;
   * `readerError` for its reader if the peer's side had not ended.
   */
  closeStream(
    stream: H2Stream,
    error: Http2Error | undefined,
    byUs: boolean,
    readerError?: Http2Error,
  ): void {
    if (stream.closed) return;
    this.streams.delete(stream.id);
    this.pending.delete(stream);
    if (this.isLocal(stream.id)) this.localOpen--;
    else this.peerOpen--;
    if (byUs) rememberReset(this, stream.id);
    // Body bytes nobody read yet need not hold the connection window any longer.
    const held = stream.bufferedBytes;
    if (held > 0 && !this.terminating) creditConnection(this, held);
    stream.settled = true;
    stream.finish(error ?? (stream.recvEnded ? undefined : readerError));
    if (this.streams.size === 0) this.idleSince = Date.now();
    if (this.role === "client") this.options.onCapacity?.();
    this.closeIfDone();
  }

  /** @internal After a GOAWAY either way, the last stream's end ends the connection. */
  closeIfDone(): void {
    if (this.terminating || this.streams.size > 0) return;
    if (this.goAwaySent >= 0 || this.goAwayReceived >= 0) {
      this.terminate(this.closedError(), false);
    }
  }

  /** @internal Whether `id` is of a stream we open. */
  isLocal(id: number): boolean {
    return (id & 1) === (this.role === "client" ? 1 : 0);
  }

  /** @internal Whether `id` names a stream that was never opened and may still be. */
  isIdle(id: number): boolean {
    return this.isLocal(id) ? id >= this.nextLocalId : id > this.lastPeerId;
  }

  // ------------------------------------------------------------------ the end

  /** @internal A stream error (RFC 9113 section 5.4.2): RST_STREAM, the connection lives. */
  streamError(stream: H2Stream | number, code: number, message: string): void {
    if (typeof stream === "number") {
      rstFrame(this, stream, code, true);
      return;
    }
    if (stream.closed) return;
    rstFrame(this, stream.id, code, true);
    this.closeStream(stream, new Http2Error(`HTTP/2 ${errorName(code)}: ${message}`, code), true);
  }

  /** @internal A connection error (RFC 9113 section 5.4.1): GOAWAY, then close. */
  connectionError(code: number, message: string, dropOutput = false): void {
    if (this.terminating) return;
    if (dropOutput) {
      this.outLen = 0;
      this.controlFrames = 0;
      this.controlBytes = 0;
    }
    sendGoAway(this, code, message);
    this.terminate(
      new Http2Error(`HTTP/2 ${errorName(code)}: ${message}`, code, { connection: true }),
      true,
    );
  }

  /** @internal A time bound passed: GOAWAY NO_ERROR (`debug`), then close. */
  timedOut(debug: string, message: string): void {
    if (this.terminating) return;
    sendGoAway(this, NO_ERROR, debug);
    this.terminate(new Http2Error(message, NO_ERROR, { connection: true }), true);
  }

  /** @internal Reading or writing the socket failed (`doing` says which): close now. */
  lost(doing: string, error: unknown): void {
    this.terminate(
      new Http2Error(`${doing} the connection failed: ${messageOf(error)}`, INTERNAL_ERROR, {
        connection: true,
        cause: error,
      }),
      false,
    );
    this.closeSocket();
  }

  /** @internal Fails every stream and closes once the output is written (or after a while). */
  terminate(error: Http2Error, sentGoAway: boolean): void {
    if (this.terminating) return;
    this.terminating = true;
    this.error = error;
    clearTimeout(this.headerTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.stallTimer);
    for (const stream of [...this.streams.values()]) {
      if (!stream.closed) {
        const unprocessed = this.isLocal(stream.id) && this.goAwayReceived >= 0 &&
          stream.id > this.goAwayReceived;
        this.closeStream(
          stream,
          new Http2Error(error.message, error.code, {
            remote: error.remote,
            unprocessed: unprocessed || error.unprocessed,
            connection: true,
            cause: error.cause,
          }),
          false,
        );
      }
    }
    this.pending.clear();
    for (const ping of this.pings.values()) ping.reject(error);
    this.pings.clear();
    try {
      this.options.onTerminate?.(error);
    } catch {
      // A listener's failure is its own.
    }
    if (this.socketClosed) return;
    // Queued output still goes (a GOAWAY last), unless the socket is gone.
    this.#lingerTimer = setTimeout(() => this.closeSocket(), LINGER_MS);
    if (sentGoAway || this.outLen > 0) requestFlush(this);
    if (!this.writing && !this.flushQueued) this.#afterFinalFlush();
  }

  /** The last bytes are out: close soon. */
  #afterFinalFlush(): void {
    if (this.outLen > 0) return;
    // Not at once: closing with unread input makes the kernel send RST, which can destroy
    // the GOAWAY before the peer reads it. After a graceful end the read loop drains
    // input (and closes at the peer's end of stream), so a moment is enough; a peer we
    // stopped reading gets a second to read the GOAWAY before the reset.
    clearTimeout(this.#lingerTimer);
    const failure = this.error;
    const abusive = failure !== undefined && failure.code !== NO_ERROR && !failure.remote;
    this.#lingerTimer = setTimeout(() => this.closeSocket(), abusive ? 1_000 : 50);
  }

  /** @internal Closes the socket now; `closed` resolves. */
  closeSocket(): void {
    if (this.socketClosed) return;
    this.socketClosed = true;
    clearTimeout(this.#lingerTimer);
    clearTimeout(this.headerTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.stallTimer);
    try {
      this.socket.close();
    } catch {
      // Already closed.
    }
    if (!this.terminating) this.terminate(this.closedError(), false);
    this.#resolveClosed();
  }

  /** @internal The failure of a connection that closed normally. */
  closedError(): Http2Error {
    return new Http2Error("the connection is closed", NO_ERROR, { connection: true });
  }

  // ------------------------------------------------------------------ writing

  /** @internal What `requestFlush` queues: writes the output unless a write runs. */
  readonly flushNow = (): void => {
    this.flushQueued = false;
    if (!this.writing) this.#flush();
  };

  /** Writes the output until none is left, one socket write per batch of frames. */
  async #flush(): Promise<void> {
    this.writing = true;
    try {
      while (this.outLen > 0 && !this.socketClosed) {
        const bytes = this.out.subarray(0, this.outLen);
        const buffer = this.out;
        this.out = this.#spare ?? new Uint8Array(16 * 1024);
        this.#spare = undefined;
        this.outLen = 0;
        this.inflight = bytes.length;
        this.inflightControlFrames = this.controlFrames;
        this.inflightControlBytes = this.controlBytes;
        this.controlFrames = 0;
        this.controlBytes = 0;
        for (let at = 0; at < bytes.length;) at += await this.socket.write(bytes.subarray(at));
        this.writesDone++;
        this.inflight = 0;
        this.inflightControlFrames = 0;
        this.inflightControlBytes = 0;
        if (buffer.length <= SPARE_LIMIT) this.#spare = buffer;
        if (!this.terminating) pumpAll(this);
      }
    } catch (error) {
      this.writing = false;
      this.lost("writing to", error);
      return;
    }
    this.writing = false;
    if (this.terminating) this.#afterFinalFlush();
  }
}
