/**
 * The guest's side of host services (`host_services.ts` is the host's): typed clients
 * for what the host serves, over one connection to the socket the host named in
 * `FTL_HOST_BIND`, with the token from `FTL_HOST_TOKEN` on every call.
 *
 * @module
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { bindUrl, parseBindUrl } from "./bind.ts";
import type { PluginTransport } from "./transport.ts";

/** The variable a plugin finds the host's services in: `unix:///…/<name>.host.sock`. */
export const HOST_BIND_ENV = "FTL_HOST_BIND";
/** The variable holding the token calls to the host's services must carry. */
export const HOST_TOKEN_ENV = "FTL_HOST_TOKEN";

/** Clients of the host's services, and the means to drop their connection. */
export interface HostClients {
  /** A client of `service` on the host; see `PluginContext.host`. */
  host<S extends DescService>(service: S): Client<S>;
  /** Drops the connection: later calls fail UNAVAILABLE. Idempotent. */
  close(): void;
}

/**
 * Clients of the services the host at `env`'s `FTL_HOST_BIND` serves. Every service
 * shares one connection, dialled by the first call; the client code itself is loaded
 * then too, so a plugin that never calls its host starts no slower.
 *
 * @param env The plugin's environment.
 * @returns The clients' factory.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Code, ConnectError } from "@connectrpc/connect";
 * import { EchoService } from "../gen/echo/v1/echo_pb.ts";
 * import { hostClients } from "./host_client.ts";
 *
 * // A host that serves nothing (FTL's Go host, say) sets no FTL_HOST_BIND.
 * const clients = hostClients({});
 * assert.throws(
 *   () => clients.host(EchoService),
 *   (error) => error instanceof ConnectError && error.code === Code.FailedPrecondition,
 * );
 * ```
 */
export function hostClients(env: Readonly<Record<string, string | undefined>>): HostClients {
  const bind = env[HOST_BIND_ENV] || undefined;
  const token = env[HOST_TOKEN_ENV] || undefined;
  let connection: Promise<PluginTransport> | undefined;
  let closed = false;
  const made = new Map<string, Client<DescService>>();
  let transport: Transport | undefined;
  const lazyTransport = (endpoint: URL): Transport => {
    const open = () =>
      connection ??= import("./transport.ts").then(({ createPluginTransport }) => {
        const opened = createPluginTransport(endpoint, "connect", { token, peer: "host services" });
        if (closed) opened.close();
        return opened;
      });
    return {
      unary: async (...args) => (await open()).transport.unary(...args),
      stream: async (...args) => (await open()).transport.stream(...args),
    };
  };
  return {
    host<S extends DescService>(service: S): Client<S> {
      if (service?.kind !== "service" || typeof service.typeName !== "string") {
        throw new TypeError(
          "ctx.host(service): pass a service descriptor (a protoc-gen-es …Service)",
        );
      }
      if (bind === undefined) {
        // Thrown, not deferred to the first call: a plugin that needs its host's services
        // learns at create() that this host has none (FTL's Go host never has).
        throw new ConnectError(
          `ctx.host(${service.typeName}): the host serves no services to this plugin (${HOST_BIND_ENV} is not set; @ftl-ts/plugin's spawn() sets it when given hostServices)`,
          Code.FailedPrecondition,
        );
      }
      if (transport === undefined) {
        let endpoint: URL;
        try {
          endpoint = bindUrl(parseBindUrl(bind));
        } catch (error) {
          throw new ConnectError(
            `ctx.host(${service.typeName}): ${HOST_BIND_ENV}: ${(error as Error).message}`,
            Code.FailedPrecondition,
          );
        }
        transport = lazyTransport(endpoint);
      }
      let client = made.get(service.typeName);
      if (client === undefined) {
        client = createClient(service as DescService, transport);
        made.set(service.typeName, client);
      }
      return client as Client<S>;
    },
    close() {
      closed = true;
      // A transport that never loaded has nothing to close (and must not reject unhandled).
      void connection?.then((opened) => opened.close(), () => {});
    },
  };
}
