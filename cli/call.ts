/**
 * `ftl-plugin call`: call one method of a plugin (running, or started for the call)
 * with a JSON message, and print the answer as JSON.
 *
 * @module
 */
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { PluginConnection, randomToken, tokenHint } from "../internal/transport.ts";
import { readStdinText, writeStdout } from "#runtime";
import { CliError, ExitCode, reportFailure, usage } from "./failure.ts";
import { unavailable } from "./unavailable.ts";
import * as flags from "./flags.ts";
import { readCommand } from "./command_line.ts";
import { describe, KINDS } from "./schema.ts";
import { startPlugin } from "./start.ts";
import { cliLogger } from "./status.ts";
import { callSpec } from "./specs.ts";
import { isUrl, parseTarget, pluginName, splitMethod } from "./target.ts";

/**
 * Runs `ftl-plugin call` with the arguments after `call`.
 *
 * @param args The arguments after `call`.
 * @returns The exit code.
 * @throws {CliError} For bad usage, or a plugin that could not be started or reached.
 * @example
 * ```ts ignore
 * await callCommand(["http://127.0.0.1:8080", "echo.v1.EchoService/Echo", '{"message":"hi"}']);
 * ```
 */
export async function callCommand(args: string[]): Promise<number> {
  const parsed = readCommand(callSpec, args);
  if (!parsed) return ExitCode.Ok;
  const { config: given, args: { target, method, input }, rest: exeArgs } = parsed;
  const { json, timeout } = given;
  const [serviceName, methodName] = splitMethod(method, callSpec.name);
  const text = input === "-" ? await readStdinText() : input;
  let body: JsonValue;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw usage(`the message is not JSON: ${(error as Error).message}`, callSpec.name);
  }
  const call: Call = { serviceName, methodName, body, timeout, json };

  if (isUrl(target)) {
    if (exeArgs.length > 0) {
      throw usage("arguments after -- are for an executable target", callSpec.name);
    }
    const connection = new PluginConnection(parseTarget(target, callSpec.name), {
      protocol: given.protocol,
      token: await flags.callerToken(given, callSpec.name),
    });
    try {
      // A CliError is the answer understood (no such method, say), not a protocol's failure.
      return await connection.run(
        (transport) => invoke(transport, call, undefined, () => connection.detected !== undefined),
        (error) => error instanceof CliError,
      );
    } finally {
      connection.close();
    }
  }

  const { plugin, transport, interrupted, removeSignals } = await startPlugin({
    name: pluginName(target, exeArgs),
    dir: given.dir,
    exe: target,
    args: exeArgs,
    service: given.service,
    found: {},
    logger: cliLogger(json, given.logLevel),
    timeout,
    protocol: given.protocol,
    bind: "tcp",
    token: randomToken(),
    json,
  });
  if (!plugin || !transport) return ExitCode.Interrupted;
  try {
    return await invoke(transport, call, interrupted);
  } finally {
    removeSignals();
    await plugin.stop();
  }
}

/** One call, as the command line asked for it. */
interface Call {
  serviceName: string;
  methodName: string;
  body: JsonValue;
  timeout: number;
  json: boolean;
}

/**
 * Makes the call and prints its answers. `wrongProtocol` tells whether a failure may be
 * the wrong protocol's (the caller then tries gRPC) rather than the plugin's answer.
 */
async function invoke(
  transport: Transport,
  call: Call,
  signal?: AbortSignal,
  wrongProtocol?: () => boolean,
): Promise<number> {
  let described;
  try {
    described = await describe(transport, call.serviceName, call.methodName);
  } catch (error) {
    if (wrongProtocol?.()) throw error;
    throw unavailable(error);
  }
  const { desc, method, registry } = described;
  if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
    throw new CliError(
      `${method.name} is ${
        KINDS[method.methodKind]
      }: call sends one message, so only unary and server-streaming methods`,
      ExitCode.Usage,
    );
  }
  let message;
  try {
    message = fromJson(method.input, call.body, { registry });
  } catch (error) {
    throw usage(
      `the message is not a valid ${method.input.typeName}: ${(error as Error).message}`,
      callSpec.name,
    );
  }
  const print = (output: Parameters<typeof toJson>[1]) => {
    const value = toJson(method.output, output as never, { registry });
    writeStdout((call.json ? JSON.stringify(value) : JSON.stringify(value, null, 2)) + "\n");
  };
  const client = createClient(desc, transport) as unknown as Record<
    string,
    (input: unknown, options: object) => unknown
  >;
  const options = { timeoutMs: call.timeout, signal };
  try {
    if (method.methodKind === "unary") {
      print(await (client[method.localName](message, options) as Promise<never>));
    } else {
      for await (
        const output of client[method.localName](message, options) as AsyncIterable<never>
      ) {
        print(output);
      }
    }
    return ExitCode.Ok;
  } catch (error) {
    // Not the plugin's answer: it speaks another protocol, and the caller tries that.
    if (wrongProtocol?.()) throw error;
    const e = ConnectError.from(error);
    if (e.code === Code.Unavailable) throw unavailable(e);
    const code = codeToString(e.code);
    // For people the code leads and the token hint follows on the same line.
    const text = call.json ? e.rawMessage : `${code}: ${e.rawMessage}${tokenHint(e.code)}`;
    reportFailure(new CliError(text, ExitCode.CallFailed, undefined, code), call.json, "error: ");
    return ExitCode.CallFailed;
  }
}
