/**
 * `ftl-plugin ping`: tell whether a running plugin is ready, once or until it is.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { PluginConnection, tokenHint } from "../internal/transport.ts";
import { writeStderr, writeStdout } from "#runtime";
import { CliError, ExitCode, usage } from "./failure.ts";
import * as flags from "./flags.ts";
import { readCommand } from "./command_line.ts";
import { type Found, readiness } from "./readiness.ts";
import { waiting } from "./status.ts";
import { pingSpec } from "./specs.ts";
import { isUrl, parseTarget } from "./target.ts";

/**
 * Runs `ftl-plugin ping` with the arguments after `ping`.
 *
 * @param args The arguments after `ping`.
 * @returns The exit code: 0 ready, 3 not ready (or not there).
 * @throws {CliError} For bad usage, or readiness that cannot be told.
 * @example
 * ```ts ignore
 * await pingCommand(["--wait", "10s", "http://127.0.0.1:8080"]);
 * ```
 */
export async function pingCommand(args: string[]): Promise<number> {
  const parsed = readCommand(pingSpec, args);
  if (!parsed) return ExitCode.Ok;
  const { config: given, args: { url: target } } = parsed;
  if (!isUrl(target)) {
    throw usage(
      `${JSON.stringify(target)} is not a URL (http://host:port or unix:///path)`,
      pingSpec.name,
    );
  }
  const { json, service } = given;
  const wait = given.wait ?? 0;
  const connection = new PluginConnection(parseTarget(target, pingSpec.name), {
    protocol: given.protocol,
    token: await flags.callerToken(given, pingSpec.name),
  });
  const started = performance.now();
  const deadline = started + wait;
  const found: Found = {};
  let last = "no answer";
  let done = wait > 0 ? waiting(`waiting for ${target}`, json) : () => {};
  try {
    for (;;) {
      const attempt = performance.now();
      try {
        const notReady = await connection.run(
          (transport) =>
            readiness(
              transport,
              AbortSignal.timeout(Math.max(1_000, deadline - attempt)),
              service,
              found,
            ),
          (error) => error instanceof CliError,
        );
        if (notReady === undefined) {
          done();
          done = () => {};
          const ms = performance.now() - attempt;
          if (json) {
            writeStdout(
              JSON.stringify({ ready: true, ms: Math.round(ms * 100) / 100, via: found.via }) +
                "\n",
            );
          } else {
            writeStdout(`ready (${found.via}, ${ms.toFixed(1)} ms)\n`);
          }
          return ExitCode.Ok;
        }
        last = `not ready: ${notReady}`;
      } catch (error) {
        if (error instanceof CliError) throw error;
        const e = ConnectError.from(error);
        last = `${codeToString(e.code)}: ${e.rawMessage}`;
        if (e.code === Code.Unauthenticated) {
          last += tokenHint(e.code);
          break;
        }
      }
      if (performance.now() + 50 > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    done();
    connection.close();
  }
  if (json) writeStdout(JSON.stringify({ ready: false, reason: last }) + "\n");
  else writeStderr(`not ready: ${last.replace(/^not ready: /, "")}\n`);
  return ExitCode.Unavailable;
}
