// @grpc/grpc-js as a client of both guests (tests/fixtures/interop_guest.ts): the Deno
// guest, spawned with exactly --allow-net --allow-env and served by the project's HTTP/2
// engine, and the Node guest (node:http2). Unary, server, client and bidi streaming,
// every status code, deadlines (the handler's signal aborts), metadata both ways (text
// and binary), large messages, many calls at once, and health through
// grpc-health-check.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { echoServiceDefinition } from "../fixtures/grpc_echo.ts";
import { interopServiceDefinition } from "../fixtures/interop_service.ts";
import {
  denoExecutable,
  onDeno,
  repoRoot,
  type RunningGuest,
  type Runtime,
  startGuest,
  waitUntil,
} from "../_helpers.ts";

const EchoClient = grpc.makeGenericClientConstructor(echoServiceDefinition, "EchoService");
const InteropClient = grpc.makeGenericClientConstructor(interopServiceDefinition, "Interop");
const HealthClient = grpc.makeGenericClientConstructor(healthService, "Health");
type Callback = (error: grpc.ServiceError | null, value?: unknown) => void;
// deno-lint-ignore no-explicit-any
type AnyClient = grpc.Client & Record<string, any>;

/** The interop guest on `runtime`: Deno with only the README's guest permissions. */
function interopGuestCommand(runtime: Runtime): { exe: string; args: string[] } {
  if (runtime === "deno") {
    return {
      exe: denoExecutable(),
      args: [
        "run",
        "--allow-net",
        "--allow-env",
        join(repoRoot, "tests/fixtures/interop_guest.ts"),
      ],
    };
  }
  return {
    exe: onDeno ? "node" : process.execPath,
    args: [join(repoRoot, "npm/tests/fixtures/interop_guest.js")],
  };
}

/** A guest and grpc-js clients of it; the clients are closed before the guest stops. */
async function withClients(
  runtime: Runtime,
  use: (clients: { echo: AnyClient; interop: AnyClient }, guest: RunningGuest) => Promise<void>,
): Promise<void> {
  await using guest = await startGuest(interopGuestCommand(runtime));
  const credentials = grpc.credentials.createInsecure();
  const echo = new EchoClient(guest.url.host, credentials) as AnyClient;
  // The same channel options: grpc-js shares one connection between the two clients.
  const interop = new InteropClient(guest.url.host, credentials) as AnyClient;
  try {
    await use({ echo, interop }, guest);
  } finally {
    echo.close();
    interop.close();
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

for (const runtime of ["deno", "node"] as const) {
  describe(`@grpc/grpc-js → the ${runtime} guest`, () => {
    it("calls a unary method", async () => {
      await withClients(runtime, async ({ echo }) => {
        const { value } = await unary<{ message: string }>(echo, "Echo", { message: "hi" });
        assert.equal(value.message, "hi");
      });
    });

    it("reads a server stream", async () => {
      await withClients(runtime, async ({ echo }) => {
        const numbers: number[] = [];
        await new Promise<void>((resolve, reject) => {
          const call = echo.Count({ count: 4, intervalMs: 10 });
          call.on("data", (m: { number: number }) => numbers.push(m.number));
          call.on("error", reject);
          call.on("end", resolve);
        });
        assert.deepEqual(numbers, [1, 2, 3, 4]);
      });
    });

    it("sends a client stream", async () => {
      await withClients(runtime, async ({ interop }) => {
        const answer = await new Promise<{ number: number }>((resolve, reject) => {
          const call = interop.Sum(
            ((error, value) =>
              error ? reject(error) : resolve(value as { number: number })) as Callback,
          );
          for (const count of [1, 2, 3, 4, 5]) call.write({ count });
          call.end();
        });
        assert.equal(answer.number, 15);
      });
    });

    it("talks both ways at once on a bidi stream", async () => {
      await withClients(runtime, async ({ interop }) => {
        const call = interop.Chat();
        const replies: string[] = [];
        let waiting: (() => void) | undefined;
        call.on("data", (m: { message: string }) => {
          replies.push(m.message);
          waiting?.();
        });
        const ended = new Promise<void>((resolve, reject) => {
          call.on("end", resolve);
          call.on("error", reject);
        });
        // Each reply arrives before the next message is sent: the stream is full duplex.
        for (const word of ["one", "two", "three"]) {
          const replied = new Promise<void>((resolve) => (waiting = resolve));
          call.write({ message: word });
          await replied;
        }
        call.end();
        await ended;
        assert.deepEqual(replies, ["chat one", "chat two", "chat three"]);
      });
    });

    it("receives every status code with its message", async () => {
      await withClients(runtime, async ({ echo }) => {
        // ',', ':' and '/' too: connect-es percent-encodes grpc-message with
        // encodeURIComponent and grpc-js decodes it with decodeURI, which would leave %3A and
        // %2F as they are; the engine sends the gRPC spec's encoding.
        for (let code = 1; code <= 16; code++) {
          const message = `failed with ${code}, a: b/c 100% ünïcödé`;
          await assert.rejects(
            unary(echo, "Fail", { code, message }),
            (error: grpc.ServiceError) => error.code === code && error.details === message,
            `code ${code}`,
          );
        }
      });
    });

    it("gets DEADLINE_EXCEEDED from a slow handler, whose signal aborts", async () => {
      await withClients(runtime, async ({ echo }, guest) => {
        const started = Date.now();
        await assert.rejects(
          unary(echo, "Echo", { message: "slow", delayMs: 10_000 }, {
            deadline: new Date(Date.now() + 200),
          }),
          (error: grpc.ServiceError) => error.code === grpc.status.DEADLINE_EXCEEDED,
        );
        assert.ok(Date.now() - started < 3_000);
        // The guest logs "echo cancelled" when the handler's signal aborts.
        const cancelled = () => guest.stderrLines.some((line) => line.includes("echo cancelled"));
        assert.ok(await waitUntil(cancelled, 5_000), guest.stderrLines.join("\n"));
      });
    });

    it("sends metadata and receives it back as headers and trailers, binary too", async () => {
      await withClients(runtime, async ({ echo }) => {
        const binary = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 10, 13]);
        const metadata = new grpc.Metadata();
        metadata.set("x-echo", "round trip");
        metadata.set("x-data-bin", binary);
        const { header, trailer } = await unary(echo, "Echo", { message: "m" }, { metadata });
        assert.deepEqual(header.get("x-echo"), ["round trip"]);
        assert.deepEqual(header.get("x-data-bin"), [binary]);
        assert.deepEqual(trailer.get("x-trailer-echo"), ["round trip"]);
        assert.deepEqual(trailer.get("x-trailer-data-bin"), [binary]);
      });
    });

    it("carries a 1 MiB message each way", async () => {
      await withClients(runtime, async ({ echo }) => {
        const message = "x".repeat(1024 * 1024);
        const { value } = await unary<{ message: string }>(echo, "Echo", { message });
        assert.equal(value.message.length, message.length);
      });
    });

    it("answers 200 calls made at once on one connection", async () => {
      await withClients(runtime, async ({ echo }) => {
        const answers = await Promise.all(
          Array.from(
            { length: 200 },
            (_, i) => unary<{ message: string }>(echo, "Echo", { message: `call ${i}` }),
          ),
        );
        assert.deepEqual(answers.map((a) => a.value.message), answers.map((_, i) => `call ${i}`));
      });
    });

    it("checks health through grpc-health-check", async () => {
      await using guest = await startGuest(interopGuestCommand(runtime));
      const health = new HealthClient(
        guest.url.host,
        grpc.credentials.createInsecure(),
      ) as AnyClient;
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
}
