// The lean unary path (internal/lean/unary.ts) must answer exactly as connect-es's own
// handler does. A timeout header sends the same call down connect-es's path, so each
// case is made twice and the answers compared.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { serve } from "../guest.ts";
import { Logger, LogLevel } from "../internal/log.ts";
import { EchoRequestSchema, EchoService } from "../gen/echo/v1/echo_pb.ts";
import { onDeno } from "./_helpers.ts";

interface Answer {
  status: number;
  header: Record<string, string>;
  trailer: Record<string, string>;
  body: string;
}

function call(
  session: http2.ClientHttp2Session,
  path: string,
  header: Record<string, string>,
  body: Uint8Array,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, ...header });
    const answer: Answer = { status: 0, header: {}, trailer: {}, body: "" };
    const chunks: Buffer[] = [];
    const pick = (from: http2.IncomingHttpHeaders, to: Record<string, string>) => {
      for (const [key, value] of Object.entries(from)) {
        // The date differs between two answers; the rest must not.
        if (key === "date" || key === ":status" || value === undefined) continue;
        to[key] = String(value);
      }
    };
    stream.on("response", (h) => {
      answer.status = Number(h[":status"]);
      pick(h, answer.header);
    });
    stream.on("trailers", (h) => pick(h, answer.trailer));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      answer.body = Buffer.concat(chunks).toString("hex");
      resolve(answer);
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

function envelope(message: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

const echo = (message: string) =>
  toBinary(EchoRequestSchema, create(EchoRequestSchema, { message }));

/** An EchoRequest of exactly `size` bytes (one tag byte, a two-byte length, the text). */
function echoOfSize(size: number): Uint8Array {
  const bytes = echo("x".repeat(size - 3));
  assert.equal(bytes.length, size);
  return bytes;
}

/** The guests' read limit in these tests: small, so that going over it is cheap. */
const READ_MAX_BYTES = 1024;

async function withGuest(
  body: (session: http2.ClientHttp2Session) => Promise<void>,
): Promise<void> {
  await using server = await serve({
    service: EchoService,
    implementation: {
      echo(request, context) {
        if (request.message === "fail") {
          context.responseTrailer.set("x-why", "asked to");
          throw new ConnectError("failed as asked", Code.FailedPrecondition, { "x-meta": "m" });
        }
        context.responseHeader.set("x-seen", context.requestHeader.get("x-multi") ?? "none");
        context.responseTrailer.set("x-headers", [...context.requestHeader.keys()].join(","));
        return { message: `hi ${request.message}` };
      },
      ping() {
        return {};
      },
      async *count() {},
      fail() {
        return {};
      },
    },
    bind: "http://127.0.0.1:0",
    logger: new Logger({ level: LogLevel.Error, write: () => {} }),
    readMaxBytes: READ_MAX_BYTES,
  });
  const session = http2.connect(server.url);
  try {
    await body(session);
  } finally {
    session.close();
  }
}

const connectHeader = { "content-type": "application/proto", "connect-protocol-version": "1" };
const grpcHeader = { "content-type": "application/grpc", te: "trailers" };
const path = "/echo.v1.EchoService/Echo";

describe("the lean unary path answers as connect-es does", () => {
  const cases: [string, Record<string, string>, Record<string, string>, Uint8Array][] = [
    ["Connect: an answer", connectHeader, { "connect-timeout-ms": "60000" }, echo("there")],
    ["Connect: an error", connectHeader, { "connect-timeout-ms": "60000" }, echo("fail")],
    [
      "Connect: a bad message",
      connectHeader,
      { "connect-timeout-ms": "60000" },
      new Uint8Array([0xff]),
    ],
    // The read limit, with and without a declared length (node:http2 declares none).
    [
      "Connect: a message of exactly the read limit",
      connectHeader,
      { "connect-timeout-ms": "60000" },
      echoOfSize(READ_MAX_BYTES),
    ],
    [
      "Connect: a message over the read limit",
      connectHeader,
      { "connect-timeout-ms": "60000" },
      echoOfSize(4 * READ_MAX_BYTES),
    ],
    [
      "Connect: a declared length over the read limit",
      { ...connectHeader, "content-length": String(4 * READ_MAX_BYTES) },
      { "connect-timeout-ms": "60000" },
      echoOfSize(4 * READ_MAX_BYTES),
    ],
  ];
  if (!onDeno) {
    cases.push(
      ["gRPC: an answer", grpcHeader, { "grpc-timeout": "60S" }, envelope(echo("there"))],
      ["gRPC: an error", grpcHeader, { "grpc-timeout": "60S" }, envelope(echo("fail"))],
      ["gRPC: no message", grpcHeader, { "grpc-timeout": "60S" }, new Uint8Array()],
      [
        "gRPC: two messages",
        grpcHeader,
        { "grpc-timeout": "60S" },
        new Uint8Array([...envelope(echo("a")), ...envelope(echo("b"))]),
      ],
      [
        "gRPC: a compressed flag without an encoding",
        grpcHeader,
        { "grpc-timeout": "60S" },
        envelope(echo("x"), 1),
      ],
      [
        "gRPC: a bad message",
        grpcHeader,
        { "grpc-timeout": "60S" },
        envelope(new Uint8Array([0xff])),
      ],
      // The limit is the message's; the envelope's five bytes do not count.
      [
        "gRPC: a message of exactly the read limit",
        grpcHeader,
        { "grpc-timeout": "60S" },
        envelope(echoOfSize(READ_MAX_BYTES)),
      ],
      [
        "gRPC: a message over the read limit, its length within one more envelope",
        grpcHeader,
        { "grpc-timeout": "60S" },
        envelope(echoOfSize(READ_MAX_BYTES + 1)),
      ],
      [
        "gRPC: a message far over the read limit",
        grpcHeader,
        { "grpc-timeout": "60S" },
        envelope(echoOfSize(4 * READ_MAX_BYTES)),
      ],
      [
        "gRPC: a second message past the read limit",
        grpcHeader,
        { "grpc-timeout": "60S" },
        new Uint8Array([...envelope(echo("a")), ...envelope(echoOfSize(READ_MAX_BYTES))]),
      ],
    );
  }
  for (const [name, header, slowPath, body] of cases) {
    it(name, async () => {
      await withGuest(async (session) => {
        const extra = { "x-multi": "one" };
        const lean = await call(session, path, { ...header, ...extra }, body);
        const full = await call(session, path, { ...header, ...extra, ...slowPath }, body);
        // Both saw every request header; the timeout header is the one difference.
        const seen = (a: Answer) =>
          (a.trailer["x-headers"] ?? a.header["trailer-x-headers"] ?? "").split(",")
            .filter((h) => !h.endsWith("-timeout") && !h.endsWith("-timeout-ms")).join(",");
        assert.equal(seen(lean), seen(full));
        for (const a of [lean, full]) {
          delete a.trailer["x-headers"];
          delete a.header["trailer-x-headers"];
        }
        assert.deepEqual(lean, full);
      });
    });
  }
});
