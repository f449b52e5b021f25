/**
 * FTL's Ping on any service, known without asking the plugin: apart from schema.ts so that
 * pinging a named service loads no reflection client.
 *
 * @module
 */
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { file_xyz_block_ftl_v1_ftl } from "../gen/xyz/block/ftl/v1/ftl_pb.ts";

/**
 * A service with only FTL's Ping, named `typeName`: enough to ping any plugin.
 *
 * @param typeName The service's full name, such as `echo.v1.EchoService`.
 * @returns Its descriptor.
 * @example
 * ```ts
 * import { pingService } from "./ping_schema.ts";
 * console.assert(pingService("echo.v1.EchoService").methods[0].name === "Ping");
 * ```
 */
export function pingService(typeName: string): DescService {
  const dot = typeName.lastIndexOf(".");
  const ftl = file_xyz_block_ftl_v1_ftl;
  const proto = create(FileDescriptorProtoSchema, {
    name: `ftl-plugin-cli/${typeName}.proto`,
    package: dot === -1 ? "" : typeName.slice(0, dot),
    dependency: [ftl.proto.name],
    syntax: "proto3",
    service: [{
      name: typeName.slice(dot + 1),
      method: [{
        name: "Ping",
        inputType: ".xyz.block.ftl.v1.PingRequest",
        outputType: ".xyz.block.ftl.v1.PingResponse",
      }],
    }],
  });
  const registry = createFileRegistry(proto, (name) => (name === ftl.proto.name ? ftl : undefined));
  return registry.getService(typeName)!;
}
