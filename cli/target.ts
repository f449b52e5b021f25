/**
 * What the command line names: a plugin's URL or executable, a method as
 * `package.Service/Method`, and the names the CLI shows for them.
 *
 * @module
 */
import { usage } from "./failure.ts";

/**
 * Whether `target` is a running plugin's URL rather than an executable.
 *
 * @param target A target as typed.
 * @returns Whether it starts with `http://`, `https://` or `unix://`.
 * @example
 * ```ts
 * import { isUrl } from "./target.ts";
 * console.assert(isUrl("unix:///tmp/p.sock") && !isUrl("./my-plugin"));
 * ```
 */
export function isUrl(target: string): boolean {
  return /^(https?|unix):\/\//.test(target);
}

/**
 * A running plugin's URL, checked for what plugins speak: h2c, or an absolute unix path.
 *
 * @param target The URL as typed.
 * @param command The command as typed, such as `ftl-plugin ping`, for the usage hint.
 * @returns The URL.
 * @throws {CliError} (usage) When it is no URL a plugin can serve on.
 * @example
 * ```ts
 * import { parseTarget } from "./target.ts";
 * console.assert(parseTarget("http://127.0.0.1:8080", "ftl-plugin ping").port === "8080");
 * ```
 */
export function parseTarget(target: string, command: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw usage(`${JSON.stringify(target)} is not a URL`, command);
  }
  if (url.protocol === "https:") {
    throw usage("plugins speak h2c: use http://, not https://", command);
  }
  if (url.protocol === "unix:" && !url.pathname.startsWith("/")) {
    throw usage("a unix URL needs an absolute path: unix:///path/to.sock", command);
  }
  return url;
}

/**
 * `package.Service/Method` (or `package.Service.Method`) as its service and method.
 *
 * @param text The method as typed.
 * @param command The command as typed, for the usage hint.
 * @returns The service's full name and the method's name.
 * @throws {CliError} (usage) When it names no method.
 * @example
 * ```ts
 * import { splitMethod } from "./target.ts";
 * const [service, method] = splitMethod("echo.v1.EchoService/Echo", "ftl-plugin call");
 * console.assert(service === "echo.v1.EchoService" && method === "Echo");
 * ```
 */
export function splitMethod(text: string, command: string): [string, string] {
  const slash = text.lastIndexOf("/");
  const cut = slash !== -1 ? slash : text.lastIndexOf(".");
  const service = text.slice(0, cut).replace(/^\//, "");
  const method = text.slice(cut + 1);
  if (cut <= 0 || !service || !method) {
    throw usage(
      `${
        JSON.stringify(text)
      } is not a method: write package.Service/Method, e.g. echo.v1.EchoService/Echo`,
      command,
    );
  }
  return [service, method];
}

function baseName(path: string): string {
  const base = path.split("/").pop() ?? path;
  return base.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_-]/g, "-") || "plugin";
}

/**
 * The name a started plugin goes by: the executable's base name, or the script's when
 * the executable is a runtime.
 *
 * @param exe The executable.
 * @param args Its arguments.
 * @returns A name made of letters, digits, `_` and `-`.
 * @example
 * ```ts
 * import { pluginName } from "./target.ts";
 * console.assert(pluginName("deno", ["run", "-A", "echo/plugin.ts"]) === "plugin");
 * console.assert(pluginName("./bin/echo-plugin", []) === "echo-plugin");
 * ```
 */
export function pluginName(exe: string, args: readonly string[]): string {
  const runtime = /^(deno|node|bun|python3?)$/.test(baseName(exe));
  const script = args.find((a) => /\.(ts|js|mjs|cjs|py)$/.test(a));
  return runtime && script ? baseName(script) : baseName(exe);
}

// Shared with attach(), which prints endpoints the same way.
export { endpointText } from "../internal/bind.ts";
