/**
 * The bind address a host hands its plugin in `FTL_BIND`: `http://host:port` (what
 * FTL's Go code uses) or `unix:///path/to.sock`.
 *
 * @module
 */
import type { BindAddress } from "./runtime/types.ts";

// Defined in the runtime seam, whose listeners take it.
export type { BindAddress } from "./runtime/types.ts";

/**
 * Parses a bind URL such as `http://127.0.0.1:41233` or `unix:///tmp/x/.ftl/echo.sock`.
 *
 * @param bind The URL from `FTL_BIND` or `--bind`.
 * @returns The address to listen on.
 * @throws {TypeError} When the URL is neither `http://host:port` nor `unix:///path`.
 * @example
 * ```ts
 * import { parseBindUrl } from "./bind.ts";
 * parseBindUrl("http://127.0.0.1:41233"); // { kind: "tcp", hostname: "127.0.0.1", port: 41233 }
 * ```
 */
export function parseBindUrl(bind: string | URL): BindAddress {
  let url: URL;
  try {
    url = new URL(bind);
  } catch {
    throw new TypeError(`bind address ${JSON.stringify(String(bind))} is not a URL`);
  }
  if (url.protocol === "unix:") {
    const path = decodeURIComponent(url.pathname);
    if (url.host !== "" || !path.startsWith("/") || path === "/") {
      throw new TypeError(`bind address ${url.href} must be unix:///absolute/path.sock`);
    }
    return { kind: "unix", path };
  }
  if (url.protocol !== "http:") {
    throw new TypeError(
      `bind address ${url.href} must use http:// or unix:// (plugins speak h2c, not TLS)`,
    );
  }
  // URL drops a default port (":80"), so look at what was written.
  if (url.port === "" && !/^http:\/\/[^/]*:\d+\/?$/i.test(String(bind).trim())) {
    throw new TypeError(`bind address ${url.href} has no port`);
  }
  if (url.pathname !== "/" || url.search || url.hash || url.username) {
    throw new TypeError(`bind address ${url.href} must be only http://host:port`);
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return { kind: "tcp", hostname, port: Number(url.port || 80) };
}

/** The URL of a bound address, as `FTL_BIND` spells it. */
export function bindUrl(address: BindAddress): URL {
  if (address.kind === "unix") return new URL(`unix://${encodeURI(address.path)}`);
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return new URL(`http://${host}:${address.port}`);
}

/**
 * An endpoint as `FTL_BIND` and people write it: an http URL without the slash `URL`
 * adds, a unix URL as it is.
 *
 * @param url The endpoint.
 * @returns Its text.
 * @example
 * ```ts
 * import { endpointText } from "./bind.ts";
 * console.assert(endpointText(new URL("http://127.0.0.1:1/")) === "http://127.0.0.1:1");
 * ```
 */
export function endpointText(url: URL): string {
  return url.protocol === "http:" ? `http://${url.host}` : url.href;
}
