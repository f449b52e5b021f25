// `#runtime` is internal/runtime/deno.ts under Deno and node.ts in the npm build: both
// must offer the same names with the same types, every file of each included (each
// re-exports its sockets, native server and HTTP/1.1 backend). `deno check` fails here
// if they drift apart; the test compares what each module really exports.
import { it } from "node:test";
import assert from "node:assert/strict";
import type * as DenoRuntime from "../internal/runtime/deno.ts";
import type * as NodeRuntime from "../internal/runtime/node.ts";

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const denoCoversNode: Same<keyof typeof DenoRuntime, keyof typeof NodeRuntime> = true;
const sameShapes: Same<
  Omit<typeof DenoRuntime, "runtimeName" | "serverSendsTrailers">,
  Omit<typeof NodeRuntime, "runtimeName" | "serverSendsTrailers">
> = true;

it("the Deno and Node runtime adapters export the same API", async () => {
  assert.ok(denoCoversNode && sameShapes);
  const deno = await import("../internal/runtime/deno.ts");
  const node = await import("../internal/runtime/node.ts");
  assert.deepEqual(Object.keys(node).sort(), Object.keys(deno).sort());
  for (const name of Object.keys(deno) as (keyof typeof deno)[]) {
    assert.equal(typeof node[name], typeof deno[name], name);
  }
  assert.equal(deno.runtimeName, "deno");
  assert.equal(node.runtimeName, "node");
});
