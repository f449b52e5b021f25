/**
 * Host services: what a host serves to its own plugin (go-plugin's GRPCBroker, done the
 * way FTL hands a plugin its address). The host listens on a private unix socket with
 * the guest's own server stack (the router with its token gate, the HTTP/2 engine), and
 * the plugin finds it through `FTL_HOST_BIND` and `FTL_HOST_TOKEN`
 * (`host_client.ts` is the guest's side).
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { bindUrl } from "./bind.ts";
import { HOST_BIND_ENV, HOST_TOKEN_ENV } from "./host_client.ts";
import type { Logger } from "./log.ts";
import { createPluginHandler } from "./router.ts";
import { serveHttp, settledWithin } from "./server/serve.ts";
import { randomToken } from "./transport.ts";
import { makeDirectory, makePrivateTempDir, processEnv, removeFile, removeTree } from "#runtime";

/**
 * A service the host serves to its plugin, with the object implementing it. Build one
 * with {@linkcode hostService} to have a missing method be a compile error; a literal
 * `{ service, implementation }` is checked when `spawn()` starts.
 *
 * @example
 * ```ts
 * import type { HostService } from "@ftl-ts/plugin/host";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const echo: HostService = {
 *   service: EchoService,
 *   implementation: {
 *     ping: () => ({}),
 *     echo: (req: { message: string }) => ({ message: `host: ${req.message}` }),
 *     async *count() {},
 *     fail: () => ({}),
 *   },
 * };
 * ```
 */
export interface HostService<S extends DescService = DescService> {
  /** The service, as protoc-gen-es generates it. */
  readonly service: S;
  /** An object with every method of `service`, as a guest's implementation is. */
  readonly implementation: object;
}

/**
 * A {@linkcode HostService} whose implementation TypeScript checks against `service`.
 *
 * @param service The service, as protoc-gen-es generates it.
 * @param implementation Every method of it.
 * @returns The pair, for `spawn({ hostServices: [...] })`.
 * @example
 * ```ts
 * import { hostService } from "@ftl-ts/plugin/host";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 *
 * const echo = hostService(EchoService, {
 *   ping: () => ({}),
 *   echo: (req) => ({ message: `host: ${req.message}` }),
 *   async *count() {},
 *   fail: () => ({}),
 * });
 * ```
 */
export function hostService<S extends DescService>(
  service: S,
  implementation: ServiceImpl<S>,
): HostService<S> {
  return { service, implementation };
}

/** Served by every host-service server already: a host service of that name would clash. */
const BUILT_IN = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

/**
 * Refuses `hostServices` that cannot be served, before anything starts: not an array,
 * an entry that is no service descriptor, an implementation missing a method, a service
 * given twice or one the server has built in.
 *
 * @param hostServices `spawn()`'s option, as it came.
 * @throws {TypeError} Naming the entry and what is wrong with it.
 */
export function checkHostServices(hostServices: unknown): void {
  if (hostServices === undefined) return;
  if (!Array.isArray(hostServices)) {
    throw new TypeError(
      `spawn: hostServices must be an array of { service, implementation }, not ${
        describe(hostServices)
      }`,
    );
  }
  const seen = new Set<string>();
  hostServices.forEach((entry: unknown, i) => {
    const where = `spawn: hostServices[${i}]`;
    if (typeof entry !== "object" || entry === null) {
      throw new TypeError(`${where} must be { service, implementation }, not ${describe(entry)}`);
    }
    const { service, implementation } = entry as Record<string, unknown>;
    if (!isServiceDescriptor(service)) {
      throw new TypeError(
        `${where}.service must be a service descriptor (a protoc-gen-es \`…Service\`), not ${
          describe(service)
        }`,
      );
    }
    const name = service.typeName;
    if (typeof implementation !== "object" || implementation === null) {
      throw new TypeError(
        `${where}.implementation (of ${name}) must be an object, not ${describe(implementation)}`,
      );
    }
    for (const method of service.methods) {
      if (typeof (implementation as Record<string, unknown>)[method.localName] !== "function") {
        throw new TypeError(
          `${where}.implementation (of ${name}) has no method ${method.localName} for ${method.name}`,
        );
      }
    }
    if (BUILT_IN.has(name)) {
      throw new TypeError(`${where}: ${name} is served by the host's server already`);
    }
    if (seen.has(name)) throw new TypeError(`${where}: ${name} is given twice`);
    seen.add(name);
  });
}

function isServiceDescriptor(value: unknown): value is DescService {
  const desc = value as Partial<DescService> | null;
  return typeof desc === "object" && desc !== null && desc.kind === "service" &&
    typeof desc.typeName === "string" && Array.isArray(desc.methods);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return typeof value === "string" ? JSON.stringify(value) : `${typeof value} ${String(value)}`;
}

/** The host's server for one plugin, from {@linkcode startHostServices}. */
export interface HostServer {
  /** What the plugin's environment gets: the socket's URL and the token. */
  readonly env: Readonly<Record<string, string>>;
  /** Where it listens (`unix:///…`); `undefined` when there is nothing to serve. */
  readonly url: URL | undefined;
  /**
   * Cancels the calls still running, stops listening and removes the socket (and the
   * temporary directory). Idempotent; never rejects.
   */
  close(): Promise<void>;
  /** For a failing start: closes, then throws `error` on. */
  closeAndThrow(error: unknown): Promise<never>;
}

/** Longest socket path: `sun_path` holds 108 bytes with the NUL, less one for staging. */
const MAX_SOCKET_PATH_BYTES = 106;
/** Largest request message a host service accepts, as gRPC's default. */
const READ_MAX_BYTES = 4 * 1024 * 1024;
/** How long closing waits for cancelled calls and connections to wind down. */
const CLOSE_WAIT_MS = 2_000;

/**
 * Starts serving `options.hostServices` to the plugin about to be launched, on
 * `<dir>/.ftl/<name>.host.sock` (or in a private temporary directory, when the working
 * directory is off or that path is too long for a socket), with a fresh token. With no
 * host services it serves nothing, and blanks the two variables should the host's own
 * environment carry them (a host that is itself a plugin must not pass its host's token
 * on).
 *
 * @param options The plugin's name, directory, `workingDir` and `hostServices` (checked
 * by {@linkcode checkHostServices} already).
 * @param logger Where failing host-service calls are logged.
 * @returns The server, to close once the plugin is stopped for good.
 */
export async function startHostServices(
  options: {
    name: string;
    dir: string;
    workingDir?: boolean;
    hostServices?: readonly HostService[];
  },
  logger: Logger,
): Promise<HostServer> {
  const services = options.hostServices ?? [];
  if (services.length === 0) {
    const inherited = processEnv();
    const env: Record<string, string> = {};
    for (const key of [HOST_BIND_ENV, HOST_TOKEN_ENV]) if (key in inherited) env[key] = "";
    const close = () => Promise.resolve();
    return { env, url: undefined, close, closeAndThrow: (error) => Promise.reject(error) };
  }
  const fileName = `${options.name.replace(/[^\w.-]/g, "_")}.host.sock`;
  let path = options.workingDir === false ? undefined : `${options.dir}/.ftl/${fileName}`;
  let tempDir: string | undefined;
  if (path === undefined || byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    tempDir = await makePrivateTempDir("ftl-host-");
    path = `${tempDir}/${fileName}`;
  } else {
    await makeDirectory(`${options.dir}/.ftl`, 0o700);
  }
  const removeAll = async () => {
    await (tempDir ? removeTree(tempDir) : removeFile(path)).catch(() => {});
  };
  if (byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    await removeAll();
    throw new Error(
      `cannot serve host services: the socket path ${path} is longer than a unix socket's ${MAX_SOCKET_PATH_BYTES} bytes (set TMPDIR to a shorter directory)`,
    );
  }
  const token = randomToken();
  const cancelCalls = new AbortController();
  const handler = createPluginHandler({
    services: services.map(({ service, implementation }) => [service, implementation] as const),
    logger,
    readMaxBytes: READ_MAX_BYTES,
    shutdownSignal: cancelCalls.signal,
    trailers: true,
    token,
  });
  let server;
  try {
    server = await serveHttp({
      address: { kind: "unix", path },
      handler,
      onError: (error) => logger.error("a host service request failed", error),
      headerTimeoutMs: 30_000,
      server: "engine",
    });
  } catch (error) {
    await removeAll();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot serve host services: ${reason}`, { cause: error });
  }
  const url = bindUrl(server.address);
  logger.debug(`serving host services on ${url.href}`);
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      // The plugin is gone (or never came): nobody waits for these answers.
      cancelCalls.abort(new ConnectError("the plugin has stopped", Code.Unavailable));
      await settledWithin(server.shutdown(), CLOSE_WAIT_MS);
      await removeAll();
    })();
  return {
    env: { [HOST_BIND_ENV]: url.href, [HOST_TOKEN_ENV]: token },
    url,
    close,
    closeAndThrow: async (error) => {
      await close();
      throw error;
    },
  };
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}
