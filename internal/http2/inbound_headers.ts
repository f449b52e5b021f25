/**
 * Header blocks in: HEADERS and CONTINUATION frames assembled into one block (bounded in
 * size and in frames: a CONTINUATION flood ends the connection), decoded with the
 * connection's HPACK table (bounded too: an HPACK bomb ends it), then either a new
 * stream from the peer (the server's request), the answer's head (client), or
 * trailers. A malformed block is a stream error, or a connection error where RFC 9113
 * says so.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import type { Connection } from "./connection.ts";
import { armHeaderTimer, clearHeaderTimer } from "./defences.ts";
import { messageOf } from "./errors.ts";
import {
  COMPRESSION_ERROR,
  ENHANCE_YOUR_CALM,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PRIORITY,
  FRAME_SIZE_ERROR,
  INTERNAL_ERROR,
  PROTOCOL_ERROR,
  readStreamId,
  REFUSED_STREAM,
  STREAM_CLOSED,
  unpad,
} from "./frames.ts";
import { HeaderBlock, requestHead, responseHead, trailerBlock } from "./header_block.ts";
import { HeaderListTooLarge, HpackError } from "./hpack.ts";
import { rememberReset } from "./output.ts";
import { H2Stream } from "./stream.ts";

/**
 * A header block being put together from HEADERS and CONTINUATION frames.
 *
 * @example
 * ```ts ignore
 * const parts = [block.slice()];
 * const size = block.length;
 * connection.partial = { id, endStream, selfDependent, parts, size, continuations: 0 };
 * ```
 */
export interface PartialBlock {
  /** Its stream. */
  id: number;
  /** The HEADERS frame carried END_STREAM. */
  endStream: boolean;
  /** The HEADERS frame's priority named the stream itself. */
  selfDependent: boolean;
  /** The fragments so far (copied). */
  parts: Uint8Array[];
  /** Their total size. */
  size: number;
  /** CONTINUATION frames so far. */
  continuations: number;
}

/**
 * A HEADERS frame: a whole header block, or the start of one that CONTINUATION frames
 * complete.
 *
 * @example
 * ```ts ignore
 * case FRAME_HEADERS:
 *   return onHeaders(connection, flags, id, payload);
 * ```
 */
export function onHeaders(conn: Connection, flags: number, id: number, payload: Uint8Array): void {
  if (id === 0) return conn.connectionError(PROTOCOL_ERROR, "HEADERS on stream 0");
  if (conn.role === "client" && conn.isIdle(id)) {
    // Push is off: a server opens no stream, whether or not the block is complete.
    return conn.connectionError(PROTOCOL_ERROR, `HEADERS opening stream ${id}`);
  }
  let block = unpad(flags, payload);
  if (block === undefined) return conn.connectionError(PROTOCOL_ERROR, "bad HEADERS padding");
  let selfDependent = false;
  if (flags & FLAG_PRIORITY) {
    if (block.length < 5) return conn.connectionError(FRAME_SIZE_ERROR, "short HEADERS");
    selfDependent = readStreamId(block, 0) === id;
    block = block.subarray(5);
  }
  const endStream = (flags & FLAG_END_STREAM) !== 0;
  if (flags & FLAG_END_HEADERS) {
    return onHeaderBlock(conn, id, endStream, selfDependent, block);
  }
  if (block.length > conn.maxHeaderBlock) {
    return conn.connectionError(ENHANCE_YOUR_CALM, "a header block too large");
  }
  conn.partial = {
    id,
    endStream,
    selfDependent,
    parts: [block.slice()],
    size: block.length,
    continuations: 0,
  };
  if (conn.options.headerTimeoutMs !== undefined) armHeaderTimer(conn);
}

/**
 * A CONTINUATION frame of the block being assembled.
 *
 * @example
 * ```ts ignore
 * case FRAME_CONTINUATION:
 *   return onContinuation(connection, flags, id, payload);
 * ```
 */
export function onContinuation(
  conn: Connection,
  flags: number,
  id: number,
  payload: Uint8Array,
): void {
  const partial = conn.partial;
  if (partial === undefined || partial.id !== id) {
    return conn.connectionError(PROTOCOL_ERROR, "an unexpected CONTINUATION");
  }
  partial.size += payload.length;
  if (partial.size > conn.maxHeaderBlock) {
    return conn.connectionError(ENHANCE_YOUR_CALM, "a header block too large");
  }
  if (++partial.continuations > conn.maxContinuations) {
    return conn.connectionError(ENHANCE_YOUR_CALM, "a CONTINUATION flood");
  }
  partial.parts.push(payload.slice());
  if (!(flags & FLAG_END_HEADERS)) return;
  conn.partial = undefined;
  const block = concatBytes(partial.parts, partial.size);
  onHeaderBlock(conn, id, partial.endStream, partial.selfDependent, block);
}

/** A whole header block: decoded, then given to its stream or opening one. */
function onHeaderBlock(
  conn: Connection,
  id: number,
  endStream: boolean,
  selfDependent: boolean,
  block: Uint8Array,
): void {
  // Decoded whatever becomes of the stream: the table is the connection's.
  const raw: string[] = [];
  let size: number;
  try {
    size = conn.decoder.decodeFlat(block, raw, conn.maxHeaderList, 4 * conn.maxHeaderList);
  } catch (error) {
    if (error instanceof HeaderListTooLarge) {
      return conn.connectionError(ENHANCE_YOUR_CALM, "a header list too large (HPACK bomb?)");
    }
    if (error instanceof HpackError) {
      return conn.connectionError(COMPRESSION_ERROR, error.message);
    }
    throw error;
  }
  const oversize = size > conn.maxHeaderList;
  const stream = conn.streams.get(id);
  if (stream !== undefined) return onStreamHeaders(conn, stream, endStream, raw, size, oversize);
  if (!conn.isIdle(id)) {
    if (conn.resetByUs.has(id)) return;
    if (!conn.isLocal(id) && wasSkipped(conn, id)) {
      return conn.connectionError(
        PROTOCOL_ERROR,
        `HEADERS on stream ${id}, below one already opened`,
      );
    }
    // Not a frame in flight before our reset: the peer tries to reuse a closed stream.
    return conn.connectionError(STREAM_CLOSED, `HEADERS on closed stream ${id}`);
  }
  if (conn.isLocal(id) || conn.role === "client") {
    return conn.connectionError(PROTOCOL_ERROR, `HEADERS opening stream ${id}`);
  }
  // A new stream from the peer.
  if (id > conn.lastPeerId + 2) {
    conn.skipped.push(conn.lastPeerId + 2, id - 2);
    if (conn.skipped.length > 128) conn.skipped.splice(0, 2);
  }
  conn.lastPeerId = id;
  if (conn.awaitingFirstHead) {
    conn.awaitingFirstHead = false;
    if (conn.partial === undefined) clearHeaderTimer(conn);
  }
  if (conn.goAwaySent >= 0) {
    // Above our GOAWAY's last stream: ignored (RFC 9113 section 6.8), its frames too.
    rememberReset(conn, id);
    return;
  }
  if (selfDependent) return conn.streamError(id, PROTOCOL_ERROR, "a stream depending on itself");
  if (conn.peerOpen >= conn.maxStreams) {
    return conn.streamError(id, REFUSED_STREAM, "over MAX_CONCURRENT_STREAMS");
  }
  const opened = new H2Stream(conn, id, conn.peerInitialWindow, conn.recvInitialWindow);
  conn.streams.set(id, opened);
  conn.peerOpen++;
  if (oversize) {
    // The stream lives just long enough for its 431.
    opened.headValue = new HeaderBlock([], 0, size);
    if (endStream) opened.deliverEnd();
    opened.sendHeaders([":status", "431"], true);
    return;
  }
  const head = requestHead(raw, size);
  if (typeof head === "string") return conn.streamError(opened, PROTOCOL_ERROR, head);
  opened.headValue = head;
  if (endStream) {
    if (head.contentLength > 0) {
      return conn.streamError(
        opened,
        PROTOCOL_ERROR,
        "body length differs from content-length",
      );
    }
    opened.deliverEnd();
  }
  try {
    conn.options.onStream?.(opened);
  } catch (error) {
    conn.resetStream(opened, INTERNAL_ERROR, `the stream handler failed: ${messageOf(error)}`);
  }
}

/** A header block on a stream already open: the answer's head, or trailers. */
function onStreamHeaders(
  conn: Connection,
  stream: H2Stream,
  endStream: boolean,
  raw: string[],
  size: number,
  oversize: boolean,
): void {
  if (stream.recvEnded) {
    return conn.streamError(stream, STREAM_CLOSED, "HEADERS after END_STREAM");
  }
  if (oversize) return conn.streamError(stream, PROTOCOL_ERROR, "a header list too large");
  if (stream.headValue === undefined) {
    // Client: the response.
    const head = responseHead(raw, size);
    if (typeof head === "string") return conn.streamError(stream, PROTOCOL_ERROR, head);
    if (head.status! < 200) {
      if (endStream) {
        return conn.streamError(stream, PROTOCOL_ERROR, "a 1xx head ends the stream");
      }
      stream.onInformational?.(head);
      return;
    }
    stream.deliverHead(head);
    if (endStream) {
      if (head.contentLength > 0 && head.status !== 304 && !stream.isHead) {
        return conn.streamError(
          stream,
          PROTOCOL_ERROR,
          "body length differs from content-length",
        );
      }
      receivedEnd(conn, stream);
    }
    return;
  }
  if (!endStream) return conn.streamError(stream, PROTOCOL_ERROR, "trailers without END_STREAM");
  const trailers = trailerBlock(raw, size);
  if (typeof trailers === "string") return conn.streamError(stream, PROTOCOL_ERROR, trailers);
  const declared = stream.headValue.contentLength;
  if (declared >= 0 && stream.received !== declared) {
    return conn.streamError(stream, PROTOCOL_ERROR, "body length differs from content-length");
  }
  stream.trailers = trailers;
  receivedEnd(conn, stream);
}

/**
 * The peer ended its side of the stream: the stream closes if ours has ended too.
 *
 * @example
 * ```ts ignore
 * if (endStream) receivedEnd(connection, stream);
 * ```
 */
export function receivedEnd(conn: Connection, stream: H2Stream): void {
  stream.deliverEnd();
  if (stream.sendEnded) conn.closeStream(stream, undefined, false);
}

/** Whether the peer skipped over stream `id` (so it may never be opened). */
function wasSkipped(conn: Connection, id: number): boolean {
  const skipped = conn.skipped;
  for (let i = 0; i < skipped.length; i += 2) {
    if (id >= skipped[i] && id <= skipped[i + 1]) return true;
  }
  return false;
}
