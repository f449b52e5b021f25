/**
 * The one envelope of a unary gRPC body, for the lean paths on both sides. Reading
 * exactly one (and saying what is wrong otherwise, as connect-es does) is here because
 * connect-es only reads envelopes through its async-iterable pipelines; writing one is
 * here because connect-es's `encodeEnvelope` goes through a DataView, which moves a
 * small typed array off V8's heap (docs/BENCHMARKS.md has what that cost).
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The message in a unary gRPC body of exactly one uncompressed envelope, or `undefined`
 * for an empty body. `which` names the side in the errors, as connect-es words them.
 */
export function unaryEnvelopeMessage(
  body: Uint8Array,
  which: "input" | "output",
  readMaxBytes: number,
): Uint8Array | undefined {
  if (body.length === 0) return undefined;
  if (body.length < 5) throw new ConnectError("protocol error: incomplete envelope", Code.Internal);
  const length = ((body[1] << 24) | (body[2] << 16) | (body[3] << 8) | body[4]) >>> 0;
  if (length > readMaxBytes) {
    throw new ConnectError(
      `message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`,
      Code.ResourceExhausted,
    );
  }
  if (body[0] & 0b1) {
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  if (body.length < 5 + length) {
    throw new ConnectError("protocol error: incomplete envelope", Code.Internal);
  }
  if (body.length > 5 + length) {
    throw new ConnectError(
      `protocol error: received extra ${which} message for unary method`,
      Code.Unimplemented,
    );
  }
  return body.subarray(5);
}

/** One uncompressed gRPC envelope around `message` (flags 0, big-endian length). */
export function encodeUnaryEnvelope(message: Uint8Array): Uint8Array {
  const length = message.length;
  const envelope = new Uint8Array(5 + length);
  envelope[1] = length >>> 24;
  envelope[2] = (length >>> 16) & 0xff;
  envelope[3] = (length >>> 8) & 0xff;
  envelope[4] = length & 0xff;
  envelope.set(message, 5);
  return envelope;
}
