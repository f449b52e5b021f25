/**
 * Splits a child's output into lines without ever holding more than one capped line:
 * a plugin that prints a 50 MB line or binary junk cannot exhaust the host.
 *
 * @module
 */
import { concatBytes } from "./bytes.ts";

/** Default longest line kept whole, in bytes. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Milliseconds of line handling before yielding to the event loop. */
const SLICE_MS = 10;

/** Appended to a line that was cut at the cap. */
export const TRUNCATION_MARKER = " …[line truncated]";

/** Options for {@linkcode streamLogLines}. */
export interface StreamLogLinesOptions {
  /**
   * Longest line passed on whole, in bytes; the rest of a longer one is dropped and
   * the marker appended.
   * @default {1_048_576}
   */
  maxLineBytes?: number;
  /** Aborting stops reading (the stream is cancelled) after delivering what was read. */
  signal?: AbortSignal;
  /** Called for every chunk read, before its lines are delivered. */
  onChunk?: () => void;
}

/**
 * Reads `stream` to its end, calling `onLine` for each line (without its newline;
 * invalid UTF-8 replaced with U+FFFD). A last line without a newline is delivered
 * when the stream ends.
 *
 * @param stream The bytes to read, e.g. a child's stderr.
 * @param onLine Called once per line, in order.
 * @param options The line cap.
 * @returns Resolves when the stream has ended; rejects if reading fails.
 */
export async function streamLogLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  options: StreamLogLinesOptions = {},
): Promise<void> {
  const max = options.maxLineBytes ?? MAX_LINE_BYTES;
  const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let truncated = false;

  const keep = (bytes: Uint8Array) => {
    if (truncated) return;
    const room = max - pendingBytes;
    if (bytes.length > room) {
      if (room > 0) pending.push(bytes.subarray(0, room));
      pendingBytes = max;
      truncated = true;
      return;
    }
    pending.push(bytes);
    pendingBytes += bytes.length;
  };
  const deliver = (text: string) => {
    onLine(text.endsWith("\r") ? text.slice(0, -1) : text);
  };
  const emit = () => {
    const bytes = pending.length === 1 ? pending[0] : concatBytes(pending, pendingBytes);
    let line = decoder.decode(bytes);
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (truncated) line += TRUNCATION_MARKER;
    pending = [];
    pendingBytes = 0;
    truncated = false;
    onLine(line);
  };

  const reader = stream.getReader();
  const aborted = new Promise<{ done: true; value: undefined }>((resolve) => {
    const done = () => resolve({ done: true, value: undefined });
    if (options.signal?.aborted) done();
    options.signal?.addEventListener("abort", done, { once: true });
  });
  let sliceStarted = performance.now();
  // A big chunk of short lines is a lot of work: let timers and I/O run between slices
  // of it, so that a chatty plugin cannot stall its host. (By time, not by count: each
  // yield costs a timer tick.)
  const maybeYield = async (lines: number) => {
    if (lines % 256 === 0 && performance.now() - sliceStarted > SLICE_MS) {
      await new Promise((r) => setTimeout(r, 0));
      sliceStarted = performance.now();
    }
  };
  for (;;) {
    const { done, value: chunk } = await Promise.race([reader.read(), aborted]);
    if (done) break;
    options.onChunk?.();
    sliceStarted = performance.now();
    let start = 0;
    const last = chunk.lastIndexOf(10);
    if (last !== -1 && !truncated && pendingBytes + last <= max) {
      // No line ending in this chunk can reach the cap: decode them all at once (one
      // decoder call per chunk rather than per line) and split the text. A newline
      // byte never occurs inside a UTF-8 sequence, so the lines are the same.
      const first = chunk.indexOf(10);
      keep(chunk.subarray(0, first));
      emit();
      if (last > first) {
        const text = decoder.decode(chunk.subarray(first + 1, last));
        let from = 0;
        for (let lines = 1;; lines++) {
          const newline = text.indexOf("\n", from);
          if (newline === -1) {
            deliver(text.slice(from));
            break;
          }
          deliver(text.slice(from, newline));
          from = newline + 1;
          await maybeYield(lines);
        }
      }
      start = last + 1;
    } else {
      for (let lines = 1;; lines++) {
        const newline = chunk.indexOf(10, start);
        if (newline === -1) break;
        keep(chunk.subarray(start, newline));
        emit();
        start = newline + 1;
        await maybeYield(lines);
      }
    }
    // The chunk's memory may be reused by the reader: copy what we hold on to (with
    // the Uint8Array constructor, since a Node Buffer's slice() does not copy).
    if (start < chunk.length) keep(new Uint8Array(chunk.subarray(start)));
  }
  if (options.signal?.aborted) await reader.cancel().catch(() => {});
  reader.releaseLock();
  if (pendingBytes > 0 || truncated) emit();
}

/** The last `size` lines pushed, oldest first, each with an optional tag (its stream). */
export class RecentLines {
  readonly #size: number;
  // A ring: pushing is called for every line a plugin prints, and Array#shift is not free.
  readonly #ring: { line: string; tag: string | undefined }[] = [];
  #next = 0;

  /** @param size How many lines to keep. */
  constructor(size: number) {
    this.#size = size;
  }

  /** Remembers a line, cut to 2000 characters, and where it came from. */
  push(line: string, tag?: string): void {
    if (this.#size <= 0) return;
    const kept = { line: line.length > 2000 ? `${line.slice(0, 2000)}…` : line, tag };
    if (this.#ring.length < this.#size) this.#ring.push(kept);
    else this.#ring[this.#next] = kept;
    this.#next = (this.#next + 1) % this.#size;
  }

  /** The remembered lines with their tags, oldest first. */
  get entries(): readonly { readonly line: string; readonly tag: string | undefined }[] {
    if (this.#ring.length < this.#size) return [...this.#ring];
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }

  /** The remembered lines, oldest first. */
  get lines(): readonly string[] {
    return this.entries.map((entry) => entry.line);
  }
}
