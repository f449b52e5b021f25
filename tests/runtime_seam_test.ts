// The npm build swaps internal/runtime/deno.ts for node.ts: both must offer the same
// names with the same types. `deno check` fails here if they drift apart.
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

it("the Deno and Node runtime adapters export the same API", () => {
  assert.ok(denoCoversNode && sameShapes);
});
