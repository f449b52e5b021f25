/**
 * The command lines of `ftl-plugin`'s commands, apart from what the commands do: help is
 * made from them, and they import nothing that reaches a plugin, so that `--help` and
 * dispatching load no RPC code (each command's own module is loaded when it runs).
 *
 * @module
 */
import { type CommandSpec, field } from "../internal/config.ts";
import { LogLevel } from "../internal/log.ts";
import { FAILURE_HELP } from "./failure.ts";
import * as flags from "./flags.ts";

const MISSING = "call needs a target and a method: call <exe|URL> <package.Service/Method> [JSON]";

/**
 * The command line of `ftl-plugin run`.
 *
 * @example
 * ```ts
 * import { runSpec } from "./specs.ts";
 * console.assert(runSpec.passthrough.required);
 * ```
 */
export const runSpec = {
  name: "ftl-plugin run",
  description: `Start a plugin, show what it serves, and mirror its logs.

Prints the endpoint, the time to ready, the protocol, and the services and methods
the plugin serves (from its reflection), then mirrors its logs until Ctrl-C stops it.
It also prints what another host's attach() needs to reach the plugin: name, endpoint,
service, protocol, pid and token (the --json ready event holds them as fields).`,
  flags: {
    dir: flags.dir("Its working directory, where .ftl goes."),
    name: field.string({
      placeholder: "NAME",
      help:
        "Its name in logs (default: the executable's base name, or the script's for deno, node, bun or python).",
    }),
    bind: field.enum(["tcp", "unix"], {
      default: "tcp",
      accepts: "tcp or unix",
      help: "A free 127.0.0.1 port, or <dir>/.ftl/<name>.sock.",
    }),
    timeout: flags.timeout("How long to wait until it is ready."),
    service: flags.service("Ping SERVICE for readiness instead of finding it by reflection."),
    protocol: flags.protocol,
    tokenFile: field.string({
      placeholder: "FILE",
      help: "Write its token to FILE (mode 0600) for call; removed at the end.",
    }),
    noAuth: field.boolean({
      help: "No token, so that anyone can call it (default: a token).",
    }),
    checksum: field.string({
      placeholder: "sha256:HEX",
      help: "Start it only if the executable's SHA-256 digest is this.",
    }),
    logLevel: flags.logLevel(
      LogLevel.Info,
      "The least level of its logs shown (see Log levels below).",
    ),
    json: flags.json("One JSON object per event on stdout; logs as JSON on stderr."),
  },
  passthrough: {
    usage: "<exe> [args…]",
    required: true,
    missing: "no plugin to run: ftl-plugin run -- <exe> [args…]",
    misplaced: "put the plugin after --",
    help: "The plugin's executable and its arguments.",
  },
  footer: `The plugin gets a fresh random token, as under the host library, and refuses calls
without it (health checks excepted): to call it from elsewhere, use --token-file, or
--no-auth. The token is printed only on stdout, for attach() (the attach line, or the
--json ready event's "token"), unless --token-file keeps it in that file; never in logs.

${flags.DURATIONS_AND_LEVELS}

${FAILURE_HELP}`,
} satisfies CommandSpec;

/**
 * The command line of `ftl-plugin call`.
 *
 * @example
 * ```ts
 * import { callSpec } from "./specs.ts";
 * console.assert(callSpec.positionals.input.default === "{}");
 * ```
 */
export const callSpec = {
  name: "ftl-plugin call",
  description: `Call one method with a JSON message and print the answer as JSON.

The target is a running plugin's URL (http://host:port or unix:///path) or an
executable, which is started with the arguments after --, called, and stopped. The
schema comes from the plugin's reflection, except for grpc.health.v1.Health and any
service's Ping (FTL's), whose schemas are known: they need no reflection (nor, for
health, a token). JSON defaults to {}; "-" reads it from stdin. A server-streaming
method prints each message as it arrives.`,
  flags: {
    ...flags.tokens,
    timeout: flags.timeout("Deadline for the call, and for an executable to be ready."),
    service: flags.service("(executable) Ping SERVICE for readiness, not found by reflection."),
    protocol: flags.protocol,
    dir: flags.dir("(executable) Its working directory."),
    logLevel: flags.logLevel(
      LogLevel.Warn,
      "(executable) The least level of its logs shown.",
    ),
    json: flags.json("Compact output, one JSON value per line; errors as JSON too."),
  },
  positionals: {
    target: { usage: "<exe|URL>", required: true, missing: MISSING },
    method: { usage: "<package.Service/Method>", required: true, missing: MISSING },
    input: { usage: "[JSON|-]", default: "{}" },
  },
  passthrough: { usage: "args…", misplaced: "plugin arguments go after --" },
  footer: `${flags.DURATIONS_AND_LEVELS}

${FAILURE_HELP}`,
} satisfies CommandSpec;

/**
 * The command line of `ftl-plugin ping`.
 *
 * @example
 * ```ts
 * import { pingSpec } from "./specs.ts";
 * console.assert(pingSpec.positionals.url.required);
 * ```
 */
export const pingSpec = {
  name: "ftl-plugin ping",
  description: `Tell whether a running plugin is ready.

Calls the plugin's Ping (the service is found by reflection, or given with
--service); a plugin without either is asked through grpc.health.v1.`,
  flags: {
    ...flags.tokens,
    service: flags.service("The service whose Ping to call (package.Service)."),
    wait: field.duration({
      help: "Keep asking until it is ready or this has passed (default: ask once).",
    }),
    protocol: flags.protocol,
    json: flags.json('{"ready":true,…} or {"ready":false,"reason":…} on stdout.'),
  },
  positionals: {
    url: { usage: "<URL>", required: true, missing: "ping needs the plugin's URL: ping <URL>" },
  },
  footer: `Durations are Go-style: 500ms, 30s, 2m, 1m30s.

${FAILURE_HELP}`,
} satisfies CommandSpec;

/**
 * The command line of `ftl-plugin version`.
 *
 * @example
 * ```ts
 * import { versionSpec } from "./specs.ts";
 * console.assert(versionSpec.name === "ftl-plugin version");
 * ```
 */
export const versionSpec = {
  name: "ftl-plugin version",
  description: "Print this package's version (also: ftl-plugin --version).",
  flags: { json: flags.json('{"version":…} on stdout.') },
  footer: FAILURE_HELP,
} satisfies CommandSpec;
