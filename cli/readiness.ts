/**
 * Whether a plugin is ready, asked as the CLI asks it: FTL's Ping on the service that
 * has it, else grpc.health.v1.
 *
 * @module
 */
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import { CliError, ExitCode } from "./failure.ts";
import { pingService } from "./ping_schema.ts";
import type { Inventory } from "./schema.ts";

const FTL_PING_INPUT = "xyz.block.ftl.v1.PingRequest";

/** What a readiness check learnt on the way: what the plugin serves, and what it asked. */
export interface Found {
  /** What reflection said the plugin serves, unless `--service` made asking needless. */
  inventory?: Inventory;
  /** The method that answered, such as `echo.v1.EchoService/Ping`. */
  via?: string;
}

/**
 * One readiness check: Ping on `service` if given; else on the service that reflection
 * shows to have FTL's Ping; else grpc.health.v1.
 *
 * @param transport The plugin's transport, its token included.
 * @param signal Ends the check.
 * @param service The service whose Ping to call, if the user named it.
 * @param found Filled with what the check learnt.
 * @returns `undefined` when ready, or why not.
 * @throws {CliError} (exit 2) When readiness cannot be told: neither reflection nor health.
 * @throws While the plugin cannot answer.
 * @example
 * ```ts ignore
 * const notReady = await readiness(transport, AbortSignal.timeout(1_000), undefined, {});
 * ```
 */
export async function readiness(
  transport: Transport,
  signal: AbortSignal,
  service: string | undefined,
  found: Found,
): Promise<string | undefined> {
  let name = service;
  if (name === undefined) {
    // Reflection's client and schemas are loaded only when the service must be found.
    const { inventory } = await import("./schema.ts");
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
