/**
 * gRPC server reflection (v1 and v1alpha) over protobuf-es descriptors, so that
 * `buf curl --list-methods` and grpcurl can discover a plugin's services. Written by
 * hand: connect-es ships no reflection service.
 *
 * @module
 */
import {
  create,
  createRegistry,
  type DescFile,
  type DescService,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";

// gRPC status codes used in ErrorResponse (grpc/grpc doc/statuscodes.md).
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** One reflection request, as both API versions shape it. */
type AnyRequest = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** What a reflection response carries, independent of the API version. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | {
    case: "allExtensionNumbersResponse";
    value: { baseTypeName: string; extensionNumber: number[] };
  }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** Answers reflection queries about a fixed set of services. */
class ReflectionIndex {
  readonly #serviceNames: string[];
  readonly #files = new Map<string, DescFile>();
  readonly #registry;

  constructor(services: readonly DescService[]) {
    this.#serviceNames = services.map((s) => s.typeName);
    const visit = (file: DescFile) => {
      if (this.#files.has(file.proto.name)) return;
      this.#files.set(file.proto.name, file);
      file.dependencies.forEach(visit);
    };
    services.forEach((s) => visit(s.file));
    this.#registry = createRegistry(...this.#files.values());
  }

  answer(request: AnyRequest, sent: Set<string>): Answer {
    const query = request.messageRequest;
    switch (query.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: this.#serviceNames.map((name) => ({ name })) },
        };
      case "fileByFilename":
        return this.#filesAnswer(this.#files.get(query.value), sent, query.value);
      case "fileContainingSymbol":
        return this.#filesAnswer(this.#fileOfSymbol(query.value), sent, query.value);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = query.value;
        const extendee = this.#registry.getMessage(containingType);
        const ext = extendee && this.#registry.getExtensionFor(extendee, extensionNumber);
        return this.#filesAnswer(ext?.file, sent, `${containingType}(${extensionNumber})`);
      }
      case "allExtensionNumbersOfType": {
        const numbers: number[] = [];
        for (const desc of this.#registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === query.value) {
            numbers.push(desc.number);
          }
        }
        if (!this.#registry.getMessage(query.value)) {
          return notFound(`message type ${query.value}`);
        }
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: query.value, extensionNumber: numbers },
        };
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" },
        };
    }
  }

  #fileOfSymbol(symbol: string): DescFile | undefined {
    const desc = this.#registry.get(symbol);
    if (desc) return desc.file;
    // A method is named Service.Method; the registry only knows the service.
    const dot = symbol.lastIndexOf(".");
    const service = dot > 0 ? this.#registry.getService(symbol.slice(0, dot)) : undefined;
    return service?.methods.some((m) => m.name === symbol.slice(dot + 1))
      ? service.file
      : undefined;
  }

  /** The file and the dependencies not yet sent on this stream, file first. */
  #filesAnswer(file: DescFile | undefined, sent: Set<string>, what: string): Answer {
    if (!file) return notFound(what);
    const out: Uint8Array[] = [];
    const visit = (f: DescFile, force: boolean) => {
      if (sent.has(f.proto.name) && !force) return;
      sent.add(f.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      f.dependencies.forEach((d) => visit(d, false));
    };
    visit(file, true);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }
}

function notFound(what: string): Answer {
  return {
    case: "errorResponse",
    value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` },
  };
}

/** The two reflection services with implementations that describe `services`. */
export function reflectionServices(
  services: readonly DescService[],
): [
  [typeof v1.ServerReflection, ServiceImpl<typeof v1.ServerReflection>],
  [typeof v1alpha.ServerReflection, ServiceImpl<typeof v1alpha.ServerReflection>],
] {
  const index = new ReflectionIndex([
    ...services,
    v1.ServerReflection,
    v1alpha.ServerReflection,
  ]);
  return [
    [v1.ServerReflection, {
      serverReflectionInfo: answers(
        index,
        (init) => create(v1.ServerReflectionResponseSchema, init),
      ),
    }],
    [v1alpha.ServerReflection, {
      serverReflectionInfo: answers(
        index,
        (init) => create(v1alpha.ServerReflectionResponseSchema, init),
      ),
    }],
  ];
}

/**
 * A reflection stream's handler in either API version: each request answered in the
 * version's response (`respond`), with the files already sent on the stream left out.
 */
function answers<Request extends AnyRequest, Response>(
  index: ReflectionIndex,
  respond: (
    init: { validHost: string; originalRequest: Request; messageResponse: Answer },
  ) => Response,
): (requests: AsyncIterable<Request>) => AsyncGenerator<Response> {
  return async function* (requests) {
    const sent = new Set<string>();
    for await (const request of requests) {
      yield respond({
        validHost: request.host,
        originalRequest: request,
        messageResponse: index.answer(request, sent),
      });
    }
  };
}
