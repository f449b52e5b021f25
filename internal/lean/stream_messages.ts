/**
 * The messages of a server stream's answer on the lean client path: envelopes cut
 * straight out of the HTTP/2 engine's chunks and parsed, every message that has already
 * arrived handed out without waiting a turn, and the end checked as connect-es checks it
 * (gRPC's status in the trailers, Connect's EndStreamResponse), its errors worded the
 * same.
 *
 * @module
 */
import type { DescMessage, DescMethodServerStreaming, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { endStreamFlag, endStreamFromJson } from "@connectrpc/connect/protocol-connect";
import { validateTrailer } from "@connectrpc/connect/protocol-grpc";
import type { RawBody } from "../http2/client_universal.ts";
import { parseBinary } from "./messages.ts";

/** One envelope: its flags and its payload. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

/**
 * Cuts envelopes out of a raw body: `next()` gives one that is already complete at
 * once, and reads only when none is.
 */
export class EnvelopeReader {
  #raw: RawBody;
  #readMaxBytes: number;
  #failed: (error: unknown) => ConnectError;
  #buffer: Uint8Array = new Uint8Array(0);
  #at = 0;
  #ended = false;

  /** `failed` turns a failure to read into the caller's error. */
  constructor(raw: RawBody, readMaxBytes: number, failed: (error: unknown) => ConnectError) {
    this.#raw = raw;
    this.#readMaxBytes = readMaxBytes;
    this.#failed = failed;
  }

  /** An envelope already here, `null` at the end of the body, or `undefined`: wait. */
  take(): Envelope | null | undefined {
    for (;;) {
      const envelope = this.#cut();
      if (envelope !== undefined) return envelope;
      if (this.#ended) {
        if (this.#at < this.#buffer.length) {
          throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
        }
        return null;
      }
      const chunk = this.#raw.take();
      if (chunk === undefined) return undefined;
      this.#append(chunk);
    }
  }

  /** The next envelope, or null at the end of the body. */
  async next(): Promise<Envelope | null> {
    for (;;) {
      const envelope = this.take();
      if (envelope !== undefined) return envelope;
      let chunk;
      try {
        chunk = await this.#raw.read();
      } catch (error) {
        throw this.#failed(error);
      }
      if (chunk === null) this.#ended = true;
      else this.#append(chunk);
    }
  }

  /** Stops reading: the stream goes. */
  cancel(): void {
    this.#raw.cancel();
  }

  #append(chunk: Uint8Array): void {
    const left = this.#buffer.length - this.#at;
    if (left === 0) {
      this.#buffer = chunk;
    } else {
      const joined = new Uint8Array(left + chunk.length);
      joined.set(this.#buffer.subarray(this.#at));
      joined.set(chunk, left);
      this.#buffer = joined;
    }
    this.#at = 0;
  }

  #cut(): Envelope | undefined {
    const buffer = this.#buffer;
    const at = this.#at;
    if (buffer.length - at < 5) return undefined;
    const length =
      ((buffer[at + 1] << 24) | (buffer[at + 2] << 16) | (buffer[at + 3] << 8) | buffer[at + 4]) >>>
      0;
    if (length > this.#readMaxBytes) {
      throw new ConnectError(
        `message size ${length} is larger than configured readMaxBytes ${this.#readMaxBytes}`,
        Code.ResourceExhausted,
      );
    }
    if (buffer.length - at - 5 < length) return undefined;
    this.#at = at + 5 + length;
    return { flags: buffer[at], data: buffer.subarray(at + 5, at + 5 + length) };
  }
}

function parseOutput<O extends DescMessage>(
  method: DescMethodServerStreaming<DescMessage, O>,
  envelope: Envelope,
): MessageShape<O> {
  if (envelope.flags & 0b1) {
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  return parseBinary(method.output, envelope.data);
}

/**
 * The messages of an answer as an async iterable whose `next()` settles at once for a
 * message that has already arrived. `step` turns an envelope into a message, or
 * undefined to skip it; `end` runs at the end of the body.
 */
function messagesOf<T>(
  reader: EnvelopeReader,
  step: (envelope: Envelope) => T | undefined,
  end: () => void,
  fail: (error: unknown) => ConnectError,
  signal: AbortSignal | undefined,
): AsyncIterable<T> {
  let done = false;
  const finish = (error: unknown): Promise<IteratorResult<T>> => {
    done = true;
    reader.cancel();
    return Promise.reject(fail(error));
  };
  const slow = async (): Promise<IteratorResult<T>> => {
    for (;;) {
      const envelope = await reader.next();
      if (envelope === null) {
        done = true;
        end();
        return { value: undefined, done: true };
      }
      const value = step(envelope);
      if (value !== undefined) return { value, done: false };
    }
  };
  const iterator: AsyncIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (done) return Promise.resolve({ value: undefined, done: true });
      // As connect-es: once the caller's signal or the deadline fired, the call fails.
      if (signal?.aborted) return finish(undefined);
      try {
        for (;;) {
          const envelope = reader.take();
          if (envelope === undefined) return slow().catch(finish);
          if (envelope === null) {
            done = true;
            end();
            return Promise.resolve({ value: undefined, done: true });
          }
          const value = step(envelope);
          if (value !== undefined) return Promise.resolve({ value, done: false });
        }
      } catch (error) {
        return finish(error);
      }
    },
    return(): Promise<IteratorResult<T>> {
      if (!done) {
        done = true;
        reader.cancel();
      }
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/** A gRPC answer's messages; its status is checked in the trailers at the end. */
export function grpcMessages<O extends DescMessage>(
  reader: EnvelopeReader,
  method: DescMethodServerStreaming<DescMessage, O>,
  header: Headers,
  trailer: Headers,
  foundStatus: boolean,
  fail: (error: unknown) => ConnectError,
  signal: AbortSignal | undefined,
): AsyncIterable<MessageShape<O>> {
  return messagesOf(
    reader,
    (envelope) => parseOutput(method, envelope),
    () => {
      if (!foundStatus) validateTrailer(trailer, header);
    },
    fail,
    signal,
  );
}

/** A Connect answer's messages, up to its EndStreamResponse (error or trailers). */
export function connectMessages<O extends DescMessage>(
  reader: EnvelopeReader,
  method: DescMethodServerStreaming<DescMessage, O>,
  header: Headers,
  trailer: Headers,
  fail: (error: unknown) => ConnectError,
  signal: AbortSignal | undefined,
): AsyncIterable<MessageShape<O>> {
  let ended = false;
  return messagesOf(
    reader,
    (envelope) => {
      if ((envelope.flags & endStreamFlag) === endStreamFlag) {
        if (ended) {
          throw new ConnectError(
            "protocol error: received extra EndStreamResponse",
            Code.InvalidArgument,
          );
        }
        ended = true;
        let end;
        try {
          end = endStreamFromJson(envelope.data);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new ConnectError(
            `failed to parse EndStreamResponse: ${reason}`,
            Code.InvalidArgument,
          );
        }
        if (end.error) {
          const error = end.error;
          header.forEach((value, key) => error.metadata.append(key, value));
          throw error;
        }
        end.metadata.forEach((value, key) => trailer.set(key, value));
        return undefined;
      }
      if (ended) {
        throw new ConnectError(
          "protocol error: received extra message after EndStreamResponse",
          Code.InvalidArgument,
        );
      }
      return parseOutput(method, envelope);
    },
    () => {
      if (!ended) {
        throw new ConnectError("protocol error: missing EndStreamResponse", Code.InvalidArgument);
      }
    },
    fail,
    signal,
  );
}
