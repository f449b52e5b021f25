/**
 * The echo service's implementation, shared by the echo plugin and the tests.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Logger, PluginImpl } from "../../guest.ts";
import { CountResponseSchema, type EchoService } from "../../gen/echo/v1/echo_pb.ts";

/** Waits `ms`, or rejects with the signal's reason when the call is cancelled. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The echo service, greeting with `greeting`; a cancelled slow echo is logged to `logger`. */
export function echoImplementation(
  greeting: string,
  logger?: Logger,
): PluginImpl<typeof EchoService> {
  return {
    ping: () => ({}),
    async echo(request, ctx: HandlerContext) {
      // Metadata round trip: the x-echo request header comes back as a response
      // header and as a trailer.
      const echoed = ctx.requestHeader.get("x-echo");
      if (echoed !== null) {
        ctx.responseHeader.set("x-echo", echoed);
        ctx.responseTrailer.set("x-echo-trailer", echoed);
      }
      if (request.delayMs > 0) {
        try {
          await delay(request.delayMs, ctx.signal);
        } catch (error) {
          logger?.warn("echo cancelled", { reason: String(ctx.signal.reason) });
          throw error;
        }
      }
      const message = greeting ? `${greeting} ${request.message}` : request.message;
      return { message };
    },
    async *count(request, ctx) {
      for (let number = 1; number <= request.count; number++) {
        if (number > 1 && request.intervalMs > 0) {
          await delay(request.intervalMs, ctx.signal);
        }
        yield create(CountResponseSchema, { number });
      }
    },
    fail(request) {
      if (request.code < 1 || request.code > 16) {
        throw new ConnectError(`${request.code} is not a code`, Code.InvalidArgument);
      }
      throw new ConnectError(request.message, request.code as Code);
    },
  };
}
