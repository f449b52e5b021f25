/**
 * One process of a plugin, from its start to its reaping: `spawn()` launches one, and
 * supervision one more after each crash. A launch writes the pid file, mirrors the
 * output and waits for readiness; its end drains the output and removes the pid file
 * and the socket. What lives across processes (the working dir, the token, the clients'
 * connection) belongs to the caller.
 *
 * @module
 */
import type { Transport } from "@connectrpc/connect";
import { describeExit, PluginStartError } from "./plugin.ts";
import { errorText, type Logger, type LogLevel } from "./log.ts";
import type { PidFile } from "./pid_file.ts";
import { type MirroredOutput, mirrorOutput } from "./plugin_output.ts";
import {
  type FinalRefusal,
  isFinalFailure,
  type NotReady,
  permissionError,
  readinessProbe,
  waitUntilReady,
} from "./readiness.ts";
import type { PluginConnection } from "./transport.ts";
import { removeFile, signalGroup } from "#runtime";
import type { Child, ProcessExit } from "./runtime/types.ts";

/** What every launch of one plugin shares: prepared once by `spawn()`. */
export interface LaunchPlan {
  /** The plugin's name. */
  readonly name: string;
  /** The plugin's logger (scoped to its name): its mirrored lines and the host's own. */
  readonly logger: Logger;
  /** The level of stdout lines and of JSON lines at level 0. */
  readonly defaultLevel: LogLevel;
  /** Milliseconds to wait for readiness. */
  readonly timeoutMs: number;
  /** The pid file, when the working dir is on. */
  readonly pidFile?: PidFile;
  /** Whether a failed readiness check is judged as Ping's own answer (see readinessProbe). */
  readonly judged: boolean;
  /** The address for the next process: a fresh port, or the same socket path. */
  endpoint(): Promise<URL>;
  /** Runs before each restart's process starts (not the first's): checks to repeat. */
  beforeRestart?(): Promise<void>;
  /** Starts a process that serves on `endpoint`. */
  start(endpoint: URL): Promise<Child>;
  /** One readiness check on `transport`: `undefined` when ready, or why not. */
  check(transport: Transport): (signal: AbortSignal) => Promise<string | undefined>;
}

/** A process that became ready, as {@linkcode launch} returns it. */
export interface Launched {
  /** The process. */
  readonly child: Child;
  /** Where it serves. */
  readonly endpoint: URL;
  /** Its output, being mirrored. */
  readonly output: MirroredOutput;
  /** Resolves once it has exited, its output is drained and its pid file and socket are gone. */
  readonly exited: Promise<ProcessExit>;
  /**
   * SIGTERM to its group, SIGKILL after `graceMs` (and to whatever is left of the group
   * once it is reaped); resolves with `exited`. The first call's promise for every later
   * one: after a crash, `stop(0)` reaps what the process left in its group.
   */
  stop(graceMs: number): Promise<ProcessExit>;
}

/** A launch's outcome: a ready process, or why it did not become ready (already reaped). */
export type LaunchResult =
  | { launched: Launched }
  | { failed: PluginStartError; exit: ProcessExit };

/**
 * Starts one process of the plugin at `endpoint` and waits until it is ready, probing
 * through `connection`. A process that does not become ready is killed and reaped
 * before this returns; so is one when anything here throws.
 *
 * @param plan What every launch shares.
 * @param endpoint Where the process is to serve (`connection`'s endpoint).
 * @param connection The connection readiness probes on (it may switch to gRPC).
 * @param signal Aborting it ends the wait for readiness (the launch fails).
 * @returns The ready process, or the start error and the exit.
 */
export async function launch(
  plan: LaunchPlan,
  endpoint: URL,
  connection: PluginConnection,
  signal?: AbortSignal,
): Promise<LaunchResult> {
  const child = await plan.start(endpoint);
  let output: MirroredOutput | undefined;
  let exited: Promise<ProcessExit> = child.exited;
  let stopping: Promise<ProcessExit> | undefined;
  const stop = (graceMs: number) => (stopping ??= stopChild(child, exited, graceMs, !output));
  try {
    if (plan.pidFile) await plan.pidFile.write(child.pid);
    const mirrored = output = mirrorOutput(child, plan.logger, plan.defaultLevel);
    exited = child.exited.then(async (exit) => {
      await mirrored.drain();
      if (plan.pidFile) await plan.pidFile.forget(child.pid);
      if (endpoint.protocol === "unix:") {
        await removeFile(decodeURIComponent(endpoint.pathname)).catch(() => {});
      }
      return exit;
    });
    const notReady = await waitUntilReady({
      ping: readinessProbe({
        connection,
        check: plan.check(connection.transport),
        judged: plan.judged,
        logger: plan.logger,
      }),
      isFinal: isFinalFailure,
      exited: child.exited,
      // Output often means the plugin has just started listening: ping at once then.
      nudges: mirrored.nudges,
      timeoutMs: plan.timeoutMs,
      signal,
    });
    if (notReady) {
      const exit = await stop(0);
      const failed = startError({ ...plan, notReady, output: mirrored, exit, connection });
      return { failed, exit };
    }
    return { launched: { child, endpoint, output: mirrored, exited, stop } };
  } catch (error) {
    await stop(0);
    throw error;
  }
}

async function stopChild(
  child: Child,
  exited: Promise<ProcessExit>,
  graceMs: number,
  unread: boolean,
): Promise<ProcessExit> {
  let done = false;
  const reaped = child.exited.then(() => (done = true));
  if (graceMs > 0 && signalGroup(child.pid, "SIGTERM")) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([reaped, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }
  if (!done) signalGroup(child.pid, "SIGKILL");
  // Pipes nobody reads yet (it failed before mirroring began) must not hold it up.
  if (unread) await Promise.all([child.stdout.cancel(), child.stderr.cancel()]).catch(() => {});
  await reaped;
  // Whatever else is left in the group (a child that ignored SIGTERM) goes too.
  signalGroup(child.pid, "SIGKILL");
  return await exited;
}

function startError(failure: {
  name: string;
  notReady: NotReady;
  timeoutMs: number;
  output: MirroredOutput;
  exit: ProcessExit;
  connection: PluginConnection;
}): PluginStartError {
  const { name, notReady, exit, connection } = failure;
  const lines = failure.output.recent.lines;
  // The lines the log already showed are not repeated (a usage text would appear twice).
  const unshown = failure.output.unshown();
  switch (notReady.kind) {
    case "exited":
      return new PluginStartError(
        `plugin ${name} ${describeExit(exit)} before it was ready`,
        lines,
        { exit, unshown },
      );
    case "timeout":
      return new PluginStartError(
        `plugin ${name} was not ready after ${failure.timeoutMs} ms (last ping: ${
          errorText(notReady.lastError)
        })`,
        lines,
        { cause: notReady.lastError, unshown },
      );
    case "aborted":
      return new PluginStartError(`spawning plugin ${name} was aborted`, lines, {
        cause: notReady.reason,
        unshown,
      });
    case "refused": {
      const denied = permissionError(notReady.error);
      if (denied) {
        return new PluginStartError(
          `cannot reach plugin ${name}: ${denied.message}`,
          lines,
          { cause: notReady.error, unshown },
        );
      }
      const refusal = notReady.error as FinalRefusal;
      const via = connection.switchedFrom
        ? ` over gRPC (over Connect it answered ${connection.switchedFrom})`
        : connection.protocol === "connect"
        ? ""
        : ` over ${connection.protocol}`;
      return new PluginStartError(
        `plugin ${name} refused Ping${via}: ${refusal.text}`,
        lines,
        { cause: refusal.error, unshown },
      );
    }
  }
}
