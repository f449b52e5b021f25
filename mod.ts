/**
 * Sub-process RPC plugins that speak FTL's plugin protocol, for Deno and Node.
 *
 * A *guest* (the plugin) serves a Connect service on the address its host hands it
 * in `FTL_BIND`, logs JSON lines to stderr and stops cleanly on signals or when its
 * host dies:
 *
 * ```ts
 * import { field, start } from "@ftl-ts/plugin/guest";
 * import { EchoService } from "./gen/echo/v1/echo_pb.ts";
 *
 * // start() takes over the process: run it only as the main module, as a host does.
 * if (import.meta.main) {
 *   await start({
 *     name: "echo",
 *     service: EchoService,
 *     config: { greeting: field.string({ env: "ECHO_GREETING", default: "hello" }) },
 *     create: (_ctx, config) => ({
 *       ping: () => ({}),
 *       echo: (req) => ({ message: `${config.greeting} ${req.message}` }),
 *       async *count() {},
 *       fail: () => ({}),
 *     }),
 *   });
 * }
 * ```
 *
 * @module
 */
export * from "./guest.ts";
export * from "./host.ts";
