/**
 * A spawned plugin's life after it became ready: without `restart` it ends with its
 * process; with it, a supervisor starts the plugin again each time it dies, with
 * exponential backoff, until `stop()` or until it has failed `maxRestarts` times in a
 * row. The clients' connection follows each new process; while the plugin is down,
 * calls fail UNAVAILABLE at once.
 *
 * @module
 */
import { describeExit, PluginExitError, PluginGaveUpError } from "./plugin.ts";
import { errorText } from "./log.ts";
import { launch, type Launched, type LaunchPlan } from "./launch.ts";
import { sleep } from "./readiness.ts";
import { PluginConnection } from "./transport.ts";
import type { ProcessExit } from "./runtime/types.ts";

/**
 * `spawn()`'s `restart` option: start the plugin again when it dies unexpectedly.
 *
 * @example
 * ```ts
 * import type { RestartOptions } from "@ftl-ts/plugin/host";
 *
 * const restart: RestartOptions = {
 *   maxRestarts: 10,
 *   backoff: { initialMs: 200, maxMs: 10_000, factor: 2 },
 *   resetAfterMs: 30_000,
 *   onRestart: (event) => console.log(`restart ${event.attempt} in ${event.delayMs} ms`),
 * };
 * ```
 */
export interface RestartOptions {
  /**
   * Restarts in a row (without a healthy period between them) before giving up;
   * `Infinity` never gives up.
   * @default {5}
   */
  maxRestarts?: number;
  /** The wait before each restart: `initialMs × factor^(attempt − 1)`, at most `maxMs`. */
  backoff?: {
    /** @default {500} */
    initialMs?: number;
    /** @default {30_000} */
    maxMs?: number;
    /** @default {2} */
    factor?: number;
  };
  /**
   * A process that was ready and alive this long before it died counts as healthy:
   * the count of restarts in a row (and so the wait) starts again from the first.
   * @default {60_000}
   */
  resetAfterMs?: number;
  /** Called as each restart is scheduled, before the wait; what it throws is logged. */
  onRestart?: (event: RestartEvent) => void;
}

/**
 * One restart being scheduled, as `onRestart` gets it.
 *
 * @example
 * ```ts
 * import type { RestartEvent } from "@ftl-ts/plugin/host";
 *
 * const onRestart = (event: RestartEvent) =>
 *   console.log(`${event.reason.message}; restart ${event.attempt} in ${event.delayMs} ms`);
 * ```
 */
export interface RestartEvent {
  /** The plugin's name. */
  readonly name: string;
  /** Which restart in a row this is: 1, 2, … (back to 1 after a healthy period). */
  readonly attempt: number;
  /** Milliseconds until the new process starts. */
  readonly delayMs: number;
  /**
   * Why: the {@linkcode PluginExitError} of a process that died, or what failed a
   * restart (a `PluginStartError` when the new process never became ready).
   */
  readonly reason: Error;
  /** How the last process that ran ended. */
  readonly exit: ProcessExit;
  /** The last lines (at most 20) it printed. */
  readonly lastLines: readonly string[];
}

/** {@linkcode RestartOptions} with every default filled in. */
export interface RestartPolicy {
  readonly maxRestarts: number;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly resetAfterMs: number;
  readonly onRestart?: (event: RestartEvent) => void;
}

const RESTART_KEYS = ["maxRestarts", "backoff", "resetAfterMs", "onRestart"];
const BACKOFF_KEYS = ["initialMs", "maxMs", "factor"];

/**
 * Checks `spawn()`'s `restart` option and fills in its defaults; throws a TypeError
 * naming the option at the first bad value.
 *
 * @param restart The option as given.
 * @returns The policy, or `undefined` without the option.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { restartPolicy } from "./supervise.ts";
 *
 * assert.equal(restartPolicy({ backoff: { initialMs: 100 } })?.maxMs, 30_000);
 * assert.throws(() => restartPolicy({ maxRestarts: -1 }), /restart.maxRestarts/);
 * ```
 */
export function restartPolicy(restart: RestartOptions | undefined): RestartPolicy | undefined {
  if (restart === undefined) return undefined;
  const bad = (option: string, must: string, value: unknown): never => {
    throw new TypeError(`spawn: ${option} must be ${must}, not ${describe(value)}`);
  };
  if (typeof restart !== "object" || restart === null) {
    bad("restart", "an object (`{}` for the defaults)", restart);
  }
  unknownKeys("restart", restart, RESTART_KEYS);
  const { backoff = {} } = restart;
  if (typeof backoff !== "object" || backoff === null) bad("restart.backoff", "an object", backoff);
  unknownKeys("restart.backoff", backoff, BACKOFF_KEYS);
  const {
    maxRestarts = 5,
    resetAfterMs = 60_000,
    onRestart,
  } = restart;
  const { initialMs = 500, maxMs = Math.max(30_000, initialMs), factor = 2 } = backoff;
  if (!(maxRestarts === Infinity || (Number.isInteger(maxRestarts) && maxRestarts >= 0))) {
    bad("restart.maxRestarts", "a whole number, 0 or more (or Infinity)", maxRestarts);
  }
  if (!(Number.isFinite(initialMs) && initialMs >= 0)) {
    bad("restart.backoff.initialMs", "a number of ms, 0 or more", initialMs);
  }
  if (!(Number.isFinite(maxMs) && maxMs >= initialMs)) {
    bad("restart.backoff.maxMs", `a number of ms, at least initialMs (${initialMs})`, maxMs);
  }
  if (!(Number.isFinite(factor) && factor >= 1)) {
    bad("restart.backoff.factor", "a number, 1 or more", factor);
  }
  if (!(Number.isFinite(resetAfterMs) && resetAfterMs > 0)) {
    bad("restart.resetAfterMs", "a positive number of ms", resetAfterMs);
  }
  if (onRestart !== undefined && typeof onRestart !== "function") {
    bad("restart.onRestart", "a function", onRestart);
  }
  return { maxRestarts, initialMs, maxMs, factor, resetAfterMs, onRestart };
}

function unknownKeys(option: string, value: object, known: readonly string[]): void {
  const unknown = Object.keys(value).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw new TypeError(
      `spawn: ${option}.${unknown} is not an option (there are ${known.join(", ")})`,
    );
  }
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * The wait before restart number `attempt` (1-based) in a row.
 *
 * @param policy The backoff.
 * @param attempt Which restart in a row.
 * @returns Milliseconds.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backoffDelay, restartPolicy } from "./supervise.ts";
 *
 * const policy = restartPolicy({ backoff: { initialMs: 100, maxMs: 350, factor: 2 } })!;
 * assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(policy, n)), [100, 200, 350, 350]);
 * ```
 */
export function backoffDelay(
  policy: Pick<RestartPolicy, "initialMs" | "maxMs" | "factor">,
  attempt: number,
): number {
  return Math.min(policy.maxMs, Math.round(policy.initialMs * policy.factor ** (attempt - 1)));
}

/** The moving parts of a plugin handle: what changes as processes come and go. */
export interface PluginLife {
  /** The current (or last) process's pid. */
  readonly pid: number;
  /** The current (or last) process's endpoint. */
  readonly endpoint: URL;
  /** Restarts begun so far. */
  readonly restarts: number;
  /** Aborted when the plugin's life ends (see Plugin.signal). */
  readonly signal: AbortSignal;
  /** Resolves when it has ended, with the last process's exit. */
  readonly exited: Promise<ProcessExit>;
  /** Ends it: see Plugin.stop. */
  stop(options?: { graceMs?: number }): Promise<ProcessExit>;
}

const DEFAULT_STOP_GRACE_MS = 5_000;

/**
 * Watches the ready process `first`: without a `policy`, the plugin's life ends with
 * it; with one, each unexpected exit (any exit that `stop()` did not ask for, code 0
 * included) schedules a restart.
 *
 * @param first The first process, ready.
 * @param context The launch plan, the clients' connection, the policy, the token and
 * the `signal` option (aborting it stops the plugin).
 * @returns The plugin's life.
 */
export function superviseLife(first: Launched, context: {
  plan: LaunchPlan;
  connection: PluginConnection;
  policy?: RestartPolicy;
  token?: string;
  signal?: AbortSignal;
  /** Runs once the life has ended, before `exited` resolves (things that lived across processes). */
  onEnd?: () => Promise<void> | void;
}): PluginLife {
  return new Life(first, context);
}

class Life implements PluginLife {
  readonly #lifetime = new AbortController();
  /** Aborted by stop(): wakes a backoff wait and ends a restart's wait for readiness. */
  readonly #halt = new AbortController();
  #resolveEnded!: (exit: ProcessExit) => void;
  readonly #ended = new Promise<ProcessExit>((resolve) => (this.#resolveEnded = resolve));
  readonly #context: Parameters<typeof superviseLife>[1];
  #current: Launched;
  #readyAt = performance.now();
  #lastExit: ProcessExit | undefined;
  #attempt = 0;
  #restarts = 0;
  #recovering: Promise<void> = Promise.resolve();
  #stopping: Promise<ProcessExit> | undefined;

  constructor(first: Launched, context: Parameters<typeof superviseLife>[1]) {
    this.#context = context;
    this.#current = first;
    this.#watch(first);
    const { signal } = context;
    if (signal) {
      const onAbort = () => void this.stop().catch(() => {});
      if (signal.aborted) onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#lifetime.signal.addEventListener("abort", () => {
        signal.removeEventListener("abort", onAbort);
      });
    }
  }

  get pid(): number {
    return this.#current.child.pid;
  }

  get endpoint(): URL {
    return this.#current.endpoint;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get signal(): AbortSignal {
    return this.#lifetime.signal;
  }

  get exited(): Promise<ProcessExit> {
    return this.#ended;
  }

  stop({ graceMs = DEFAULT_STOP_GRACE_MS }: { graceMs?: number } = {}): Promise<ProcessExit> {
    if (!(graceMs >= 0)) {
      return Promise.reject(new TypeError(`stop: graceMs must be 0 or more, not ${graceMs}`));
    }
    this.#stopping ??= this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<ProcessExit> {
    this.#halt.abort();
    this.#context.connection.close();
    // A restart under way ends first: it reaps what it started, or hands it over.
    await this.#recovering;
    const exit = await this.#current.stop(graceMs);
    await this.#end(new PluginExitError(this.#context.plan.name, this.#lastExit ?? exit));
    return await this.#ended;
  }

  #watch(launched: Launched): void {
    this.#current = launched;
    this.#readyAt = performance.now();
    this.#lastExit = undefined;
    launched.child.exited.then((exit) => {
      const { plan, connection, policy } = this.#context;
      if (this.#halt.signal.aborted) {
        // Stopping: the end is known at once, whatever stop() still has to reap.
        if (launched === this.#current) this.#lifetime.abort(new PluginExitError(plan.name, exit));
        return;
      }
      if (!policy) {
        // Without restart the handle ends with this process: say so at once (calls fail
        // fast), and resolve `exited` only once its last lines are mirrored.
        connection.close();
        this.#lifetime.abort(new PluginExitError(plan.name, exit));
        void launched.exited.then(() => this.#end());
        return;
      }
      connection.suspend(`plugin ${plan.name} ${describeExit(exit)} and is restarting`);
      this.#recovering = this.#recover(launched, exit, policy);
    });
  }

  async #recover(crashed: Launched, exit: ProcessExit, policy: RestartPolicy): Promise<void> {
    const { plan, connection, token } = this.#context;
    // Reaps what it left in its group, and drains its output: its last lines are all in.
    await crashed.stop(0);
    this.#lastExit = exit;
    let lastLines = crashed.output.recent.lines;
    let reason: Error = new PluginExitError(plan.name, exit);
    if (performance.now() - this.#readyAt >= policy.resetAfterMs) this.#attempt = 0;
    for (;;) {
      if (this.#halt.signal.aborted) return;
      if (this.#attempt >= policy.maxRestarts) {
        return this.#giveUp(this.#lastExit, lastLines, reason);
      }
      const attempt = ++this.#attempt;
      this.#restarts++;
      const delayMs = backoffDelay(policy, attempt);
      // Calls made meanwhile say what they wait for: the last failure, not the first crash.
      connection.suspend(`${firstLine(reason.message)}; restart ${attempt} in ${delayMs} ms`);
      plan.logger.warn(
        `${reason.message}; restart ${attempt}${
          policy.maxRestarts === Infinity ? "" : ` of ${policy.maxRestarts}`
        } in ${delayMs} ms`,
      );
      try {
        policy.onRestart?.({
          name: plan.name,
          attempt,
          delayMs,
          reason,
          exit: this.#lastExit,
          lastLines,
        });
      } catch (error) {
        plan.logger.error(`restart.onRestart threw: ${errorText(error)}`);
      }
      if (!(await this.#wait(delayMs))) return;
      let probe: PluginConnection | undefined;
      try {
        await plan.beforeRestart?.();
        const endpoint = await plan.endpoint();
        if (this.#halt.signal.aborted) return;
        // Readiness is probed on a connection of its own: the clients' one goes on
        // failing fast until the new process answers.
        probe = new PluginConnection(endpoint, { protocol: connection.protocol, token });
        const result = await launch(plan, endpoint, probe, this.#halt.signal);
        if ("failed" in result) {
          this.#lastExit = result.exit;
          if (this.#halt.signal.aborted) return;
          reason = result.failed;
          lastLines = result.failed.lastLines;
          continue;
        }
        // stop() may have come while it became ready: it stops whatever is current.
        this.#watch(result.launched);
        if (this.#halt.signal.aborted) return;
        connection.repoint(endpoint);
        plan.logger.info(`restarted (pid ${result.launched.child.pid})`);
        return;
      } catch (error) {
        if (this.#halt.signal.aborted) return;
        reason = error instanceof Error ? error : new Error(String(error));
      } finally {
        probe?.close();
      }
    }
  }

  /** Waits `ms`; false if stop() came first. */
  async #wait(ms: number): Promise<boolean> {
    await sleep(ms, this.#halt.signal);
    return !this.#halt.signal.aborted;
  }

  async #giveUp(exit: ProcessExit, lastLines: readonly string[], cause: Error): Promise<void> {
    const { plan, connection } = this.#context;
    const reason = new PluginGaveUpError(plan.name, exit, {
      restarts: this.#restarts,
      lastLines,
      cause,
    });
    // Later calls carry the verdict, not the message of the crash that began it.
    connection.suspend(reason.message);
    connection.close();
    plan.logger.error(`${reason.message}: later calls fail UNAVAILABLE`);
    await this.#end(reason);
  }

  /** Ends the life (once): aborts `signal` with `reason` if not yet, then resolves `exited`. */
  async #end(reason?: PluginExitError): Promise<void> {
    if (!this.#lifetime.signal.aborted) this.#lifetime.abort(reason);
    const ending = this.#lastExit ?? await this.#current.exited;
    if (this.#endRan) return;
    this.#endRan = true;
    try {
      await this.#context.onEnd?.();
    } finally {
      this.#resolveEnded(ending);
    }
  }

  #endRan = false;
}

/** A message's first line: a start failure's message goes on with the plugin's output. */
function firstLine(message: string): string {
  const end = message.indexOf("\n");
  return end < 0 ? message : message.slice(0, end);
}
