/**
 * Go-style durations (`500ms`, `30s`, `2m`, `1m30s`) as people write them on a command
 * line, read into milliseconds and written back for usage texts.
 *
 * @module
 */

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * A Go-style duration (`500ms`, `30s`, `2m`, `1m30s`) in milliseconds, or `undefined`
 * when `text` is not one (empty, zero, or with anything but numbers and units).
 *
 * @param text The duration.
 * @returns Milliseconds, more than 0; `undefined` when `text` is not a duration.
 * @example
 * ```ts
 * import { durationMs } from "./duration.ts";
 * console.assert(durationMs("1m30s") === 90_000);
 * console.assert(durationMs("soon") === undefined);
 * ```
 */
export function durationMs(text: string): number | undefined {
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const match = part.exec(text);
    if (!match) break;
    total += Number(match[1]) * UNITS[match[2]];
    at = part.lastIndex;
  }
  return text.length === 0 || at !== text.length || !(total > 0) ? undefined : total;
}

/**
 * A Go-style duration (`500ms`, `30s`, `2m`, `1m30s`) in milliseconds.
 *
 * @param text The duration.
 * @returns Milliseconds.
 * @throws {Error} When `text` is not a duration; the message quotes it and shows examples.
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * console.assert(parseDuration("1m30s") === 90_000);
 * ```
 */
export function parseDuration(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined) {
    throw new Error(`${JSON.stringify(text)} is not a duration (try 500ms, 30s, 2m or 1m30s)`);
  }
  return ms;
}

/**
 * Milliseconds as the shortest Go-style duration that reads them back exactly, for
 * defaults shown in usage texts.
 *
 * @param ms A duration in milliseconds, 0 or more.
 * @returns Such as `30s`, `1m30s` or `250ms`; `0s` for 0.
 * @example
 * ```ts
 * import { formatDuration } from "./duration.ts";
 * console.assert(formatDuration(90_000) === "1m30s");
 * ```
 */
export function formatDuration(ms: number): string {
  let rest = ms;
  let text = "";
  for (const [unit, size] of Object.entries(UNITS).reverse()) {
    const count = unit === "ms" ? rest : Math.floor(rest / size);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * size;
  }
  return text || "0s";
}
