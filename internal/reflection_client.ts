/**
 * The client side of gRPC server reflection: what a running plugin serves, and the
 * descriptors to call it with, for tools that have no generated code (the CLI).
 * Speaks reflection v1, and v1alpha to servers that only have that.
 *
 * @module
 */
import { create, type DescFile, type FileRegistry, fromBinary } from "@bufbuild/protobuf";
import { createFileRegistry } from "@bufbuild/protobuf";
import * as wkt from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";

type Query = v1.ServerReflectionRequest["messageRequest"];
type Answer = v1.ServerReflectionResponse["messageResponse"];

/**
 * Asks a plugin's reflection service. One call per question: each is a bidi stream
 * carrying one request, so it works over half-duplex HTTP too.
 */
export class ReflectionClient {
  readonly #transport: Transport;
  readonly #signal: AbortSignal | undefined;
  #version: "v1" | "v1alpha" = "v1";

  constructor(transport: Transport, signal?: AbortSignal) {
    this.#transport = transport;
    this.#signal = signal;
  }

  async #ask(query: Query): Promise<Answer> {
    try {
      return await this.#askWith(this.#version, query);
    } catch (error) {
      if (this.#version !== "v1" || ConnectError.from(error).code !== Code.Unimplemented) {
        throw error;
      }
      const answer = await this.#askWith("v1alpha", query);
      this.#version = "v1alpha";
      return answer;
    }
  }

  async #askWith(version: "v1" | "v1alpha", query: Query): Promise<Answer> {
    // The two versions' messages are the same on the wire.
    const schema = version === "v1" ? v1 : v1alpha;
    const client = createClient(schema.ServerReflection, this.#transport);
    const request = create(schema.ServerReflectionRequestSchema, {
      messageRequest: query,
    } as never);
    const answers = client.serverReflectionInfo(
      (async function* () {
        yield request;
      })(),
      { signal: this.#signal },
    );
    for await (const response of answers) {
      const answer = response.messageResponse as Answer;
      if (answer.case === "errorResponse") {
        throw new ConnectError(answer.value.errorMessage, answer.value.errorCode as Code);
      }
      return answer;
    }
    throw new ConnectError("the reflection stream ended without an answer", Code.Unknown);
  }

  /** The fully qualified names of the services the plugin serves. */
  async listServices(): Promise<string[]> {
    const answer = await this.#ask({ case: "listServices", value: "" });
    if (answer.case !== "listServicesResponse") throw unexpected(answer.case);
    return answer.value.service.map((s) => s.name);
  }

  /**
   * A registry holding the files that define `symbols` and every file they import.
   * Well-known types a server leaves out are taken from protobuf-es.
   */
  async registryFor(symbols: readonly string[]): Promise<FileRegistry> {
    const files = new Map<string, wkt.FileDescriptorProto>();
    const add = (bytes: Uint8Array[]) => {
      for (const b of bytes) {
        const file = fromBinary(wkt.FileDescriptorProtoSchema, b);
        if (!files.has(file.name)) files.set(file.name, file);
      }
    };
    for (const symbol of symbols) {
      const answer = await this.#ask({ case: "fileContainingSymbol", value: symbol });
      if (answer.case !== "fileDescriptorResponse") throw unexpected(answer.case);
      add(answer.value.fileDescriptorProto);
    }
    // Imports the server did not send with the files: ask for them by name.
    for (let missing = missingImports(files); missing.length > 0; missing = missingImports(files)) {
      for (const name of missing) {
        const known = wellKnown.get(name);
        if (known) {
          files.set(name, known.proto);
          continue;
        }
        const answer = await this.#ask({ case: "fileByFilename", value: name });
        if (answer.case !== "fileDescriptorResponse") throw unexpected(answer.case);
        add(answer.value.fileDescriptorProto);
        if (!files.has(name)) {
          throw new ConnectError(`the plugin's reflection did not send ${name}`, Code.NotFound);
        }
      }
    }
    // createFileRegistry wants every file after the files it imports.
    const ordered: wkt.FileDescriptorProto[] = [];
    const placed = new Set<string>();
    const place = (file: wkt.FileDescriptorProto) => {
      if (placed.has(file.name)) return;
      placed.add(file.name);
      for (const name of file.dependency) place(files.get(name)!);
      ordered.push(file);
    };
    files.forEach(place);
    return createFileRegistry(create(wkt.FileDescriptorSetSchema, { file: ordered }));
  }
}

function missingImports(files: Map<string, wkt.FileDescriptorProto>): string[] {
  const missing = new Set<string>();
  for (const file of files.values()) {
    for (const name of file.dependency) if (!files.has(name)) missing.add(name);
  }
  return [...missing];
}

function unexpected(kind: string | undefined): ConnectError {
  return new ConnectError(`unexpected reflection answer: ${kind ?? "none"}`, Code.Internal);
}

/** protobuf-es's own descriptors of the well-known types, by file name. */
const wellKnown: Map<string, DescFile> = new Map(
  Object.entries(wkt)
    .filter(([key]) => key.startsWith("file_google_protobuf_"))
    .map(([, file]) => [(file as DescFile).proto.name, file as DescFile]),
);
