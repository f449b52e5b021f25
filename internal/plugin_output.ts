/**
 * A plugin's stdout and stderr mirrored into the host's log: FTL JSON log lines at
 * their own level, other stderr lines at error, stdout lines at the default level; the
 * last lines kept for a start error, and every chunk a nudge for readiness (output
 * often means the plugin has just started listening).
 *
 * @module
 */
import { decodeLogEntry, errorText, type Logger, LogLevel } from "./log.ts";
import { RecentLines, streamLogLines } from "./log_lines.ts";

/** How long output may pause, once the process has exited, before reading stops. */
const DRAIN_AFTER_EXIT_MS = 1_000;
/** How many of the last lines a start error repeats. */
const RECENT_LINES = 20;

/** A plugin's output being mirrored, as {@linkcode mirrorOutput} returns it. */
export interface MirroredOutput {
  /** The last lines it printed, tagged `stdout` or `stderr`. */
  readonly recent: RecentLines;
  /**
   * Subscribes to "output just came" (readiness's nudges).
   *
   * @param nudge Called on every chunk.
   * @returns The unsubscriber.
   */
  nudges(nudge: () => void): () => void;
  /**
   * Once the process has exited: reads on while output flows, and stops once it has
   * been quiet for a while (a grandchild may hold the pipes open forever).
   *
   * @returns Resolves when reading has stopped.
   */
  drain(): Promise<void>;
  /**
   * The recent lines the log did not show (below its level): the ones a start error
   * repeats, so that a usage text does not appear twice.
   *
   * @returns Those lines, oldest first.
   */
  unshown(): string[];
}

/**
 * Starts mirroring a plugin's output into `logger`.
 *
 * @param child The plugin's output streams.
 * @param logger The plugin's logger (scoped to its name).
 * @param defaultLevel The level of stdout lines and of JSON lines at level 0.
 * @returns The mirroring under way.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Logger, LogLevel } from "./log.ts";
 * import { mirrorOutput } from "./plugin_output.ts";
 *
 * const written: string[] = [];
 * const logger = new Logger({ level: LogLevel.Info, write: (line) => written.push(line) });
 * const lines = (text: string) => ReadableStream.from([new TextEncoder().encode(text)]);
 * const output = mirrorOutput(
 *   { stdout: lines("listening\n"), stderr: lines("debug detail\n") },
 *   logger,
 *   LogLevel.Debug,
 * );
 * await output.drain();
 * assert.deepEqual([...output.recent.lines].sort(), ["debug detail", "listening"]);
 * // Stdout lines go at debug, below the log's level; other stderr lines at error.
 * assert.deepEqual(output.unshown(), ["listening"]);
 * assert.equal(written.length, 1);
 * ```
 */
export function mirrorOutput(
  child: {
    readonly stdout: ReadableStream<Uint8Array>;
    readonly stderr: ReadableStream<Uint8Array>;
  },
  logger: Logger,
  defaultLevel: LogLevel,
): MirroredOutput {
  const recent = new RecentLines(RECENT_LINES);
  const stopReading = new AbortController();
  let lastOutputAt = performance.now();
  const nudges = new Set<() => void>();
  const onChunk = () => {
    lastOutputAt = performance.now();
    for (const nudge of nudges) nudge();
  };
  const mirrored = Promise.all([
    streamLogLines(child.stderr, (line) => {
      recent.push(line, "stderr");
      if (!logger.forwardLine(line, defaultLevel)) logger.log(LogLevel.Error, line);
    }, { signal: stopReading.signal, onChunk }),
    streamLogLines(child.stdout, (line) => {
      recent.push(line, "stdout");
      logger.log(defaultLevel, line);
    }, { signal: stopReading.signal, onChunk }),
  ]).catch((error) =>
    logger.warn("reading the plugin's output failed", { error: errorText(error) })
  );
  const shown = (line: string, stream: string | undefined): boolean => {
    if (stream === "stdout") return logger.isEnabled(defaultLevel);
    const entry = decodeLogEntry(line);
    if (entry === undefined) return logger.isEnabled(LogLevel.Error);
    return logger.isEnabled(entry.level === LogLevel.Default ? defaultLevel : entry.level);
  };
  return {
    recent,
    nudges: (nudge) => {
      nudges.add(nudge);
      return () => nudges.delete(nudge);
    },
    drain: async () => {
      const timer = setInterval(() => {
        if (performance.now() - lastOutputAt > DRAIN_AFTER_EXIT_MS) stopReading.abort();
      }, 100);
      await mirrored;
      clearInterval(timer);
    },
    unshown: () => recent.entries.filter((e) => !shown(e.line, e.tag)).map((e) => e.line),
  };
}
