import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { looksLikeGrpcServer } from "../internal/transport.ts";

describe("looksLikeGrpcServer", () => {
  it("takes the answers pure gRPC servers give a Connect request as a sign to try gRPC", () => {
    assert.ok(looksLikeGrpcServer(415, ""), "@grpc/grpc-js, recent grpc-go");
    assert.ok(looksLikeGrpcServer(200, ""), "grpc-js on Deno's node:http2: no content type");
    assert.ok(looksLikeGrpcServer(200, "application/grpc"), "grpcio");
    assert.ok(looksLikeGrpcServer(200, "application/grpc+proto"));
    assert.ok(looksLikeGrpcServer(500, "text/plain; charset=utf-8"), "grpc-go 1.33 ServeHTTP");
    assert.ok(looksLikeGrpcServer(400, "text/plain; charset=utf-8"), "grpc-go ~1.52 ServeHTTP");
  });

  it("takes Connect's own answers, and a 404, as Connect", () => {
    assert.ok(!looksLikeGrpcServer(200, "application/proto"));
    assert.ok(!looksLikeGrpcServer(200, "application/json"));
    assert.ok(!looksLikeGrpcServer(200, "application/connect+proto"), "a Connect stream");
    assert.ok(!looksLikeGrpcServer(200, "application/connect+json"));
    assert.ok(!looksLikeGrpcServer(503, "application/json"), "a Connect error");
    assert.ok(!looksLikeGrpcServer(401, "application/json; charset=utf-8"));
    assert.ok(!looksLikeGrpcServer(404, "text/plain"), "no such method");
  });
});
