// serve() on a unix socket that cannot be put in place: it must reject, naming the
// path, and leave nothing listening (issue 14, item 12).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { serve } from "../guest.ts";
import { Logger } from "../internal/log.ts";
import { echoImplementation } from "../examples/echo/echo.ts";
import { EchoService } from "../gen/echo/v1/echo_pb.ts";
import { onDeno, tempDir, within } from "./_helpers.ts";
import { onBun } from "./_bun.ts";

/**
 * Makes moving the bound socket into place fail. On Deno a non-empty directory where
 * the socket goes does it (the stale-socket removal skips it, the rename fails). On
 * Node that directory already fails the removal, before listening, so node:fs's
 * rename is made to fail instead: the Node listener imports it from node:fs/promises,
 * whose live bindings syncBuiltinESMExports updates.
 */
function breakRename(socketPath: string): () => void {
  if (onDeno) {
    mkdirSync(socketPath);
    writeFileSync(join(socketPath, "keep"), "");
    return () => {};
  }
  const fsPromises = createRequire(import.meta.url)("node:fs/promises");
  const real = fsPromises.rename;
  fsPromises.rename = (from: string, to: string) =>
    Promise.reject(
      Object.assign(new Error(`EACCES: permission denied, rename '${from}' -> '${to}'`), {
        code: "EACCES",
      }),
    );
  syncBuiltinESMExports();
  return () => {
    fsPromises.rename = real;
    syncBuiltinESMExports();
  };
}

describe("serve() on a unix socket", () => {
  it("rejects naming the path when the socket cannot be moved into place, and stops listening", {
    skip: onBun && "Bun's syncBuiltinESMExports does not reach node:fs/promises: no failing rename",
  }, async () => {
    using dir = tempDir();
    const socketPath = join(dir.path, "plugin.sock");
    const restore = breakRename(socketPath);
    try {
      await assert.rejects(
        within(
          "serve() to settle",
          serve({
            service: EchoService,
            implementation: echoImplementation(""),
            bind: `unix://${socketPath}`,
            logger: new Logger({ write: () => {} }),
          }),
          5_000,
        ),
        (error: Error) => {
          assert.match(error.message, /cannot put the socket in place at /);
          assert.ok(error.message.includes(socketPath), error.message);
          return true;
        },
      );
    } finally {
      restore();
    }
    // The listener was closed and its staging socket removed: nothing is left behind.
    assert.equal(existsSync(`${socketPath}~`), false, "the staging socket is still there");
  });
});
