/**
 * The schemas of what a plugin serves: from its gRPC reflection, or known without
 * asking (grpc.health.v1 and FTL's Ping on any service).
 *
 * @module
 */
import type { DescMethod, DescService, Registry } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { Health } from "../gen/grpc/health/v1/health_pb.ts";
import { ReflectionClient } from "../internal/reflection_client.ts";
import { pingService } from "./ping_schema.ts";
import { CliError, ExitCode } from "./failure.ts";

/** One service a plugin serves, as the CLI lists it. */
export interface ServiceInfo {
  /** Its full name, such as `echo.v1.EchoService`. */
  name: string;
  /** Its methods: name, kind (see {@linkcode KINDS}), input and output types' full names. */
  methods: { name: string; kind: string; input: string; output: string }[];
}

/**
 * Each kind of method, as the CLI words it.
 *
 * @example
 * ```ts
 * import { KINDS } from "./schema.ts";
 * console.assert(KINDS.server_streaming === "server streaming");
 * ```
 */
export const KINDS: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server streaming",
  client_streaming: "client streaming",
  bidi_streaming: "bidi streaming",
};

/** What a plugin serves, as reflection tells it, or why that is unknown. */
export interface Inventory {
  /** The services, when reflection answered. */
  services?: ServiceInfo[];
  /** Their descriptors. */
  registry?: Registry;
  /** Why the services are unknown, when they are. */
  unknown?: string;
}

/**
 * Asks the plugin's reflection what it serves.
 *
 * @param transport The plugin's transport.
 * @param signal Ends the asking.
 * @returns The services, or why they are unknown (a plugin without reflection).
 * @example
 * ```ts ignore
 * const { services } = await inventory(plugin.transport);
 * ```
 */
export async function inventory(transport: Transport, signal?: AbortSignal): Promise<Inventory> {
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
  const services = names.map((name) => ({
    name,
    methods: registry.getService(name)?.methods.map((m) => ({
      name: m.name,
      kind: KINDS[m.methodKind],
      input: m.input.typeName,
      output: m.output.typeName,
    })) ?? [],
  }));
  return { services, registry };
}

/**
 * The descriptor of `service` and its `method`: known for grpc.health.v1 and FTL's Ping,
 * else from reflection. The known ones never ask reflection: a plugin may serve none,
 * and ours want the token for it while they answer health without one.
 *
 * @param transport The plugin's transport.
 * @param service The service's full name.
 * @param method The method's name (or its local name).
 * @returns The service, the method and, from reflection, the registry of their types.
 * @throws {CliError} (exit 2) When the plugin serves no such service or method.
 * @example
 * ```ts ignore
 * const { method } = await describe(transport, "echo.v1.EchoService", "Echo");
 * ```
 */
export async function describe(
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
  let why = `the plugin does not serve ${service}`;
  try {
    registry = await new ReflectionClient(transport).registryFor([service]);
  } catch (error) {
    const e = ConnectError.from(error);
    if (e.code !== Code.Unimplemented && e.code !== Code.NotFound) throw error;
    if (e.code === Code.Unimplemented) why = "the plugin serves no reflection";
  }
  const desc = registry?.getService(service);
  if (!desc) throw new CliError(`cannot call ${service}/${method}: ${why}`, ExitCode.Usage);
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
