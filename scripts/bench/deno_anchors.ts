/**
 * Anchor servers on Deno for `deno task bench`, listening on argv[1]'s port:
 * - `raw`: Deno.serve answering every request with a fixed Connect response (the
 *   runtime's ceiling);
 * - `connect`: a plain connect-es router on Deno.serve, as connect-es users write it.
 *
 * @module
 */
import { createConnectRouter } from "@connectrpc/connect";
import {
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import { EchoService } from "../../gen/echo/v1/echo_pb.ts";
import { echoImplementation } from "../../examples/echo/echo.ts";

const [mode, port] = Deno.args;
const serve = (handler: (request: Request) => Response | Promise<Response>) =>
  Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen: () => {} }, handler);

if (mode === "raw") {
  const headers = { "content-type": "application/proto" };
  serve(async (request) => {
    await request.arrayBuffer();
    return new Response(null, { status: 200, headers });
  });
} else {
  const router = createConnectRouter({ grpc: false });
  router.service(EchoService, echoImplementation(""));
  const routes = new Map(router.handlers.map((h) => [h.requestPath, h]));
  serve(async (request) => {
    const handler = routes.get(new URL(request.url).pathname);
    if (!handler) return new Response(null, { status: 404 });
    const response = await handler(universalServerRequestFromFetch(request, {}));
    return universalServerResponseToFetch(response);
  });
}
console.log("listening");
