// @grpc/grpc-js as a client of the Node guest: unary, streaming, every status code,
// deadlines, metadata, and health through grpc-health-check.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { echoServiceDefinition } from "../fixtures/grpc_echo.ts";
import { echoGuestCommand, type RunningGuest, startGuest } from "../_helpers.ts";

const EchoClient = grpc.makeGenericClientConstructor(echoServiceDefinition, "EchoService");
const HealthClient = grpc.makeGenericClientConstructor(healthService, "Health");
type Callback = (error: grpc.ServiceError | null, value?: unknown) => void;
// deno-lint-ignore no-explicit-any
type AnyClient = grpc.Client & Record<string, any>;

/** A Node guest and a grpc-js client of it; the client is closed before the guest stops. */
async function withClient(
  use: (client: AnyClient, guest: RunningGuest) => Promise<void>,
): Promise<void> {
  await using guest = await startGuest(echoGuestCommand("node"));
  const client = new EchoClient(guest.url.host, grpc.credentials.createInsecure()) as AnyClient;
  try {
    await use(client, guest);
  } finally {
    client.close();
  }
}

function unary<T>(
  client: AnyClient,
  method: string,
  request: unknown,
  options: { metadata?: grpc.Metadata; deadline?: Date } = {},
): Promise<{ value: T; header: grpc.Metadata; trailer: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let header = new grpc.Metadata();
    let trailer = new grpc.Metadata();
    const call = client[method](
      request,
      options.metadata ?? new grpc.Metadata(),
      { deadline: options.deadline },
      ((error, value) => {
        if (error) reject(error);
        else setImmediate(() => resolve({ value: value as T, header, trailer }));
      }) as Callback,
    );
    call.on("metadata", (m: grpc.Metadata) => (header = m));
    call.on("status", (s: grpc.StatusObject) => (trailer = s.metadata));
  });
}

describe("@grpc/grpc-js → the Node guest", () => {
  it("calls a unary method", async () => {
    await withClient(async (client) => {
      const { value } = await unary<{ message: string }>(client, "Echo", { message: "hi" });
      assert.equal(value.message, "hi");
    });
  });

  it("reads a server stream", async () => {
    await withClient(async (client) => {
      const numbers: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.Count({ count: 4 });
        call.on("data", (m: { number: number }) => numbers.push(m.number));
        call.on("error", reject);
        call.on("end", resolve);
      });
      assert.deepEqual(numbers, [1, 2, 3, 4]);
    });
  });

  it("receives every status code with its message", async () => {
    await withClient(async (client) => {
      for (let code = 1; code <= 16; code++) {
        await assert.rejects(
          unary(client, "Fail", { code, message: `failed with ${code}` }),
          (error: grpc.ServiceError) =>
            error.code === code && error.details === `failed with ${code}`,
          `code ${code}`,
        );
      }
    });
  });

  it("gets DEADLINE_EXCEEDED from a slow handler", async () => {
    await withClient(async (client) => {
      const started = Date.now();
      await assert.rejects(
        unary(client, "Echo", { message: "slow", delayMs: 5_000 }, {
          deadline: new Date(Date.now() + 200),
        }),
        (error: grpc.ServiceError) => error.code === grpc.status.DEADLINE_EXCEEDED,
      );
      assert.ok(Date.now() - started < 2_000);
    });
  });

  it("sends request metadata and receives response headers and trailers", async () => {
    await withClient(async (client) => {
      const metadata = new grpc.Metadata();
      metadata.set("x-echo", "round trip");
      const { header, trailer } = await unary(client, "Echo", { message: "m" }, { metadata });
      assert.deepEqual(header.get("x-echo"), ["round trip"]);
      assert.deepEqual(trailer.get("x-echo-trailer"), ["round trip"]);
    });
  });

  it("checks health through grpc-health-check", async () => {
    await using guest = await startGuest(echoGuestCommand("node"));
    const health = new HealthClient(guest.url.host, grpc.credentials.createInsecure()) as AnyClient;
    try {
      const answer = await new Promise<{ status: string }>((resolve, reject) =>
        health.check(
          { service: "" },
          ((e, v) => (e ? reject(e) : resolve(v as { status: string }))) as Callback,
        )
      );
      assert.equal(answer.status, "SERVING");
    } finally {
      health.close();
    }
  });
});
