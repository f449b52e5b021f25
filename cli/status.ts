/**
 * What `ftl-plugin` draws on stderr while it waits: a spinner on a terminal (one plain
 * line otherwise), with the mirrored logs written above it rather than after its text.
 *
 * @module
 */
import { Logger, type LogLevel } from "../internal/log.ts";
import { stderrIsTerminal, writeStderr } from "#runtime";

/**
 * Lines written to a terminal below a status line (the spinner's), which stays last:
 * a line written while the status shows replaces it, and the status is drawn again
 * under it. Written straight, a log line would start where the spinner's text ends.
 */
class StatusLine {
  #status: string | undefined;
  readonly #write: (text: string) => void;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** Draws `status` in place of the current one; `undefined` clears the line. */
  set(status: string | undefined): void {
    this.#status = status;
    this.#write(`\r\x1b[2K${status ?? ""}`);
  }

  /** Writes `text` (whole lines) above the status line. */
  print(text: string): void {
    this.#write(this.#status === undefined ? text : `\r\x1b[2K${text}${this.#status}`);
  }
}

const stderrStatus = new StatusLine(writeStderr);

/**
 * The logger for a plugin's mirrored logs: text on a terminal (drawn above the spinner),
 * JSON otherwise or with `--json`.
 *
 * @param json Whether the command was given `--json`.
 * @param level The least severe level shown.
 * @returns The logger.
 * @example
 * ```ts
 * import { LogLevel } from "../internal/log.ts";
 * import { cliLogger } from "./status.ts";
 * console.assert(cliLogger(true, LogLevel.Warn).level === LogLevel.Warn);
 * ```
 */
export function cliLogger(json: boolean, level: LogLevel): Logger {
  const tty = stderrIsTerminal();
  return new Logger({
    level,
    format: json || !tty ? "json" : "text",
    color: tty,
    write: (line) => stderrStatus.print(line),
  });
}

/**
 * Shows that the CLI waits for `text`: a spinner on a terminal, one plain line
 * otherwise, nothing with `--json`.
 *
 * @param text What it waits for, such as `starting echo`.
 * @param json Whether the command was given `--json`.
 * @returns A function that takes the spinner away.
 * @example
 * ```ts
 * import { waiting } from "./status.ts";
 * const done = waiting("starting echo", true);
 * done();
 * ```
 */
export function waiting(text: string, json: boolean): () => void {
  if (json) return () => {};
  if (!stderrIsTerminal()) {
    writeStderr(`${text}…\n`);
    return () => {};
  }
  const frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";
  let i = 0;
  const draw = () => stderrStatus.set(`${frames[i++ % frames.length]} ${text}…`);
  draw();
  const timer = setInterval(draw, 80);
  return () => {
    clearInterval(timer);
    stderrStatus.set(undefined);
  };
}
