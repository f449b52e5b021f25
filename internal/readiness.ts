/**
 * Waiting for a plugin to answer Ping: fast polling at first, so that a plugin that
 * listens early is seen at once, then Go's 50 ms rhythm; and what one probe does with
 * a failure (switch to gRPC, give up at once, or try again).
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "./log.ts";
import type { PluginConnection } from "./transport.ts";

/** Why waiting for readiness ended without the plugin being ready. */
export type NotReady =
  | { kind: "exited"; exit: unknown }
  | { kind: "timeout"; lastError: unknown }
  | { kind: "aborted"; reason: unknown }
  | { kind: "refused"; error: unknown };

/** Options for {@linkcode waitUntilReady}. */
export interface WaitUntilReadyOptions {
  /** One probe: resolves `undefined` when ready, or the plugin's `not_ready` text; throws on failure. */
  ping: (signal: AbortSignal) => Promise<string | undefined>;
  /** Settles when the process exits: readiness then fails at once. */
  exited: Promise<unknown>;
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Aborting stops waiting. */
  signal?: AbortSignal;
  /**
   * Subscribes to nudges (say, the plugin printed something, as it does when it starts
   * listening): a nudge cuts the wait before the next ping short. Returns an unsubscriber.
   */
  nudges?: (nudge: () => void) => () => void;
  /**
   * Whether a ping's failure is final (the plugin refused, rather than could not yet
   * answer): waiting then ends at once with it. Nothing is final unless given.
   */
  isFinal?: (error: unknown) => boolean;
  /** The wait before the next ping; {@linkcode retryDelay} unless given (tests). */
  delay?: (elapsedMs: number) => number;
}

/**
 * Delay before the next ping: 1 ms for the first second (a refused connection costs
 * next to nothing, and most plugins listen within it), then Go's 50 ms.
 */
export function retryDelay(elapsedMs: number): number {
  return elapsedMs < 1_000 ? 1 : 50;
}

/** How long one ping may take before it counts as failed. */
const PING_TIMEOUT_MS = 2_000;

/**
 * Pings until the plugin is ready. Resolves `undefined` when it is; otherwise
 * resolves with why not (the process exited, the time ran out, the caller aborted, or
 * the plugin refused for good), leaving it to the caller to build the error.
 */
export async function waitUntilReady(
  options: WaitUntilReadyOptions,
): Promise<NotReady | undefined> {
  const started = performance.now();
  const deadline = started + options.timeoutMs;
  const stop = new AbortController();
  let exit: { value: unknown } | undefined;
  options.exited.then((value) => {
    exit = { value };
    stop.abort();
  });
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let lastError: unknown = new Error("no ping was answered");
  // A nudge during a ping means "ping again at once"; during a wait, "stop waiting".
  let nudged = false;
  let wakeUp: (() => void) | undefined;
  const unsubscribe = options.nudges?.(() => {
    nudged = true;
    wakeUp?.();
  });
  try {
    for (;;) {
      if (exit) return { kind: "exited", exit: exit.value };
      if (options.signal?.aborted) return { kind: "aborted", reason: options.signal.reason };
      const remaining = deadline - performance.now();
      if (remaining <= 0) return { kind: "timeout", lastError };
      const attemptSignal = AbortSignal.any([
        stop.signal,
        AbortSignal.timeout(Math.ceil(Math.min(remaining, PING_TIMEOUT_MS))),
      ]);
      try {
        const notReady = await options.ping(attemptSignal);
        if (notReady === undefined) return undefined;
        lastError = new Error(`the plugin is not ready: ${notReady}`);
      } catch (error) {
        // A refusal that more time cannot change (no such method, no access): waiting
        // out the start timeout would only hide it.
        if (options.isFinal?.(error)) return { kind: "refused", error };
        lastError = error;
      }
      const wait = Math.min(
        (options.delay ?? retryDelay)(performance.now() - started),
        Math.max(0, deadline - performance.now()),
      );
      if (nudged) {
        nudged = false;
        continue;
      }
      await sleep(wait, stop.signal, (wake) => (wakeUp = wake));
      wakeUp = undefined;
      nudged = false;
    }
  } finally {
    unsubscribe?.();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Waits `ms`, or less: until `signal` aborts, or until the `wake` that `onWake` is
 * handed is called. Leaves no timer or listener behind either way.
 *
 * @param ms How long at most.
 * @param signal Ends the wait early.
 * @param onWake Given the function that ends the wait early (readiness's nudges).
 * @returns When the wait is over.
 * @example
 * ```ts
 * import { sleep } from "./readiness.ts";
 * await sleep(10_000, AbortSignal.abort()); // at once
 * ```
 */
export function sleep(
  ms: number,
  signal: AbortSignal,
  onWake?: (wake: () => void) => void,
): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
    onWake?.(done);
  });
}

/** Codes with which a plugin refuses Ping for good: waiting cannot change them. */
const FINAL_CODES: ReadonlySet<Code> = new Set([
  Code.Unimplemented,
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.InvalidArgument,
]);

/**
 * A Ping refused with a code waiting cannot change (UNIMPLEMENTED, UNAUTHENTICATED,
 * PERMISSION_DENIED, INVALID_ARGUMENT): what {@linkcode readinessProbe} throws for it.
 */
export class FinalRefusal extends Error {
  /** The plugin's answer. */
  readonly error: ConnectError;

  /**
   * Wraps the plugin's refusal.
   *
   * @param error The refusal.
   */
  constructor(error: ConnectError) {
    super(error.message, { cause: error });
    this.error = error;
  }

  /**
   * The refusal as spawn() and attach() report it: `UNAUTHENTICATED: <the plugin's words>`
   * (the code as gRPC spells it, which is what people search for).
   */
  get text(): string {
    return `${codeToString(this.error.code).toUpperCase()}: ${this.error.rawMessage}`;
  }
}

/**
 * The runtime's "permission denied" error somewhere in `error`'s causes, if any: a
 * permission the host lacks (Deno), which will not come by waiting.
 *
 * @param error A probe's failure.
 * @returns The permission error, or `undefined`.
 */
export function permissionError(error: unknown): Error | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 8; depth++) {
    if (at.message.startsWith("permission denied: run Deno with")) return at;
    at = at.cause;
  }
  return undefined;
}

/**
 * Whether a probe's failure ends the wait at once: a final refusal, or a permission
 * the host lacks. For {@linkcode WaitUntilReadyOptions.isFinal}.
 *
 * @param error A probe's failure.
 * @returns Whether it is final.
 */
export function isFinalFailure(error: unknown): boolean {
  return error instanceof FinalRefusal || permissionError(error) !== undefined;
}

/**
 * One readiness probe on a plugin's connection, for {@linkcode WaitUntilReadyOptions.ping}:
 * runs `check`; when it fails after Connect's answers said the plugin speaks only gRPC,
 * switches the connection (the next probe goes over gRPC); when Ping itself was
 * refused for good, throws a {@linkcode FinalRefusal}.
 *
 * @param options `check` (Ping, or a host's own check on `connection.transport`),
 * `judged` (whether `check` is Ping, whose refusals may be final: a custom check may
 * fail for other reasons) and the `logger` that notes a switch.
 * @returns The probe.
 */
export function readinessProbe(options: {
  connection: PluginConnection;
  check: (signal: AbortSignal) => Promise<string | undefined>;
  judged: boolean;
  logger: Logger;
}): (signal: AbortSignal) => Promise<string | undefined> {
  const { connection, check, judged, logger } = options;
  return async (signal) => {
    try {
      return await check(signal);
    } catch (error) {
      // Not a Connect server's answer: everything goes over gRPC from now on.
      if (connection.switchToGrpcIfDetected()) {
        const detected = connection.switchedFrom;
        logger.debug(`Connect's Ping got ${detected}: switching to gRPC`);
        throw new Error(`over Connect the plugin answered ${detected}; trying gRPC`, {
          cause: error,
        });
      }
      if (judged && error instanceof ConnectError && FINAL_CODES.has(error.code)) {
        throw new FinalRefusal(error);
      }
      throw error;
    }
  };
}
