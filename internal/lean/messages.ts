/**
 * Parsing a message on the lean paths, guest and host, failing as connect-es fails
 * (and words it) when the bytes are not the message.
 *
 * @module
 */
import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

/** A message from its binary form; bytes that do not parse fail INTERNAL. */
export function parseBinary<T extends DescMessage>(schema: T, bytes: Uint8Array): MessageShape<T> {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    // As connect-es (and grpc-go) answer a message that does not parse.
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConnectError(`parse binary: ${reason}`, Code.Internal);
  }
}
