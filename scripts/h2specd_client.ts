/**
 * One POST through the hosts' HTTP/2 client (the engine's client role,
 * `internal/http2/client.ts`) to the URL in its first argument, for h2specd, the HTTP/2
 * client conformance suite:
 *
 * ```sh
 * ../shared/tools/h2spec/h2specd -f 34000 \
 *   -e "$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())') run -A scripts/h2specd_client.ts"
 * ```
 *
 * @module
 */
import { H2Client } from "../internal/http2/client.ts";
import { connectSocket } from "#runtime";

const url = new URL(Deno.args[0]);
const client = new H2Client({
  authority: url.host,
  maxResponseBytes: 1024 * 1024,
  connect: () => connectSocket({ hostname: url.hostname, port: Number(url.port) }),
});
try {
  const answer = await client.post(
    url.pathname,
    { "content-type": "application/proto" },
    new Uint8Array(0),
    AbortSignal.timeout(3_000),
  );
  console.log(`answered ${answer.status}`);
} catch (error) {
  console.log(`failed: ${(error as Error).message}`);
} finally {
  client.close();
}
// A one-shot process, as curl is: done once the answer (or the failure) is in. Left to
// itself it would wait out the connection's linger after an error GOAWAY (a second for
// the peer to read it), which is a host's concern, not this script's.
Deno.exit(0);
