/**
 * A raw HTTP/2 client for tests that attack a server: it writes whatever frames a test
 * asks for (well-formed or not, in any order, as fast as it likes), reads and decodes
 * what comes back (GOAWAY and RST_STREAM codes, answers with their trailers), and can
 * stop reading altogether, as a peer that never reads does.
 *
 * Frame layouts are RFC 9113's; header blocks are built from RFC 7541 representations
 * (literals without indexing, plus the indexed forms an HPACK bomb needs).
 *
 * @module
 */
import { connect, type Socket } from "node:net";
import { type HeaderField, HpackDecoder } from "../internal/http2/hpack.ts";
import type { ByteStream } from "../internal/runtime/types.ts";

/** The client connection preface (RFC 9113, 3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame types (RFC 9113, 6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags (RFC 9113, 6). ACK and END_STREAM share a bit. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** SETTINGS parameters (RFC 9113, 6.5.2). */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Error codes (RFC 9113, 7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** An error code's RFC name (`0xb` → `ENHANCE_YOUR_CALM`), for assertion messages. */
export function errorName(code: number | undefined): string {
  if (code === undefined) return "none";
  const entry = Object.entries(ErrorCode).find(([, value]) => value === code);
  return entry ? entry[0] : `0x${code.toString(16)}`;
}

/** One frame as it was read. */
export interface Frame {
  /** The frame type. */
  type: number;
  /** Its flags. */
  flags: number;
  /** Its stream id (the reserved bit cleared). */
  id: number;
  /** Its payload, padding included. */
  payload: Uint8Array;
}

/** A frame: the 9-byte header and `payload`. */
export function encodeFrame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const bytes = new Uint8Array(9 + payload.length);
  bytes[0] = payload.length >>> 16;
  bytes[1] = (payload.length >>> 8) & 0xff;
  bytes[2] = payload.length & 0xff;
  bytes[3] = type;
  bytes[4] = flags;
  new DataView(bytes.buffer).setUint32(5, id);
  bytes.set(payload, 9);
  return bytes;
}

/** A SETTINGS frame with `pairs` (or an ACK, which carries none). */
export function settingsFrame(pairs: readonly [number, number][], ack = false): Uint8Array {
  const payload = new Uint8Array(6 * pairs.length);
  const view = new DataView(payload.buffer);
  pairs.forEach(([key, value], i) => {
    view.setUint16(6 * i, key);
    view.setUint32(6 * i + 2, value);
  });
  return encodeFrame(FrameType.SETTINGS, ack ? Flag.ACK : 0, 0, payload);
}

/** A PING frame carrying `data` (8 bytes). */
export function pingFrame(data: Uint8Array = new Uint8Array(8), ack = false): Uint8Array {
  return encodeFrame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

/** An RST_STREAM frame. */
export function rstStreamFrame(id: number, code: number): Uint8Array {
  return encodeFrame(FrameType.RST_STREAM, 0, id, u32(code));
}

/** A WINDOW_UPDATE frame (id 0: the connection's window). */
export function windowUpdateFrame(id: number, increment: number): Uint8Array {
  return encodeFrame(FrameType.WINDOW_UPDATE, 0, id, u32(increment));
}

/** A DATA frame. */
export function dataFrame(id: number, bytes: Uint8Array, endStream = false): Uint8Array {
  return encodeFrame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, id, bytes);
}

/** A HEADERS frame carrying (part of) a header block. */
export function headersFrame(
  id: number,
  block: Uint8Array,
  options: { endStream?: boolean; endHeaders?: boolean } = {},
): Uint8Array {
  const flags = (options.endStream ? Flag.END_STREAM : 0) |
    (options.endHeaders ?? true ? Flag.END_HEADERS : 0);
  return encodeFrame(FrameType.HEADERS, flags, id, block);
}

/** A CONTINUATION frame carrying more of a header block. */
export function continuationFrame(id: number, block: Uint8Array, endHeaders = false): Uint8Array {
  return encodeFrame(FrameType.CONTINUATION, endHeaders ? Flag.END_HEADERS : 0, id, block);
}

/** What a GOAWAY frame says. */
export interface GoAway {
  /** The last stream the sender may have processed. */
  lastStreamId: number;
  /** The error code. */
  code: number;
  /** The debug data, as text. */
  debug: string;
}

/** Decodes a GOAWAY frame's payload. */
export function decodeGoaway(payload: Uint8Array): GoAway {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  return {
    lastStreamId: view.getUint32(0) & 0x7fffffff,
    code: view.getUint32(4),
    debug: new TextDecoder().decode(payload.subarray(8)),
  };
}

/** Decodes an RST_STREAM frame's payload: its error code. */
export function decodeRstStream(payload: Uint8Array): number {
  return new DataView(payload.buffer, payload.byteOffset, payload.length).getUint32(0);
}

/** Decodes a SETTINGS frame's payload into its pairs. */
export function decodeSettings(payload: Uint8Array): [number, number][] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const pairs: [number, number][] = [];
  for (let i = 0; i + 6 <= payload.length; i += 6) {
    pairs.push([view.getUint16(i), view.getUint32(i + 2)]);
  }
  return pairs;
}

/** An HPACK integer with an N-bit prefix (RFC 7541, 5.1), `flags` in the prefix byte. */
export function hpackInteger(value: number, prefixBits: number, flags = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return out;
}

/** An HPACK string literal, not Huffman-coded (RFC 7541, 5.2); latin1 text only. */
export function hpackString(text: string): number[] {
  const out = hpackInteger(text.length, 7);
  for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 0xff);
  return out;
}

/** A literal header field without indexing, with a literal name (RFC 7541, 6.2.2). */
export function literalField(name: string, value: string): Uint8Array {
  return Uint8Array.from([0x00, ...hpackString(name), ...hpackString(value)]);
}

/**
 * A literal header field with incremental indexing, with a literal name (RFC 7541,
 * 6.2.1): the decoder adds it to its dynamic table, where the first entry is index 62.
 */
export function indexingField(name: string, value: string): Uint8Array {
  return Uint8Array.from([0x40, ...hpackString(name), ...hpackString(value)]);
}

/** An indexed header field (RFC 7541, 6.1): a reference to a table entry. */
export function indexedField(index: number): Uint8Array {
  return Uint8Array.from(hpackInteger(index, 7, 0x80));
}

/** Joins byte arrays. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A header block of `fields`, every one a literal without indexing. */
export function headerBlock(fields: readonly HeaderField[]): Uint8Array {
  return concat(...fields.map(([name, value]) => literalField(name, value)));
}

/** The fields of a POST to `path`, then `extra`. */
export function postFields(path: string, extra: readonly HeaderField[] = []): HeaderField[] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", "localhost"],
    [":path", path],
    ...extra,
  ];
}

/** The request headers of a gRPC call (protobuf). */
export const grpcFields: readonly HeaderField[] = [
  ["content-type", "application/grpc+proto"],
  ["te", "trailers"],
];

/** A gRPC message: the 5-byte envelope (uncompressed) and `message`. */
export function grpcMessage(message: Uint8Array, declaredLength = message.length): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, declaredLength);
  out.set(message, 5);
  return out;
}

/** Splits a byte stream (without the client preface) into frames, whatever its chunking. */
export class FrameReader {
  #buffer: Uint8Array = new Uint8Array(0);

  /** Takes the next bytes; returns the frames they completed. */
  push(chunk: Uint8Array): Frame[] {
    // A Buffer's slice() shares memory: work on a plain Uint8Array view.
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    this.#buffer = this.#buffer.length === 0 ? bytes : concat(this.#buffer, bytes);
    const frames: Frame[] = [];
    let at = 0;
    const b = this.#buffer;
    while (b.length - at >= 9) {
      const length = (b[at] << 16) | (b[at + 1] << 8) | b[at + 2];
      if (b.length - at < 9 + length) break;
      frames.push({
        type: b[at + 3],
        flags: b[at + 4],
        id: ((b[at + 5] & 0x7f) << 24 | b[at + 6] << 16 | b[at + 7] << 8 | b[at + 8]) >>> 0,
        payload: b.slice(at + 9, at + 9 + length),
      });
      at += 9 + length;
    }
    // Copied: the writer may reuse its buffer once the bytes are out.
    this.#buffer = at === b.length ? new Uint8Array(0) : b.slice(at);
    return frames;
  }
}

/**
 * The server's end of a connection, watched: what it reads, what it writes (frame by
 * frame: GOAWAY and RST_STREAM codes, counts by type) and how much of its output the
 * socket has not taken yet, which is what a peer that never reads makes it hold.
 */
export class WireProbe implements ByteStream {
  /** Bytes the server read. */
  bytesRead = 0;
  /** Bytes the server handed to write(). */
  bytesWritten = 0;
  /** Bytes handed to write() that the socket has not taken yet, now and at most. */
  pending = 0;
  /** The peak of {@linkcode pending}. */
  pendingPeak = 0;
  /** Frames written, by type. */
  readonly sent: Map<number, number> = new Map();
  /** The GOAWAY frames written. */
  readonly goaways: GoAway[] = [];
  readonly #inner: ByteStream;
  readonly #reader = new FrameReader();

  /** Watches `inner`. */
  constructor(inner: ByteStream) {
    this.#inner = inner;
  }

  /** Whether the server is waiting on a read now. */
  reading = false;

  /** Reads from the socket, counting. */
  async read(into: Uint8Array): Promise<number | null> {
    this.reading = true;
    try {
      const count = await this.#inner.read(into);
      if (count !== null) this.bytesRead += count;
      return count;
    } finally {
      this.reading = false;
    }
  }

  /** Writes to the socket, decoding the frames that go out. */
  async write(bytes: Uint8Array): Promise<number> {
    for (const frame of this.#reader.push(bytes)) {
      this.sent.set(frame.type, (this.sent.get(frame.type) ?? 0) + 1);
      if (frame.type === FrameType.GOAWAY) this.goaways.push(decodeGoaway(frame.payload));
    }
    this.bytesWritten += bytes.length;
    this.pending += bytes.length;
    this.pendingPeak = Math.max(this.pendingPeak, this.pending);
    try {
      return await this.#inner.write(bytes);
    } finally {
      this.pending -= bytes.length;
    }
  }

  /** Closes the socket. */
  close(): void {
    this.#inner.close();
  }
}

/** How one stream went, as far as this client has read. */
export interface StreamState {
  /** The answer's `:status`, once its headers arrived. */
  status?: number;
  /** The answer's headers (informational ones skipped). */
  header: HeaderField[];
  /** The DATA received. */
  body: Uint8Array[];
  /** Bytes of DATA received. */
  bodyBytes: number;
  /** The trailers, when a second header block came. */
  trailer: HeaderField[];
  /** The server ended the stream (END_STREAM). */
  ended: boolean;
  /** The code of the server's RST_STREAM, if it sent one. */
  reset?: number;
}

/** A stream's answer, once it ended or was reset. */
export interface Answer extends StreamState {
  /** The body, joined. */
  bytes: Uint8Array;
  /** A header (or else trailer) value by name. */
  get(name: string): string | undefined;
}

/** How {@linkcode RawConnection.open} sets a connection up. */
export interface OpenOptions {
  /** Answer the server's SETTINGS and PING frames (default true). */
  autoAck?: boolean;
  /** Give back the window the server's DATA used (default true). */
  windowUpdates?: boolean;
}

/**
 * One client connection that writes raw bytes and decodes every frame it reads: the
 * server's SETTINGS, GOAWAY, RST_STREAM and the answers on each stream.
 */
export class RawConnection {
  /** The socket. */
  readonly socket: Socket;
  /** The socket's local port (the server's view of its remote port), kept past its close. */
  readonly localPort: number;
  /** Settles once the socket has closed, whichever side closed it. */
  readonly closed: Promise<void>;
  /** When the socket closed (`performance.now()`), once it has. */
  closedAt?: number;
  /** The GOAWAY frames the server sent, in order. */
  readonly goaways: GoAway[] = [];
  /** Every stream this connection saw, by id. */
  readonly streams: Map<number, StreamState> = new Map();
  /** The SETTINGS the server sent, last value of each. */
  readonly serverSettings: Map<number, number> = new Map();
  /** SETTINGS frames (not ACKs) the server sent. */
  settingsReceived = 0;
  /** The server's SETTINGS ACKs and PING ACKs. */
  settingsAcks = 0;
  pingAcks = 0;
  /** When the first GOAWAY arrived (`performance.now()`). */
  goawayAt?: number;
  /** Frames read, by type. */
  readonly counts: Map<number, number> = new Map();
  /** Bytes read. */
  bytesRead = 0;
  /** The first socket error, if any (a reset is how some servers close). */
  socketError?: Error;
  /** The id the next {@linkcode request} uses. */
  nextStreamId = 1;
  readonly #decoder = new HpackDecoder();
  readonly #options: Required<OpenOptions>;
  readonly #reader = new FrameReader();
  /** A header block being assembled: its stream, flags of the HEADERS, fragments. */
  #block?: { id: number; flags: number; parts: Uint8Array[] };
  readonly #waiters = new Set<() => void>();
  /** Send windows: the connection's, each stream's, and the initial one for new streams. */
  #connectionWindow = 65_535;
  #initialWindow = 65_535;
  readonly #streamWindows = new Map<number, number>();
  #decodeError?: Error;

  private constructor(socket: Socket, options: OpenOptions) {
    this.socket = socket;
    this.localPort = socket.localPort!;
    this.#options = { autoAck: true, windowUpdates: true, ...options };
    socket.on("data", (chunk: Uint8Array) => this.#received(chunk));
    socket.on("error", (error) => (this.socketError ??= error));
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.closedAt = performance.now();
        this.#notify();
        resolve();
      })
    );
  }

  /** Connects to `port` on loopback. Nothing is sent: see {@linkcode handshake}. */
  static open(port: number, options: OpenOptions = {}): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: "127.0.0.1", noDelay: true });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawConnection(socket, options));
      });
    });
  }

  /** Whether the socket has closed. */
  get isClosed(): boolean {
    return this.closedAt !== undefined;
  }

  /** The last GOAWAY's code, if one came. */
  get goawayCode(): number | undefined {
    return this.goaways.at(-1)?.code;
  }

  /** Writes raw bytes; false when the socket is gone. */
  write(bytes: Uint8Array): boolean {
    if (this.socket.destroyed) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Writes raw bytes and waits until the socket took them (false: it could not). */
  flush(bytes: Uint8Array): Promise<boolean> {
    if (this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(bytes, (error) => resolve(!error)));
  }

  /** The preface and a SETTINGS frame with `settings`. */
  handshake(settings: readonly [number, number][] = []): void {
    this.write(concat(PREFACE, settingsFrame(settings)));
  }

  /**
   * Waits for the server's SETTINGS (answered at once unless `autoAck` is off): after
   * it, nothing this client sends on its own can land inside a header block.
   */
  ready(timeoutMs = 5_000): Promise<void> {
    return this.until(() => this.settingsReceived > 0, timeoutMs, "the server's SETTINGS");
  }

  /**
   * Opens a stream: HEADERS with the fields of a POST to `path` (plus `extra`), then
   * `body` in DATA frames of up to 16 KiB (none when `body` is undefined: the HEADERS
   * end the stream). Returns the stream id. Flow control is not looked at: see
   * {@linkcode sendBody} for a body larger than the server's windows.
   */
  request(path: string, extra: readonly HeaderField[] = [], body?: Uint8Array): number {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    this.#stream(id);
    const block = headerBlock(postFields(path, extra));
    const frames = [headersFrame(id, block, { endStream: body === undefined })];
    for (let at = 0; body !== undefined && at <= body.length; at += 16_384) {
      const end = Math.min(at + 16_384, body.length);
      frames.push(dataFrame(id, body.subarray(at, end), end === body.length));
      this.#spend(id, end - at);
      if (end === body.length) break;
    }
    this.write(concat(...frames));
    return id;
  }

  /** Opens a stream whose body is still to come (HEADERS without END_STREAM); its id. */
  open(path: string, extra: readonly HeaderField[] = []): number {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    this.#stream(id);
    this.write(headersFrame(id, headerBlock(postFields(path, extra))));
    return id;
  }

  /**
   * Sends `total` bytes of DATA on stream `id` from `chunk` repeated, keeping to the
   * server's windows, until all is sent or the stream (or connection) is over. Resolves
   * with the bytes sent.
   */
  async sendBody(id: number, chunk: Uint8Array, total: number, endStream = true): Promise<number> {
    let sent = 0;
    const frameSize = Math.min(16_384, chunk.length);
    while (sent < total) {
      const stream = this.streams.get(id);
      if (this.isClosed || stream === undefined || stream.reset !== undefined || stream.ended) {
        break;
      }
      const room = Math.min(this.#connectionWindow, this.#streamWindows.get(id) ?? 0);
      if (room <= 0) {
        await this.#changed();
        continue;
      }
      const size = Math.min(room, frameSize, total - sent);
      sent += size;
      this.#spend(id, size);
      const last = sent === total && endStream;
      // Waiting for the kernel to take each frame keeps our own buffers small.
      await this.flush(dataFrame(id, chunk.subarray(0, size), last));
    }
    return sent;
  }

  /** Waits until stream `id` ended or was reset (or the connection closed). */
  async answer(id: number, timeoutMs = 5_000): Promise<Answer> {
    await this.until(
      () => {
        const stream = this.streams.get(id);
        return stream !== undefined && (stream.ended || stream.reset !== undefined);
      },
      timeoutMs,
      `the answer on stream ${id}`,
    );
    const stream = this.streams.get(id)!;
    const get = (name: string) =>
      (stream.header.find(([n]) => n === name) ?? stream.trailer.find(([n]) => n === name))?.[1];
    return { ...stream, bytes: concat(...stream.body), get };
  }

  /**
   * Waits until `condition` holds, checked after every frame read and when the socket
   * closes. Rejects after `timeoutMs` naming `what`, and when the socket closed first
   * without it holding.
   */
  async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (this.#decodeError) throw this.#decodeError;
      if (this.isClosed) throw new Error(`the connection closed before ${what}${this.#summary()}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await this.#changed(left);
    }
  }

  /**
   * Waits until the socket closed, at most `timeoutMs`; true if it did. Reads go on
   * meanwhile (unless paused), so a GOAWAY that comes first is recorded.
   */
  async untilClosed(timeoutMs: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.closed, timeout]);
    clearTimeout(timer);
    return this.isClosed;
  }

  /** Stops reading: the server's output piles up in the kernel, then in the server. */
  pause(): void {
    this.socket.pause();
  }

  /** Reads again. */
  resume(): void {
    this.socket.resume();
  }

  /** Closes the socket at once. */
  destroy(): void {
    this.socket.destroy();
  }

  /** What the connection saw, for an assertion's message. */
  #summary(): string {
    const goaway = this.goaways.at(-1);
    return goaway
      ? ` (GOAWAY ${errorName(goaway.code)} ${JSON.stringify(goaway.debug)})`
      : this.socketError
      ? ` (${this.socketError.message})`
      : " (no GOAWAY)";
  }

  #stream(id: number): StreamState {
    let stream = this.streams.get(id);
    if (!stream) {
      stream = { header: [], body: [], bodyBytes: 0, trailer: [], ended: false };
      this.streams.set(id, stream);
      this.#streamWindows.set(id, this.#initialWindow);
    }
    return stream;
  }

  #spend(id: number, size: number): void {
    this.#connectionWindow -= size;
    this.#streamWindows.set(id, (this.#streamWindows.get(id) ?? 0) - size);
  }

  #changed(timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(wake, timeoutMs);
      const waiters = this.#waiters;
      function wake() {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve();
      }
      waiters.add(wake);
    });
  }

  #notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  #received(chunk: Uint8Array): void {
    this.bytesRead += chunk.length;
    for (const frame of this.#reader.push(chunk)) {
      try {
        this.#frame(frame);
      } catch (error) {
        this.#decodeError ??= error as Error;
      }
    }
    this.#notify();
  }

  #frame(frame: Frame): void {
    this.counts.set(frame.type, (this.counts.get(frame.type) ?? 0) + 1);
    switch (frame.type) {
      case FrameType.SETTINGS:
        if (frame.flags & Flag.ACK) {
          this.settingsAcks++;
          return;
        }
        this.settingsReceived++;
        for (const [key, value] of decodeSettings(frame.payload)) {
          this.serverSettings.set(key, value);
          if (key === Setting.INITIAL_WINDOW_SIZE) {
            const delta = value - this.#initialWindow;
            this.#initialWindow = value;
            for (const [id, window] of this.#streamWindows) {
              this.#streamWindows.set(id, window + delta);
            }
          }
        }
        if (this.#options.autoAck) this.write(settingsFrame([], true));
        return;
      case FrameType.PING:
        if (frame.flags & Flag.ACK) this.pingAcks++;
        else if (this.#options.autoAck) {
          this.write(pingFrame(frame.payload, true));
        }
        return;
      case FrameType.GOAWAY:
        this.goawayAt ??= performance.now();
        this.goaways.push(decodeGoaway(frame.payload));
        return;
      case FrameType.WINDOW_UPDATE: {
        const increment = new DataView(frame.payload.buffer).getUint32(0) & 0x7fffffff;
        if (frame.id === 0) this.#connectionWindow += increment;
        else {this.#streamWindows.set(
            frame.id,
            (this.#streamWindows.get(frame.id) ?? 0) + increment,
          );}
        return;
      }
      case FrameType.RST_STREAM:
        this.#stream(frame.id).reset = decodeRstStream(frame.payload);
        return;
      case FrameType.DATA: {
        const stream = this.#stream(frame.id);
        const data = unpadded(frame);
        stream.body.push(data);
        stream.bodyBytes += data.length;
        if (frame.flags & Flag.END_STREAM) stream.ended = true;
        if (this.#options.windowUpdates && frame.payload.length > 0) {
          this.write(concat(
            windowUpdateFrame(0, frame.payload.length),
            frame.flags & Flag.END_STREAM
              ? new Uint8Array(0)
              : windowUpdateFrame(frame.id, frame.payload.length),
          ));
        }
        return;
      }
      case FrameType.HEADERS: {
        let fragment = unpadded(frame);
        if (frame.flags & Flag.PRIORITY) fragment = fragment.subarray(5);
        this.#block = { id: frame.id, flags: frame.flags, parts: [fragment] };
        if (frame.flags & Flag.END_HEADERS) this.#headerBlockDone();
        return;
      }
      case FrameType.CONTINUATION:
        if (this.#block?.id !== frame.id) throw new Error("CONTINUATION outside a header block");
        this.#block.parts.push(frame.payload);
        if (frame.flags & Flag.END_HEADERS) this.#headerBlockDone();
        return;
    }
  }

  #headerBlockDone(): void {
    const { id, flags, parts } = this.#block!;
    this.#block = undefined;
    const fields = this.#decoder.decode(concat(...parts));
    const stream = this.#stream(id);
    const status = fields.find(([name]) => name === ":status")?.[1];
    if (status !== undefined && Number(status) < 200) return;
    if (stream.status === undefined && status !== undefined) {
      stream.status = Number(status);
      stream.header = fields;
    } else {
      stream.trailer = fields;
    }
    if (flags & Flag.END_STREAM) stream.ended = true;
  }
}

/** A frame's payload without its padding (DATA and HEADERS may be PADDED). */
function unpadded(frame: Frame): Uint8Array {
  if (!(frame.flags & Flag.PADDED)) return frame.payload;
  const padding = frame.payload[0];
  return frame.payload.subarray(1, frame.payload.length - padding);
}

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}
