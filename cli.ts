/**
 * `ftl-plugin`: run a plugin and see what it serves, call its methods with JSON, and
 * ask a running one whether it is ready. Built on this library's host, so a plugin
 * behaves here as it will under a real host.
 *
 * ```sh
 * deno run -A jsr:@ftl-ts/plugin/cli run -- ./my-plugin
 * npx ftl-plugin call http://127.0.0.1:8080 echo.v1.EchoService/Echo '{"message":"hi"}'
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  create,
  type DescMethod,
  type DescService,
  fromJson,
  type JsonValue,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";
import { createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type Plugin, PluginStartError, spawn } from "./host.ts";
import type { PingableService } from "./guest.ts";
import { Health, HealthCheckResponse_ServingStatus } from "./gen/grpc/health/v1/health_pb.ts";
import { file_xyz_block_ftl_v1_ftl } from "./gen/xyz/block/ftl/v1/ftl_pb.ts";
import { errorText, Logger, type LogLevel, parseLogLevel } from "./internal/log.ts";
import { ReflectionClient } from "./internal/reflection_client.ts";
import {
  createPluginTransport,
  looksLikeGrpcServer,
  type WireProtocol,
} from "./internal/transport.ts";
import {
  exitProcess,
  isMainModule,
  onTerminationSignal,
  packageVersion,
  processArgs,
  processEnv,
  readStdinText,
  readTextFile,
  removeFile,
  stderrIsTerminal,
  writeSecretFile,
  writeStderr,
  writeStdout,
} from "#runtime";

/**
 * The exit codes of `ftl-plugin`.
 *
 * @example
 * ```ts
 * import { ExitCode } from "./cli.ts";
 * console.assert(ExitCode.Usage === 2);
 * ```
 */
export const ExitCode = {
  /** Success; for `run`, the plugin was stopped or exited 0. */
  Ok: 0,
  /** The plugin answered with an error; for `run`, it exited non-zero. */
  CallFailed: 1,
  /** Bad usage: an unknown command or flag, bad JSON, an unknown method. */
  Usage: 2,
  /** The plugin could not be started or reached, or was not ready. */
  Unavailable: 3,
  /** Interrupted (Ctrl-C) before the plugin was ready. */
  Interrupted: 130,
} as const;

const EXIT_CODES = `Exit codes:
  0    success (run: the plugin was stopped, or exited 0)
  1    the call failed: the plugin answered with an error (run: it exited non-zero)
  2    bad usage: unknown command or flag, bad JSON, unknown method
  3    the plugin could not be started or reached, or was not ready
  130  interrupted before the plugin was ready`;

const JSON_ERRORS =
  `With --json, a failure is one line on stdout too: {"error":{"code":C,"message":M}},
where C is the plugin's RPC code when it answered with an error (exit 1, e.g.
"not_found"), "usage" for bad usage (exit 2) or "unavailable" (exit 3). Only options
before -- count: a --json after it is the plugin's.`;

const HELP: Record<string, string> = {
  main: `ftl-plugin: run, inspect and call FTL plugins.

Usage:
  ftl-plugin run [options] -- <exe> [args…]
  ftl-plugin call [options] <exe|URL> <package.Service/Method> [JSON|-] [-- args…]
  ftl-plugin ping [options] <URL>
  ftl-plugin version              (or --version) this package's version

Run "ftl-plugin <command> --help" for a command's options.

${EXIT_CODES}
`,
  run: `ftl-plugin run: start a plugin, show what it serves, and mirror its logs.

Usage:
  ftl-plugin run [options] -- <exe> [args…]

Prints the endpoint, the time to ready, the protocol, and the services and methods
the plugin serves (from its reflection), then mirrors its logs until Ctrl-C stops it.

Options:
  --dir D          the plugin's directory: its working directory and where .ftl goes (default .)
  --name N         the plugin's name in logs (default: the executable's base name)
  --bind tcp|unix  a free 127.0.0.1 port, or <dir>/.ftl/<name>.sock (default tcp)
  --timeout D      how long to wait until it is ready (default 30s)
  --service S      ping S (package.Service) for readiness instead of finding it by reflection
  --protocol P     auto, connect, grpc or grpc-web (default auto)
  --token-file F    write the plugin's token to F (mode 0600) once it is ready, for
                   "ftl-plugin call --token-file F"; F is removed when run ends
  --no-auth        no per-plugin token, so that others can call it (default: a token)
  --log-level L    trace, debug, info, warn, error or default, in any case (default info)
  --json           one JSON object per event on stdout, logs as JSON on stderr
  -h, --help       this help

The plugin gets a fresh random token, as under the host library, and refuses calls
without it (health checks excepted): to call it from elsewhere, use --token-file, or
--no-auth. The token is never printed.

Durations are Go-style: 500ms, 30s, 2m, 1m30s.

${JSON_ERRORS}

${EXIT_CODES}
`,
  call: `ftl-plugin call: call one method with a JSON message and print the answer as JSON.

Usage:
  ftl-plugin call [options] <exe|URL> <package.Service/Method> [JSON|-] [-- args…]

The target is a running plugin's URL (http://host:port or unix:///path) or an
executable, which is started with the arguments after --, called, and stopped. The
schema comes from the plugin's reflection, except for grpc.health.v1.Health and any
service's Ping (FTL's), whose schemas are known: they need no reflection (nor, for
health, a token). JSON defaults to {}; "-" reads it from stdin. A server-streaming
method prints each message as it arrives.

Options:
  --token T        the plugin's token (default: $FTL_PLUGIN_TOKEN)
  --token-file F   read the token from F (as written by run --token-file)
  --timeout D      deadline for the call, and for an executable to be ready (default 30s)
  --service S      (executable) ping S for readiness instead of finding it by reflection
  --protocol P     auto, connect, grpc or grpc-web (default auto)
  --dir D          (executable) its directory (default .)
  --log-level L    (executable) level of its mirrored logs: trace, debug, info, warn,
                   error or default, in any case (default warn)
  --json           compact output: one JSON value per line; errors as JSON too
  -h, --help       this help

${JSON_ERRORS}

${EXIT_CODES}
`,
  ping: `ftl-plugin ping: tell whether a running plugin is ready.

Usage:
  ftl-plugin ping [options] <URL>

Calls the plugin's Ping (the service is found by reflection, or given with
--service); a plugin without either is asked through grpc.health.v1.

Options:
  --token T        the plugin's token (default: $FTL_PLUGIN_TOKEN)
  --token-file F   read the token from F (as written by run --token-file)
  --service S      the service whose Ping to call (package.Service)
  --wait D         keep asking until it is ready or D has passed (default: ask once)
  --protocol P     auto, connect, grpc or grpc-web (default auto)
  --json           {"ready":true,…} or {"ready":false,"reason":…} on stdout
  -h, --help       this help

${JSON_ERRORS}

${EXIT_CODES}
`,
};

/**
 * A failure that ends the command with `code` after printing `message` (and `hint`,
 * on a terminal's line of its own; JSON output leaves it out).
 */
class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly hint?: string,
    readonly rpcCode?: string,
  ) {
    super(message);
  }
}

const usage = (message: string, command = "main") =>
  new CliError(
    message,
    ExitCode.Usage,
    `Run "ftl-plugin ${command === "main" ? "" : `${command} `}--help".`,
  );

/** The `code` of a JSON error for a failure of the CLI's own, by its exit code. */
function errorCodeName(failure: CliError): string {
  if (failure.rpcCode) return failure.rpcCode;
  return failure.code === ExitCode.Usage ? "usage" : "unavailable";
}

/** The CLI's own arguments: those before `--` (after it they are the plugin's). */
function ownArgs(args: readonly string[]): readonly string[] {
  const dash = args.indexOf("--");
  return dash === -1 ? args : args.slice(0, dash);
}

/**
 * Runs `ftl-plugin` with `args` (without the program name) and resolves its exit code.
 *
 * @param args The command line, e.g. `["ping", "http://127.0.0.1:8080"]`.
 * @returns The exit code; see {@linkcode ExitCode}.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * console.assert((await main(["frobnicate"])) === 2);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const json = ownArgs(args).includes("--json");
  try {
    switch (command) {
      case "run":
        return await runCommand(rest);
      case "call":
        return await callCommand(rest);
      case "ping":
        return await pingCommand(rest);
      case "version":
      case "--version":
        return versionCommand(rest);
      case undefined:
      case "help":
      case "-h":
      case "--help":
        writeStdout(HELP.main);
        return command === undefined ? ExitCode.Usage : ExitCode.Ok;
      default:
        throw usage(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    const failure = error instanceof CliError
      ? error
      : new CliError(errorText(error), ExitCode.Unavailable);
    if (json) {
      const code = errorCodeName(failure);
      writeStdout(JSON.stringify({ error: { code, message: failure.message } }) + "\n");
    } else {
      const hint = failure.hint ? `\n${failure.hint}` : "";
      writeStderr(`ftl-plugin: ${failure.message}${hint}\n`);
    }
    return failure.code;
  }
}

function versionCommand(args: string[]): number {
  const extra = args.find((a) => a !== "--json");
  if (extra !== undefined) throw usage(`version takes no arguments, not ${JSON.stringify(extra)}`);
  const version = packageVersion();
  writeStdout(
    args.includes("--json") ? JSON.stringify({ version }) + "\n" : `ftl-plugin ${version}\n`,
  );
  return ExitCode.Ok;
}

// ------------------------------------------------------------------ options

const commonOptions = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  protocol: { type: "string" },
  service: { type: "string" },
  timeout: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  dir: { type: "string" },
  name: { type: "string" },
  bind: { type: "string" },
  "no-auth": { type: "boolean" },
  "log-level": { type: "string" },
  wait: { type: "string" },
} as const;

type Values = ReturnType<typeof parse>["values"];

function parse(command: string, args: string[], allowed: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: commonOptions, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage(error instanceof Error ? error.message : String(error), command);
  }
  for (const key of Object.keys(parsed.values)) {
    if (!allowed.includes(key) && key !== "help" && key !== "json") {
      throw usage(`--${key} is not an option of ${command}`, command);
    }
  }
  return parsed;
}

/**
 * A Go-style duration (`500ms`, `30s`, `2m`, `1m30s`) in milliseconds.
 *
 * @param text The duration.
 * @returns Milliseconds.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./cli.ts";
 * console.assert(parseDuration("1m30s") === 90_000);
 * ```
 */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const match = part.exec(text);
    if (!match) break;
    total += Number(match[1]) * units[match[2]];
    at = part.lastIndex;
  }
  if (text.length === 0 || at !== text.length || !(total > 0)) {
    throw new Error(`${JSON.stringify(text)} is not a duration (try 500ms, 30s, 2m or 1m30s)`);
  }
  return total;
}

function durationOption(
  command: string,
  values: Values,
  key: "timeout" | "wait",
  fallback: number,
) {
  const text = values[key];
  if (text === undefined) return fallback;
  try {
    return parseDuration(text);
  } catch (error) {
    throw usage(`--${key}: ${(error as Error).message}`, command);
  }
}

function protocolOption(command: string, values: Values): WireProtocol | "auto" {
  const p = values.protocol ?? "auto";
  if (p === "auto" || p === "connect" || p === "grpc" || p === "grpc-web") return p;
  throw usage(
    `--protocol must be auto, connect, grpc or grpc-web, not ${JSON.stringify(p)}`,
    command,
  );
}

function serviceOption(command: string, values: Values): string | undefined {
  const s = values.service;
  if (s !== undefined && !/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(s)) {
    throw usage(
      `--service must be a fully qualified name like echo.v1.EchoService, not ${JSON.stringify(s)}`,
      command,
    );
  }
  return s;
}

function logLevelOption(command: string, values: Values, fallback: LogLevel): LogLevel {
  const text = values["log-level"];
  if (text === undefined) return fallback;
  try {
    // "default" is this command's own default, as a guest's is its own.
    return parseLogLevel(text, fallback);
  } catch (error) {
    throw usage(`--log-level: ${(error as Error).message}`, command);
  }
}

function isUrl(target: string): boolean {
  return /^(https?|unix):\/\//.test(target);
}

function parseTarget(command: string, target: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw usage(`${JSON.stringify(target)} is not a URL`, command);
  }
  if (url.protocol === "https:") {
    throw usage("plugins speak h2c: use http://, not https://", command);
  }
  if (url.protocol === "unix:" && !url.pathname.startsWith("/")) {
    throw usage("a unix URL needs an absolute path: unix:///path/to.sock", command);
  }
  return url;
}

// ------------------------------------------------------------------ output

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

function logger(json: boolean, level: LogLevel): Logger {
  const tty = stderrIsTerminal();
  return new Logger({
    level,
    format: json || !tty ? "json" : "text",
    color: tty,
    write: (line) => stderrStatus.print(line),
  });
}

/** A spinner on a terminal, one plain line otherwise, nothing with --json. */
function waiting(text: string, json: boolean): () => void {
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

// ------------------------------------------------------------------ what a plugin serves

interface ServiceInfo {
  name: string;
  methods: { name: string; kind: string; input: string; output: string }[];
}

const KINDS: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server streaming",
  client_streaming: "client streaming",
  bidi_streaming: "bidi streaming",
};

/** What a plugin serves, as reflection tells it, or why that is unknown. */
interface Inventory {
  services?: ServiceInfo[];
  registry?: Registry;
  unknown?: string;
}

async function inventory(transport: Transport, signal?: AbortSignal): Promise<Inventory> {
  const reflection = new ReflectionClient(transport, signal);
  let names: string[];
  try {
    names = await reflection.listServices();
  } catch (error) {
    if (ConnectError.from(error).code === Code.Unimplemented) {
      return { unknown: "the plugin serves no reflection" };
    }
    throw error;
  }
  const registry = await reflection.registryFor(names);
  const services = names.map((name) => {
    const desc = registry.getService(name);
    return {
      name,
      methods: desc?.methods.map((m) => ({
        name: m.name,
        kind: KINDS[m.methodKind],
        input: m.input.typeName,
        output: m.output.typeName,
      })) ?? [],
    };
  });
  return { services, registry };
}

/** A service with only FTL's Ping, named `typeName`: enough to ping any plugin. */
function pingService(typeName: string): DescService {
  const dot = typeName.lastIndexOf(".");
  const ftl = file_xyz_block_ftl_v1_ftl;
  const proto = create(FileDescriptorProtoSchema, {
    name: `ftl-plugin-cli/${typeName}.proto`,
    package: dot === -1 ? "" : typeName.slice(0, dot),
    dependency: [ftl.proto.name],
    syntax: "proto3",
    service: [{
      name: typeName.slice(dot + 1),
      method: [{
        name: "Ping",
        inputType: ".xyz.block.ftl.v1.PingRequest",
        outputType: ".xyz.block.ftl.v1.PingResponse",
      }],
    }],
  });
  const registry = createFileRegistry(proto, (name) => (name === ftl.proto.name ? ftl : undefined));
  return registry.getService(typeName)!;
}

const FTL_PING_INPUT = "xyz.block.ftl.v1.PingRequest";

/**
 * One readiness check: Ping on `service` if given; else on the service that reflection
 * shows to have FTL's Ping; else grpc.health.v1. Resolves `undefined` when ready, or
 * why not; throws while the plugin cannot answer.
 */
async function readiness(
  transport: Transport,
  signal: AbortSignal,
  service: string | undefined,
  found: { inventory?: Inventory; via?: string },
): Promise<string | undefined> {
  let name = service;
  if (name === undefined) {
    found.inventory = await inventory(transport, signal);
    name = found.inventory.services?.find((s) =>
      s.methods.some((m) => m.name === "Ping" && m.input === FTL_PING_INPUT)
    )?.name;
  }
  if (name !== undefined) {
    found.via = `${name}/Ping`;
    const client = createClient(pingService(name), transport) as unknown as {
      ping(input: object, options: object): Promise<{ notReady: string }>;
    };
    const answer = await client.ping({}, { signal });
    return answer.notReady || undefined;
  }
  found.via = "grpc.health.v1.Health/Check";
  try {
    const answer = await createClient(Health, transport).check({}, { signal });
    return answer.status === HealthCheckResponse_ServingStatus.SERVING
      ? undefined
      : `health is ${HealthCheckResponse_ServingStatus[answer.status]}`;
  } catch (error) {
    if (ConnectError.from(error).code === Code.Unimplemented) {
      throw new CliError(
        "cannot tell whether the plugin is ready: it serves neither reflection nor " +
          "grpc.health.v1; name the service whose Ping to call with --service",
        ExitCode.Usage,
      );
    }
    throw error;
  }
}

// ------------------------------------------------------------------ connections

/** A transport to a plugin at a URL; with "auto", Connect until it answers like gRPC. */
class Connection {
  #transport: ReturnType<typeof createPluginTransport>;
  #detected = false;
  readonly #url: URL;
  readonly #token: string | undefined;
  readonly #auto: boolean;

  constructor(url: URL, protocol: WireProtocol | "auto", token: string | undefined) {
    this.#url = url;
    this.#token = token;
    this.#auto = protocol === "auto";
    this.#transport = this.#open(protocol === "auto" ? "connect" : protocol);
  }

  #open(protocol: WireProtocol) {
    return createPluginTransport(this.#url, protocol, {
      token: this.#token,
      onResponse: this.#auto
        ? (status, contentType) => {
          if (looksLikeGrpcServer(status, contentType)) this.#detected = true;
        }
        : undefined,
    });
  }

  /** Whether the plugin answered like a gRPC-only server, so that run would try again. */
  get switching(): boolean {
    return this.#auto && this.#detected;
  }

  /** Runs `use`, once more over gRPC if the plugin turned out to speak only gRPC. */
  async run<T>(use: (transport: Transport) => Promise<T>): Promise<T> {
    try {
      return await use(this.#transport.transport);
    } catch (error) {
      // A CliError is the answer understood (no such method, say), not a protocol's failure.
      if (!this.#auto || !this.#detected || error instanceof CliError) throw error;
      this.#transport.close();
      this.#transport = this.#open("grpc");
      this.#detected = false;
      return await use(this.#transport.transport);
    }
  }

  close(): void {
    this.#transport.close();
  }
}

async function tokenOption(command: string, values: Values): Promise<string | undefined> {
  const file = values["token-file"];
  if (file === undefined) return values.token ?? (processEnv().FTL_PLUGIN_TOKEN || undefined);
  if (values.token !== undefined) {
    throw usage("--token and --token-file do not go together: give one", command);
  }
  let text;
  try {
    text = await readTextFile(file);
  } catch (error) {
    throw usage(`--token-file: cannot read ${file}: ${errorText(error)}`, command);
  }
  const token = text?.trim();
  if (!token) {
    throw usage(
      `--token-file: ${file} ${text === undefined ? "does not exist" : "is empty"}` +
        " (run --token-file writes it once the plugin is ready, and removes it when run ends)",
      command,
    );
  }
  return token;
}

function unavailable(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof PluginStartError) return new CliError(error.message, ExitCode.Unavailable);
  // spawn() refusing its options (a name that cannot name a socket, say) is bad usage.
  if (error instanceof TypeError && error.message.startsWith("spawn: ")) {
    return new CliError(error.message.slice("spawn: ".length), ExitCode.Usage);
  }
  // Not an RPC's failure (an executable that is not there): its message says it all.
  if (!(error instanceof ConnectError)) {
    return new CliError(
      error instanceof Error ? error.message : String(error),
      ExitCode.Unavailable,
    );
  }
  const e = error;
  const message = `${codeToString(e.code)}: ${e.rawMessage}`;
  // The plugin answered, and refused: that is the call failing (exit 1), not a plugin
  // out of reach, whether reflection or the call itself met the refusal.
  if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) {
    const hint = e.code === Code.Unauthenticated ? TOKEN_HINT : "";
    return new CliError(message + hint, ExitCode.CallFailed, undefined, codeToString(e.code));
  }
  return new CliError(message, ExitCode.Unavailable);
}

const TOKEN_HINT = " (pass its token with --token, --token-file or $FTL_PLUGIN_TOKEN; " +
  "run --token-file F saves it; run --no-auth starts a plugin without one)";

/** 32 random bytes, base64url: a plugin's token, as the host library makes them. */
function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** `transport`, sending `authorization: Bearer <token>` on every call. */
function withToken(transport: Transport, token: string): Transport {
  const header = (init: ConstructorParameters<typeof Headers>[0]) => {
    const headers = new Headers(init);
    headers.set("authorization", `Bearer ${token}`);
    return headers;
  };
  return {
    unary: (method, signal, timeoutMs, init, input, contextValues) =>
      transport.unary(method, signal, timeoutMs, header(init), input, contextValues),
    stream: (method, signal, timeoutMs, init, input, contextValues) =>
      transport.stream(method, signal, timeoutMs, header(init), input, contextValues),
  };
}

function baseName(path: string): string {
  const base = path.split("/").pop() ?? path;
  return base.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_-]/g, "-") || "plugin";
}

/** The executable's base name, or the script's when the executable is a runtime. */
function pluginName(exe: string, args: readonly string[]): string {
  const runtime = /^(deno|node|bun|python3?)$/.test(baseName(exe));
  const script = args.find((a) => /\.(ts|js|mjs|cjs|py)$/.test(a));
  return runtime && script ? baseName(script) : baseName(exe);
}

/** An endpoint as people write it: no trailing slash on an http URL. */
function endpointText(url: URL): string {
  return url.protocol === "http:" ? `http://${url.host}` : url.href;
}

// ------------------------------------------------------------------ starting a plugin

interface Found {
  inventory?: Inventory;
  via?: string;
}

interface StartOptions {
  name: string;
  dir: string;
  exe: string;
  args: string[];
  service: string | undefined;
  found: Found;
  logger: Logger;
  timeout: number;
  protocol: WireProtocol | "auto";
  bind: "tcp" | "unix";
  /** The plugin's token, made here (not by spawn) so that run can hand it out; none: no auth. */
  token: string | undefined;
  json: boolean;
  onSignal?: () => void;
}

/**
 * Spawns the plugin with a spinner while it starts. Resolves without a plugin if
 * Ctrl-C came first; a plugin that can never be found ready fails at once.
 */
async function startPlugin(options: StartOptions): Promise<{
  plugin?: Plugin<PingableService>;
  /** The plugin's transport, its token included. */
  transport?: Transport;
  interrupted: AbortSignal;
  removeSignals: () => void;
}> {
  const interrupted = new AbortController();
  const giveUp = new AbortController();
  const removeSignals = onTerminationSignal(() => {
    interrupted.abort(new Error("interrupted"));
    options.onSignal?.();
  });
  const done = waiting(`starting ${options.name}`, options.json);
  const authorized = (transport: Transport) =>
    options.token === undefined ? transport : withToken(transport, options.token);
  try {
    const plugin = await spawn({
      name: options.name,
      dir: options.dir,
      exe: options.exe,
      args: options.args,
      // Readiness is checked below, so the typed client's service is only a placeholder.
      service: pingService(options.service ?? "ftl.plugin.cli.Unknown") as PingableService,
      readiness: async (transport, signal) => {
        try {
          return await readiness(authorized(transport), signal, options.service, options.found);
        } catch (error) {
          // Waiting longer would not help: stop now, with the reason.
          if (error instanceof CliError) giveUp.abort(error);
          throw error;
        }
      },
      logger: options.logger,
      startTimeout: options.timeout,
      protocol: options.protocol,
      bind: options.bind,
      // The token goes as spawn's own would; an empty one also keeps a token in this
      // process's environment (for call) from reaching a plugin started without one.
      auth: false,
      env: { FTL_PLUGIN_TOKEN: options.token ?? "" },
      signal: AbortSignal.any([interrupted.signal, giveUp.signal]),
    });
    return {
      plugin,
      transport: authorized(plugin.transport),
      interrupted: interrupted.signal,
      removeSignals,
    };
  } catch (error) {
    removeSignals();
    if (giveUp.signal.aborted) throw giveUp.signal.reason;
    if (interrupted.signal.aborted) return { interrupted: interrupted.signal, removeSignals };
    throw unavailable(error);
  } finally {
    done();
  }
}

// ------------------------------------------------------------------ run

async function runCommand(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const { values, positionals } = parse("run", dash === -1 ? args : args.slice(0, dash), [
    "dir",
    "name",
    "bind",
    "timeout",
    "service",
    "protocol",
    "no-auth",
    "token-file",
    "log-level",
  ]);
  if (values.help) {
    writeStdout(HELP.run);
    return ExitCode.Ok;
  }
  if (positionals.length > 0) {
    throw usage(`unexpected ${JSON.stringify(positionals[0])}: put the plugin after --`, "run");
  }
  const [exe, ...exeArgs] = dash === -1 ? [] : args.slice(dash + 1);
  if (!exe) throw usage("no plugin to run: ftl-plugin run -- <exe> [args…]", "run");
  const json = values.json === true;
  const timeout = durationOption("run", values, "timeout", 30_000);
  const protocol = protocolOption("run", values);
  const service = serviceOption("run", values);
  const bind = values.bind ?? "tcp";
  if (bind !== "tcp" && bind !== "unix") {
    throw usage(`--bind must be tcp or unix, not ${JSON.stringify(bind)}`, "run");
  }
  const name = values.name ?? pluginName(exe, exeArgs);
  const log = logger(json, logLevelOption("run", values, 9));
  const auth = values["no-auth"] !== true;
  const tokenFile = values["token-file"];
  if (tokenFile !== undefined && !auth) {
    throw usage(
      "--token-file and --no-auth do not go together: without auth there is no token",
      "run",
    );
  }
  if (tokenFile === "") throw usage("--token-file needs a path", "run");
  const token = auth ? randomToken() : undefined;

  let stopRequested: (() => void) | undefined;
  const started = performance.now();
  const found: Found = {};
  const { plugin, transport, interrupted, removeSignals } = await startPlugin({
    name,
    dir: values.dir ?? ".",
    exe,
    args: exeArgs,
    service,
    found,
    logger: log,
    timeout,
    protocol,
    bind,
    token,
    json,
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
        throw usage(`--token-file: cannot write ${tokenFile}: ${errorText(error)}`, "run");
      }
    }
    // Reflection answered during readiness unless --service skipped it.
    const inv: Inventory = found.inventory ??
      await inventory(transport).catch((error) => ({
        unknown: `reflection failed: ${errorText(error)}`,
      }));
    if (json) {
      writeStdout(
        JSON.stringify({
          event: "ready",
          name,
          pid: plugin.pid,
          endpoint: endpointText(plugin.endpoint),
          protocol: plugin.protocol,
          readyMs: Math.round(readyMs * 10) / 10,
          readiness: found.via,
          auth,
          ...(tokenFile !== undefined ? { tokenFile } : {}),
          services: inv.services ?? null,
          ...(inv.unknown ? { servicesUnknown: inv.unknown } : {}),
        }) + "\n",
      );
    } else {
      const authText = !auth
        ? "none (--no-auth)"
        : tokenFile !== undefined
        ? `a token, in ${tokenFile} (call --token-file ${tokenFile} …)`
        : "a token (run --token-file F saves it for callers; --no-auth: none)";
      writeStdout(describeReady(name, plugin, readyMs, inv, found.via, authText));
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
        lines.push(
          `      ${m.name.padEnd(width)}  ${m.kind}  ${m.input} → ${m.output}`,
        );
      }
    }
  } else {
    lines.push(`  services   unknown: ${inv.unknown}`);
  }
  lines.push("Ctrl-C stops it.");
  return lines.join("\n") + "\n";
}

// ------------------------------------------------------------------ call

async function callCommand(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const { values, positionals } = parse("call", dash === -1 ? args : args.slice(0, dash), [
    "token",
    "token-file",
    "timeout",
    "service",
    "protocol",
    "dir",
    "log-level",
  ]);
  if (values.help) {
    writeStdout(HELP.call);
    return ExitCode.Ok;
  }
  const exeArgs = dash === -1 ? [] : args.slice(dash + 1);
  const [target, methodName, input = "{}", ...extra] = positionals;
  if (!target || !methodName) {
    throw usage(
      "call needs a target and a method: call <exe|URL> <package.Service/Method> [JSON]",
      "call",
    );
  }
  if (extra.length > 0) {
    throw usage(`unexpected ${JSON.stringify(extra[0])}: plugin arguments go after --`, "call");
  }
  const json = values.json === true;
  const timeout = durationOption("call", values, "timeout", 30_000);
  const protocol = protocolOption("call", values);
  const service = serviceOption("call", values);
  const [serviceName, method] = splitMethod(methodName);
  const text = input === "-" ? await readStdinText() : input;
  let body: JsonValue;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw usage(`the message is not JSON: ${(error as Error).message}`, "call");
  }

  if (isUrl(target)) {
    if (exeArgs.length > 0) throw usage("arguments after -- are for an executable target", "call");
    const connection = new Connection(
      parseTarget("call", target),
      protocol,
      await tokenOption("call", values),
    );
    try {
      return await connection.run((transport) =>
        invoke(
          transport,
          serviceName,
          method,
          body,
          timeout,
          json,
          undefined,
          () => connection.switching,
        )
      );
    } finally {
      connection.close();
    }
  }

  const { plugin, transport, interrupted, removeSignals } = await startPlugin({
    name: pluginName(target, exeArgs),
    dir: values.dir ?? ".",
    exe: target,
    args: exeArgs,
    service,
    found: {},
    logger: logger(json, logLevelOption("call", values, 13)),
    timeout,
    protocol,
    bind: "tcp",
    token: randomToken(),
    json,
  });
  if (!plugin || !transport) return ExitCode.Interrupted;
  try {
    return await invoke(
      transport,
      serviceName,
      method,
      body,
      timeout,
      json,
      interrupted,
    );
  } finally {
    removeSignals();
    await plugin.stop();
  }
}

function splitMethod(text: string): [string, string] {
  const slash = text.lastIndexOf("/");
  const cut = slash !== -1 ? slash : text.lastIndexOf(".");
  const service = text.slice(0, cut).replace(/^\//, "");
  const method = text.slice(cut + 1);
  if (cut <= 0 || !service || !method) {
    throw usage(
      `${
        JSON.stringify(text)
      } is not a method: write package.Service/Method, e.g. echo.v1.EchoService/Echo`,
      "call",
    );
  }
  return [service, method];
}

/**
 * The descriptor of `service`: known for grpc.health.v1 and FTL's Ping, else from
 * reflection. The known ones never ask reflection: a plugin may serve none, and ours
 * want the token for it while they answer health without one.
 */
async function describe(
  transport: Transport,
  service: string,
  method: string,
): Promise<{ desc: DescService; method: DescMethod; registry?: Registry }> {
  if (service === Health.typeName) return { desc: Health, method: methodOf(Health, method) };
  if (method === "Ping" || method === "ping") {
    const desc = pingService(service);
    return { desc, method: methodOf(desc, method) };
  }
  let registry: Registry | undefined;
  let why: string;
  try {
    registry = await new ReflectionClient(transport).registryFor([service]);
    why = "";
  } catch (error) {
    const e = ConnectError.from(error);
    if (e.code !== Code.Unimplemented && e.code !== Code.NotFound) throw error;
    why = e.code === Code.NotFound
      ? `the plugin does not serve ${service}`
      : "the plugin serves no reflection";
  }
  const desc = registry?.getService(service);
  if (!desc) {
    throw new CliError(
      `cannot call ${service}/${method}: ${why || `the plugin does not serve ${service}`}`,
      ExitCode.Usage,
    );
  }
  return { desc, method: methodOf(desc, method), registry };
}

function methodOf(desc: DescService, method: string): DescMethod {
  const found = desc.methods.find((m) => m.name === method || m.localName === method);
  if (!found) {
    throw new CliError(
      `${desc.typeName} has no method ${method}; it has ${
        desc.methods.map((m) => m.name).join(", ")
      }`,
      ExitCode.Usage,
    );
  }
  return found;
}

async function invoke(
  transport: Transport,
  serviceName: string,
  methodName: string,
  body: JsonValue,
  timeoutMs: number,
  json: boolean,
  signal?: AbortSignal,
  wrongProtocol?: () => boolean,
): Promise<number> {
  let described;
  try {
    described = await describe(transport, serviceName, methodName);
  } catch (error) {
    if (wrongProtocol?.()) throw error;
    throw unavailable(error);
  }
  const { desc, method, registry } = described;
  if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
    throw new CliError(
      `${method.name} is ${
        KINDS[method.methodKind]
      }: call sends one message, so only unary and server-streaming methods`,
      ExitCode.Usage,
    );
  }
  let message;
  try {
    message = fromJson(method.input, body, { registry });
  } catch (error) {
    throw usage(
      `the message is not a valid ${method.input.typeName}: ${(error as Error).message}`,
      "call",
    );
  }
  const print = (output: Parameters<typeof toJson>[1]) => {
    const value = toJson(method.output, output as never, { registry });
    writeStdout((json ? JSON.stringify(value) : JSON.stringify(value, null, 2)) + "\n");
  };
  const client = createClient(desc, transport) as unknown as Record<
    string,
    (input: unknown, options: object) => unknown
  >;
  const options = { timeoutMs, signal };
  try {
    if (method.methodKind === "unary") {
      print(await (client[method.localName](message, options) as Promise<never>));
    } else {
      for await (
        const output of client[method.localName](message, options) as AsyncIterable<never>
      ) {
        print(output);
      }
    }
    return ExitCode.Ok;
  } catch (error) {
    // Not the plugin's answer: it speaks another protocol, and the caller tries that.
    if (wrongProtocol?.()) throw error;
    const e = ConnectError.from(error);
    if (e.code === Code.Unavailable) throw unavailable(e);
    if (json) {
      writeStdout(
        JSON.stringify({ error: { code: codeToString(e.code), message: e.rawMessage } }) + "\n",
      );
    } else {
      const hint = e.code === Code.Unauthenticated ? TOKEN_HINT : "";
      writeStderr(`error: ${codeToString(e.code)}: ${e.rawMessage}${hint}\n`);
    }
    return ExitCode.CallFailed;
  }
}

// ------------------------------------------------------------------ ping

async function pingCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse("ping", args, [
    "token",
    "token-file",
    "service",
    "wait",
    "protocol",
  ]);
  if (values.help) {
    writeStdout(HELP.ping);
    return ExitCode.Ok;
  }
  const [target, ...extra] = positionals;
  if (!target) throw usage("ping needs the plugin's URL: ping <URL>", "ping");
  if (extra.length > 0) throw usage(`unexpected ${JSON.stringify(extra[0])}`, "ping");
  if (!isUrl(target)) {
    throw usage(
      `${JSON.stringify(target)} is not a URL (http://host:port or unix:///path)`,
      "ping",
    );
  }
  const json = values.json === true;
  const wait = durationOption("ping", values, "wait", 0);
  const service = serviceOption("ping", values);
  const connection = new Connection(
    parseTarget("ping", target),
    protocolOption("ping", values),
    await tokenOption("ping", values),
  );
  const started = performance.now();
  const deadline = started + wait;
  const found: { via?: string } = {};
  let last = "no answer";
  let done = wait > 0 ? waiting(`waiting for ${target}`, json) : () => {};
  try {
    for (;;) {
      const attempt = performance.now();
      try {
        const notReady = await connection.run((transport) =>
          readiness(
            transport,
            AbortSignal.timeout(Math.max(1_000, deadline - attempt)),
            service,
            found,
          )
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
          last += TOKEN_HINT;
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

if (isMainModule(import.meta)) {
  await exitProcess(await main(processArgs()));
}
