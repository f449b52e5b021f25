/**
 * The streams we reset, remembered so that the frames the peer sent before it learnt of
 * a reset are ignored (RFC 9113 section 5.1) instead of each earning another RST_STREAM:
 * a client that sends all its HEADERS, far past our stream limit, and then DATA on every
 * stream, would otherwise make us queue two resets per refused stream.
 *
 * Ids are kept as runs of consecutive ids (of one parity, as the peer numbers its
 * streams), so a burst of refused streams costs one run however long it is. The runs
 * are bounded: past {@linkcode MAX_RUNS} the lowest is forgotten, and every id at or
 * below the highest one forgotten counts as reset by us from then on. Wrongly ignoring a
 * stray frame on a long-closed stream costs nothing; answering each one is what a flood
 * of queued resets is made of.
 *
 * @module
 */

/** Runs kept per parity: each is two numbers, so at most 16 KiB of them. */
export const MAX_RUNS = 1024;

/** One parity's runs, `[from, to, from, to, …]` sorted, apart by more than one step. */
interface Runs {
  bounds: number[];
  /** Ids at or below this count as reset (0: none forgotten yet). */
  floor: number;
}

/**
 * A bounded set of stream ids, exact for the recent ones; see the module documentation.
 *
 * @example
 * ```ts
 * import { ResetIds } from "./reset_memory.ts";
 * const reset = new ResetIds();
 * for (let id = 2001; id < 20_000; id += 2) reset.add(id);
 * reset.has(2001); // true
 * reset.has(1999); // false
 * reset.runs; // 1
 * ```
 */
export class ResetIds {
  readonly #byParity: [Runs, Runs] = [{ bounds: [], floor: 0 }, { bounds: [], floor: 0 }];
  readonly #maxRuns: number;

  /** A set that keeps at most `maxRuns` runs of each parity. */
  constructor(maxRuns: number = MAX_RUNS) {
    if (!Number.isInteger(maxRuns) || maxRuns < 1) {
      throw new TypeError(`maxRuns must be a positive integer, not ${maxRuns}`);
    }
    this.#maxRuns = maxRuns;
  }

  /** Runs held now, both parities together. */
  get runs(): number {
    return (this.#byParity[0].bounds.length + this.#byParity[1].bounds.length) / 2;
  }

  /** The highest id forgotten (of either parity): at or below it, `has` says yes. */
  get floor(): number {
    return Math.max(this.#byParity[0].floor, this.#byParity[1].floor);
  }

  /** Whether stream `id` was reset by us (or is below what was forgotten). */
  has(id: number): boolean {
    const runs = this.#byParity[id & 1];
    if (id <= runs.floor) return true;
    const bounds = runs.bounds;
    const at = runAtOrBelow(bounds, id);
    return at >= 0 && id <= bounds[at + 1];
  }

  /** Remembers stream `id`. */
  add(id: number): void {
    const runs = this.#byParity[id & 1];
    if (id <= runs.floor) return;
    const bounds = runs.bounds;
    const last = bounds.length - 2;
    // The usual case: the newest stream, at or just past the last run.
    if (last < 0 || id > bounds[last + 1] + 2) {
      bounds.push(id, id);
    } else if (id === bounds[last + 1] + 2) {
      bounds[last + 1] = id;
      return;
    } else {
      const at = runAtOrBelow(bounds, id);
      if (at >= 0 && id <= bounds[at + 1]) return;
      const joinsBelow = at >= 0 && bounds[at + 1] + 2 === id;
      const joinsAbove = at + 2 < bounds.length && bounds[at + 2] - 2 === id;
      if (joinsBelow && joinsAbove) {
        bounds[at + 1] = bounds[at + 3];
        bounds.splice(at + 2, 2);
        return;
      }
      if (joinsBelow) {
        bounds[at + 1] = id;
        return;
      }
      if (joinsAbove) {
        bounds[at + 2] = id;
        return;
      }
      bounds.splice(at + 2, 0, id, id);
    }
    if (bounds.length > 2 * this.#maxRuns) {
      runs.floor = bounds[1];
      bounds.splice(0, 2);
    }
  }
}

/** The index of the last run that starts at or below `id`, or -2 if none does. */
function runAtOrBelow(bounds: readonly number[], id: number): number {
  let low = 0;
  let high = bounds.length / 2 - 1;
  let found = -2;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (bounds[2 * middle] <= id) {
      found = 2 * middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}
