import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { encodeUnaryEnvelope, unaryEnvelopeMessage } from "../internal/lean/envelope.ts";

const sizes = [0, 1, 7, 255, 256, 65_535, 65_536, 70_000, 16_777_217];

function message(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 997) bytes[i] = i & 0xff;
  return bytes;
}

test("encodeUnaryEnvelope writes the same bytes as connect-es's encodeEnvelope", () => {
  for (const size of sizes) {
    const data = message(size);
    assert.deepEqual(encodeUnaryEnvelope(data), encodeEnvelope(0, data), `size ${size}`);
  }
});

test("unaryEnvelopeMessage reads back what encodeUnaryEnvelope wrote", () => {
  for (const size of sizes) {
    const data = message(size);
    assert.deepEqual(unaryEnvelopeMessage(encodeUnaryEnvelope(data), "input", 1 << 30), data);
  }
});

test("unaryEnvelopeMessage refuses a message over the read limit by its declared length", () => {
  const envelope = encodeUnaryEnvelope(message(70_000));
  assert.throws(
    () => unaryEnvelopeMessage(envelope, "input", 65_536),
    (error: unknown) =>
      error instanceof ConnectError && error.code === Code.ResourceExhausted &&
      error.rawMessage.includes("70000"),
  );
});
