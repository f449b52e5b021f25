/**
 * The bind address a host hands its plugin in `FTL_BIND`.
 *
 * @module
 */

/** Where a guest listens, parsed from a bind URL. */
export interface BindAddress {
  /** The transport; FTL's Go code only ever uses TCP. */
  kind: "tcp";
  /** Host name or IP literal (IPv6 without brackets). */
  hostname: string;
  /** TCP port; 0 asks the system for a free one. */
  port: number;
}

/**
 * Parses a bind URL such as `http://127.0.0.1:41233`.
 *
 * @param bind The URL from `FTL_BIND` or `--bind`.
 * @returns The address to listen on.
 * @throws {TypeError} When the URL is not `http://host:port`.
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
  if (url.protocol !== "http:") {
    throw new TypeError(
      `bind address ${url.href} must use http:// (plugins speak h2c, not TLS)`,
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

/** The URL a client uses to reach a server listening on `hostname:port`. */
export function bindUrl(hostname: string, port: number): URL {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return new URL(`http://${host}:${port}`);
}
