/**
 * One stream of a connection: its state (RFC 9113 section 5.1) as both ends see it, the
 * peer's body held until read (our windows are given back as it is consumed, so a slow
 * reader pushes back on the peer), and our output queued until the peer's windows take
 * it. The connection frames what is queued (`flow.ts`) and delivers what arrives.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import type { Connection } from "./connection.ts";
import { BodyTooLarge, Http2Error } from "./errors.ts";
import { consumed, pumpStream, sendHeaderBlock } from "./flow.ts";
import { errorName, NO_ERROR, PROTOCOL_ERROR } from "./frames.ts";
import type { HeaderBlock } from "./header_block.ts";
import { encodeFlatHeaderBlock } from "./hpack_encoder.ts";

/** A waiter on a stream (reader or writer). */
type Wake = () => void;

/**
 * One stream of a {@linkcode Connection}. Made by the connection (the peer opened it,
 * or `openStream`); its fields not documented as public are the connection's.
 *
 * @example
 * ```ts ignore
 * const body = await stream.readAll(4 * 1024 * 1024);
 * stream.sendHeaders([":status", "200", "content-type", "text/plain"], false);
 * stream.write(new TextEncoder().encode("hello"));
 * stream.end(["x-checksum", "abc"]);
 * ```
 */
export class H2Stream {
  /** The stream id. */
  readonly id: number;
  /** The peer's head: the request (server) or the final response (client). */
  headValue?: HeaderBlock;
  /** The peer's trailers, once they came. */
  trailers?: HeaderBlock;
  /** Client: called with the final response head. */
  onHead?: (head: HeaderBlock) => void;
  /** Client: called with each 1xx head. */
  onInformational?: (head: HeaderBlock) => void;
  /** Called once when the stream closes; `error` unless both sides ended normally. */
  onClose?: (error: Http2Error | undefined) => void;

  // --- the connection's ---
  /** @internal */ readonly conn: Connection;
  /** @internal */ sendWindow: number;
  /** @internal */ recvWindow: number;
  /** @internal Consumed bytes not yet given back to the peer. */ unacked = 0;
  /** @internal Received body bytes, for content-length. */ received = 0;
  /** @internal */ recvEnded = false;
  /** @internal */ headersSent = false;
  /** @internal END_STREAM requested by us. */ endQueued = false;
  /** @internal END_STREAM framed. */ sendEnded = false;
  /** @internal */ closed = false;
  /** @internal */ error?: Http2Error;
  /** @internal */ outChunks: Uint8Array[] = [];
  /** @internal */ outOffset = 0;
  /** @internal */ outBytes = 0;
  /** @internal */ trailerBlock?: Uint8Array;
  /** @internal When data last waited on a zero window, or 0. */ blockedAt = 0;
  /** @internal Whether conn window credit for the body is settled (closed). */ settled = false;
  /** @internal Client: a HEAD request, whose answer's content-length has no body. */ isHead =
    false;

  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Of the bytes held, those already given back to the peer's windows (readAll's). */
  #credited = 0;
  #discard = false;
  #readWake?: Wake;
  #writeWake?: Wake;
  #collect?: {
    limit: number;
    resolve: (body: Uint8Array) => void;
    reject: (error: unknown) => void;
  };
  #controller?: AbortController;
  #headWaiters?: { resolve: (head: HeaderBlock) => void; reject: (error: unknown) => void }[];

  /** @internal */
  constructor(conn: Connection, id: number, sendWindow: number, recvWindow: number) {
    this.conn = conn;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Whether the peer's END_STREAM came. */
  get receivedEnd(): boolean {
    return this.recvEnded;
  }

  /** Whether the stream is closed (both sides ended, or it was reset). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Why the stream failed, if it did. */
  get failure(): Http2Error | undefined {
    return this.error;
  }

  /** Aborts when the stream is reset (either side) or the connection is lost. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.error) this.#controller.abort(this.error);
    }
    return this.#controller.signal;
  }

  /** Client: the final response head. */
  head(): Promise<HeaderBlock> {
    if (this.headValue) return Promise.resolve(this.headValue);
    if (this.error) return Promise.reject(this.error);
    if (this.closed) return Promise.reject(new Http2Error("the stream closed", NO_ERROR));
    return new Promise((resolve, reject) => (this.#headWaiters ??= []).push({ resolve, reject }));
  }

  /** Whether `write` may go on without waiting. */
  get writable(): boolean {
    return this.outBytes < this.conn.streamHighWater;
  }

  /** Sends a header block (the head, before any body). */
  sendHeaders(fields: readonly string[] | Uint8Array, endStream: boolean): void {
    if (this.closed || this.endQueued) return;
    if (this.outBytes > 0) throw new Error("headers after body bytes; trailers go with end()");
    const block = fields instanceof Uint8Array ? fields : encodeFlatHeaderBlock(fields);
    this.headersSent = true;
    if (endStream) this.endQueued = true;
    sendHeaderBlock(this.conn, this, block, endStream);
  }

  /** Queues body bytes (kept, not copied: do not change them). False: wait for `whenWritable()`. */
  write(bytes: Uint8Array): boolean {
    if (this.closed || this.endQueued) return true;
    if (!this.headersSent) throw new Error("body bytes before the headers");
    if (bytes.length > 0) {
      this.outChunks.push(bytes);
      this.outBytes += bytes.length;
      pumpStream(this.conn, this);
    }
    return this.outBytes < this.conn.streamHighWater;
  }

  /** Resolves once `write` may go on (or the stream closed). */
  whenWritable(): Promise<void> {
    if (this.closed || this.outBytes < this.conn.streamHighWater) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#writeWake;
      this.#writeWake = () => (previous?.(), resolve());
    });
  }

  /**
   * Queues the last body bytes and ends our side: with the windows open they go as one
   * DATA frame carrying END_STREAM (kept, not copied).
   */
  writeLast(bytes: Uint8Array): void {
    if (this.closed || this.endQueued) return;
    this.endQueued = true;
    if (bytes.length > 0) {
      this.outChunks.push(bytes);
      this.outBytes += bytes.length;
    }
    pumpStream(this.conn, this);
  }

  /** Ends our side: after the queued body, trailers (a header block) if given. */
  end(trailers?: readonly string[] | Uint8Array): void {
    if (this.closed || this.endQueued) return;
    if (!this.headersSent) throw new Error("the end of a stream before its headers");
    this.endQueued = true;
    if (trailers !== undefined) {
      this.trailerBlock = trailers instanceof Uint8Array
        ? trailers
        : encodeFlatHeaderBlock(trailers);
    }
    pumpStream(this.conn, this);
  }

  /** Resets the stream (RST_STREAM `code`); what is queued is dropped. */
  reset(code = 0x8): void {
    this.conn.resetStream(this, code, `reset by us: ${errorName(code)}`);
  }

  /** The next body chunk; null at the end. Rejects if the stream failed. */
  read(): Promise<Uint8Array | null> {
    const chunk = this.#take();
    if (chunk !== undefined) return Promise.resolve(chunk);
    if (this.error) return Promise.reject(this.error);
    if (this.recvEnded || this.closed) return Promise.resolve(null);
    return new Promise<void>((resolve) => (this.#readWake = resolve)).then(() => this.read());
  }

  /** The body chunk by chunk. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** The next body chunk if one is already here (taken), else undefined: a read without a turn. */
  takeChunk(): Uint8Array | undefined {
    return this.#take();
  }

  /** The whole body if all of it has arrived (taken: reads see nothing more), else undefined. */
  bufferedBody(): Uint8Array | undefined {
    if (!this.recvEnded || this.error) return undefined;
    return this.#takeAll();
  }

  /** The whole body, rejecting with {@linkcode BodyTooLarge} once it passes `limit`. */
  readAll(limit: number): Promise<Uint8Array> {
    if (this.#buffered > limit) return Promise.reject(this.#overLimit(limit));
    if (this.recvEnded || this.error || this.closed) {
      if (this.error) return Promise.reject(this.error);
      return Promise.resolve(this.#takeAll());
    }
    // What readAll holds is bounded by its limit: the windows are given back as it
    // arrives, or a body larger than a window would never come whole.
    const uncredited = this.#buffered - this.#credited;
    this.#credited = this.#buffered;
    consumed(this.conn, this, uncredited);
    return new Promise((resolve, reject) => (this.#collect = { limit, resolve, reject }));
  }

  #overLimit(limit: number): BodyTooLarge {
    const error = new BodyTooLarge(limit, this.#takeAll());
    // What else comes is not kept, only counted back into the windows.
    this.#discard = true;
    return error;
  }

  #take(): Uint8Array | undefined {
    const chunk = this.#chunks.shift();
    if (chunk === undefined) return undefined;
    this.#buffered -= chunk.length;
    const already = Math.min(this.#credited, chunk.length);
    this.#credited -= already;
    consumed(this.conn, this, chunk.length - already);
    return chunk;
  }

  #takeAll(): Uint8Array {
    const chunks = this.#chunks;
    const total = this.#buffered;
    const uncredited = total - this.#credited;
    this.#chunks = [];
    this.#buffered = 0;
    this.#credited = 0;
    if (uncredited > 0) consumed(this.conn, this, uncredited);
    return chunks.length === 1 ? chunks[0] : concatBytes(chunks, total);
  }

  /** @internal Body bytes from the peer (already copied). */
  deliver(data: Uint8Array): void {
    if (this.#discard) {
      consumed(this.conn, this, data.length);
      return;
    }
    this.#chunks.push(data);
    this.#buffered += data.length;
    const collect = this.#collect;
    if (collect) {
      if (this.#buffered > collect.limit) {
        this.#collect = undefined;
        collect.reject(this.#overLimit(collect.limit));
        return;
      }
      this.#credited += data.length;
      consumed(this.conn, this, data.length);
      return;
    }
    this.#wakeReader();
  }

  /** @internal The peer's END_STREAM. */
  deliverEnd(): void {
    this.recvEnded = true;
    const collect = this.#collect;
    if (collect) {
      this.#collect = undefined;
      collect.resolve(this.#takeAll());
    }
    this.#wakeReader();
  }

  /** @internal Unread bytes still held. */
  get bufferedBytes(): number {
    return this.#buffered - this.#credited;
  }

  /** @internal The final head arrived. */
  deliverHead(head: HeaderBlock): void {
    this.headValue = head;
    for (const waiter of this.#headWaiters?.splice(0) ?? []) waiter.resolve(head);
    this.onHead?.(head);
  }

  /** @internal Output went below the high-water mark. */
  wakeWriter(): void {
    const wake = this.#writeWake;
    if (wake) {
      this.#writeWake = undefined;
      wake();
    }
  }

  #wakeReader(): void {
    const wake = this.#readWake;
    if (wake) {
      this.#readWake = undefined;
      wake();
    }
  }

  /** @internal Closed by the connection: `error` unless it ended normally. */
  finish(error: Http2Error | undefined): void {
    this.closed = true;
    this.outChunks = [];
    this.outBytes = 0;
    if (error) {
      this.error = error;
      this.#chunks = [];
      this.#buffered = 0;
      this.#credited = 0;
      this.#controller?.abort(error);
      const collect = this.#collect;
      this.#collect = undefined;
      collect?.reject(error);
      for (const waiter of this.#headWaiters?.splice(0) ?? []) waiter.reject(error);
    } else if (!this.headValue) {
      const missing = new Http2Error("the stream ended without a head", PROTOCOL_ERROR);
      for (const waiter of this.#headWaiters?.splice(0) ?? []) waiter.reject(missing);
    }
    this.#wakeReader();
    this.wakeWriter();
    try {
      this.onClose?.(error);
    } catch {
      // A listener's failure is its own.
    }
  }
}
