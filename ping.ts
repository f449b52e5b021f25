/**
 * FTL's Ping messages (`xyz.block.ftl.v1`), generated from
 * `proto/xyz/block/ftl/v1/ftl.proto`, which ships with this package: a plugin's
 * main service has `rpc Ping(xyz.block.ftl.v1.PingRequest) returns
 * (xyz.block.ftl.v1.PingResponse)`. Import the proto from the package's `proto/`
 * folder into your own; use these schemas to build Ping answers by hand.
 *
 * @example A Ping answer that says the plugin is not ready yet
 * ```ts
 * import assert from "node:assert/strict";
 * import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
 * import { PingResponseSchema } from "@ftl-ts/plugin/ping";
 *
 * const answer = create(PingResponseSchema, { notReady: "loading the index" });
 * const wire = toBinary(PingResponseSchema, answer);
 * assert.equal(fromBinary(PingResponseSchema, wire).notReady, "loading the index");
 * ```
 *
 * @module
 */
export * from "./gen/xyz/block/ftl/v1/ftl_pb.ts";
