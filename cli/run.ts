/**
 * `ftl-plugin run`: start a plugin, show what it serves, and mirror its logs until
 * Ctrl-C stops it.
 *
 * @module
 */
import type { Plugin } from "../host.ts";
import type { PingableService } from "../internal/plugin.ts";
import { errorText } from "../internal/log.ts";
import { randomToken } from "../internal/transport.ts";
import { readTextFile, removeFile, writeSecretFile, writeStdout } from "#runtime";
import { ExitCode, usage } from "./failure.ts";
import { readCommand } from "./command_line.ts";
import type { Found } from "./readiness.ts";
import { type Inventory, inventory } from "./schema.ts";
import { runSpec } from "./specs.ts";
import { startPlugin } from "./start.ts";
import { cliLogger } from "./status.ts";
import { endpointText, pluginName } from "./target.ts";

/**
 * Runs `ftl-plugin run` with the arguments after `run`.
 *
 * @param args The arguments after `run`.
 * @returns The exit code.
 * @throws {CliError} For bad usage, or a plugin that could not be started.
 * @example
 * ```ts ignore
 * await runCommand(["--no-auth", "--", "./my-plugin"]);
 * ```
 */
export async function runCommand(args: string[]): Promise<number> {
  const parsed = readCommand(runSpec, args);
  if (!parsed) return ExitCode.Ok;
  const { config: given, rest: [exe, ...exeArgs] } = parsed;
  const { json, tokenFile } = given;
  const name = given.name ?? pluginName(exe, exeArgs);
  const auth = !given.noAuth;
  if (tokenFile !== undefined && !auth) {
    throw usage(
      "--token-file and --no-auth do not go together: without auth there is no token",
      runSpec.name,
    );
  }
  if (tokenFile === "") throw usage("--token-file needs a path", runSpec.name);
  const token = auth ? randomToken() : undefined;

  let stopRequested: (() => void) | undefined;
  const started = performance.now();
  const found: Found = {};
  const { plugin, transport, interrupted, removeSignals } = await startPlugin({
    name,
    dir: given.dir,
    exe,
    args: exeArgs,
    service: given.service,
    found,
    logger: cliLogger(json, given.logLevel),
    timeout: given.timeout,
    protocol: given.protocol,
    bind: given.bind,
    token,
    json,
    checksum: given.checksum,
    onSignal: () => stopRequested?.(),
  });
  if (!plugin || !transport) return ExitCode.Interrupted;
  const readyMs = performance.now() - started;
  let wroteTokenFile = false;
  try {
    if (tokenFile !== undefined && token !== undefined) {
      try {
        await writeSecretFile(tokenFile, token + "\n");
        wroteTokenFile = true;
      } catch (error) {
        throw usage(`--token-file: cannot write ${tokenFile}: ${errorText(error)}`, runSpec.name);
      }
    }
    // What attach() needs, the token included: printed on purpose, never logged. With
    // --token-file the token stays in that file (0600), which the output names instead.
    const attachInfo = {
      name,
      endpoint: endpointText(plugin.endpoint),
      service: found.via?.endsWith("/Ping") ? found.via.slice(0, -"/Ping".length) : null,
      protocol: plugin.protocol,
      pid: plugin.pid,
      ...(token === undefined ? {} : tokenFile !== undefined ? { tokenFile } : { token }),
    };
    // Reflection answered during readiness unless --service skipped it.
    const inv: Inventory = found.inventory ??
      await inventory(transport).catch((error) => ({
        unknown: `reflection failed: ${errorText(error)}`,
      }));
    if (json) {
      writeStdout(
        JSON.stringify({
          event: "ready",
          ...attachInfo,
          readyMs: Math.round(readyMs * 10) / 10,
          readiness: found.via,
          auth,
          services: inv.services ?? null,
          ...(inv.unknown ? { servicesUnknown: inv.unknown } : {}),
        }) + "\n",
      );
    } else {
      const authText = !auth
        ? "none (--no-auth)"
        : tokenFile !== undefined
        ? `a token, in ${tokenFile} (call --token-file ${tokenFile} …)`
        : "a token, in the attach line below (--token-file F keeps it in F instead)";
      writeStdout(
        describeReady(name, plugin, readyMs, inv, found.via, authText) +
          `  attach     ${JSON.stringify(attachInfo)}\nCtrl-C stops it.\n`,
      );
    }
    const stopped = new Promise<"stopped">((resolve) => {
      stopRequested = () => resolve("stopped");
      if (interrupted.aborted) resolve("stopped");
    });
    const outcome = await Promise.race([stopped, plugin.exited]);
    const exit = outcome === "stopped" ? await plugin.stop() : outcome;
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    const event = outcome === "stopped" ? "stopped" : "exited";
    if (json) {
      writeStdout(JSON.stringify({ event, code: exit.code, signal: exit.signal }) + "\n");
    } else {
      writeStdout(`${name} ${event} (${how})\n`);
    }
    if (outcome === "stopped") return ExitCode.Ok;
    return exit.code === 0 ? ExitCode.Ok : ExitCode.CallFailed;
  } finally {
    removeSignals();
    await plugin.stop();
    // The token died with the plugin; a file another run has since rewritten is theirs.
    if (wroteTokenFile && (await readTextFile(tokenFile!).catch(() => ""))?.trim() === token) {
      await removeFile(tokenFile!).catch(() => {});
    }
  }
}

function describeReady(
  name: string,
  plugin: Plugin<PingableService>,
  readyMs: number,
  inv: Inventory,
  via: string | undefined,
  auth: string,
): string {
  const lines = [
    `${name} is ready (${readyMs.toFixed(0)} ms)`,
    `  endpoint   ${endpointText(plugin.endpoint)}`,
    `  protocol   ${plugin.protocol}`,
    `  pid        ${plugin.pid}`,
    `  auth       ${auth}`,
  ];
  if (via) lines.push(`  readiness  ${via}`);
  if (inv.services) {
    lines.push("  services");
    for (const s of inv.services) {
      lines.push(`    ${s.name}`);
      const width = Math.max(...s.methods.map((m) => m.name.length), 0);
      for (const m of s.methods) {
        lines.push(`      ${m.name.padEnd(width)}  ${m.kind}  ${m.input} → ${m.output}`);
      }
    }
  } else {
    lines.push(`  services   unknown: ${inv.unknown}`);
  }
  return lines.join("\n") + "\n";
}
