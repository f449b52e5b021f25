/**
 * The one message of a unary gRPC body, for the lean paths on both sides. Writing an
 * envelope is connect-es's `encodeEnvelope`; reading exactly one (and saying what is
 * wrong otherwise, as connect-es does) is here, because connect-es only reads
 * envelopes through its async-iterable pipelines.
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
  const length = new DataView(body.buffer, body.byteOffset, 5).getUint32(1);
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
