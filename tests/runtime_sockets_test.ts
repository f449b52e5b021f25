// The runtime seam's sockets: listen() and connectSocket() (Deno's adapter under
// `deno test`, Node's in the npm build, which points this import at node.ts), and the
// node:net adapter's read backpressure.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { connectSocket, listen } from "#runtime";
import { READ_PAUSE_BYTES, socketStream } from "../internal/runtime/node_socket.ts";
import type { ByteStream } from "../internal/runtime/types.ts";
import { onDeno, tempDir, waitUntil } from "./_helpers.ts";

const text = new TextEncoder();

async function readExactly(stream: ByteStream, count: number): Promise<Uint8Array> {
  const out = new Uint8Array(count);
  let have = 0;
  while (have < count) {
    const n = await stream.read(out.subarray(have));
    if (n === null) throw new Error(`ended after ${have} of ${count} bytes`);
    have += n;
  }
  return out;
}

async function writeAll(stream: ByteStream, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await stream.write(bytes));
}

describe("listen() and connectSocket()", () => {
  it("carry bytes both ways over TCP, with the real port when 0 was asked for", async () => {
    const listener = await listen({ kind: "tcp", hostname: "127.0.0.1", port: 0 });
    let client: ByteStream | undefined;
    let server: ByteStream | null = null;
    try {
      assert.equal(listener.address.kind, "tcp");
      const port = listener.address.kind === "tcp" ? listener.address.port : 0;
      assert.notEqual(port, 0);
      client = await connectSocket({ hostname: "127.0.0.1", port });
      server = await listener.accept();
      assert.ok(server);
      await writeAll(client, text.encode("ping"));
      assert.deepEqual(await readExactly(server, 4), text.encode("ping"));
      await writeAll(server, text.encode("pong"));
      assert.deepEqual(await readExactly(client, 4), text.encode("pong"));
      client.close();
      assert.equal(await server.read(new Uint8Array(8)), null);
    } finally {
      client?.close();
      server?.close();
      listener.close();
    }
    assert.equal(await listener.accept(), null);
  });

  it("ends a pending accept() with null on close, and closing twice is harmless", async () => {
    const listener = await listen({ kind: "tcp", hostname: "127.0.0.1", port: 0 });
    const pending = listener.accept();
    listener.close();
    listener.close();
    assert.equal(await pending, null);
  });

  it("ends a pending read with null when the stream is closed", async () => {
    const listener = await listen({ kind: "tcp", hostname: "127.0.0.1", port: 0 });
    const port = listener.address.kind === "tcp" ? listener.address.port : 0;
    const client = await connectSocket({ hostname: "127.0.0.1", port });
    const server = await listener.accept();
    try {
      const reading = server!.read(new Uint8Array(8));
      server!.close();
      server!.close();
      assert.equal(await reading, null);
    } finally {
      client.close();
      server?.close();
      listener.close();
    }
  });

  it("binds a unix socket 0600, connects over it, and removes it on close", async () => {
    using dir = tempDir();
    const path = join(dir.path, "plugin.sock");
    const listener = await listen({ kind: "unix", path });
    let client: ByteStream | undefined;
    let server: ByteStream | null = null;
    try {
      assert.deepEqual(listener.address, { kind: "unix", path });
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(existsSync(`${path}~`), false);
      client = await connectSocket({ path });
      server = await listener.accept();
      await writeAll(client, text.encode("hi"));
      assert.deepEqual(await readExactly(server!, 2), text.encode("hi"));
    } finally {
      client?.close();
      server?.close();
      listener.close();
    }
    assert.equal(existsSync(path), false, "the socket file is still there");
  });

  it("rejects naming the path when the socket cannot be put in place", async () => {
    if (!onDeno) return; // Node's twin is guest_unix_listen_test's, with a failing rename.
    using dir = tempDir();
    const path = join(dir.path, "plugin.sock");
    // A non-empty directory where the socket goes: the stale-socket removal skips it and
    // the move fails.
    mkdirSync(join(path, "keep"), { recursive: true });
    await assert.rejects(listen({ kind: "unix", path }), (error: Error) => {
      assert.match(error.message, /cannot put the socket in place at /);
      assert.ok(error.message.includes(path), error.message);
      return true;
    });
    assert.equal(existsSync(`${path}~`), false, "the staging socket is still there");
  });

  it("rejects naming the address when the port is taken", async () => {
    const first = await listen({ kind: "tcp", hostname: "127.0.0.1", port: 0 });
    try {
      const port = first.address.kind === "tcp" ? first.address.port : 0;
      await assert.rejects(
        listen({ kind: "tcp", hostname: "127.0.0.1", port }),
        (error: Error) => error.message.includes(`127.0.0.1:${port}`),
      );
    } finally {
      first.close();
    }
  });
});

describe("socketStream()", () => {
  it("stops reading a peer that sends faster than it is read, and resumes once read", async () => {
    const total = 16 * 1024 * 1024;
    let accepted: Socket | undefined;
    const server = createServer((socket) => (accepted = socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const sender = connect(port, "127.0.0.1");
    try {
      await new Promise((resolve) => sender.once("connect", resolve));
      assert.ok(await waitUntil(() => accepted !== undefined, 5_000));
      const stream = socketStream(accepted!);
      let sent = false;
      sender.write(new Uint8Array(total), () => (sent = true));
      // It reads up to its limit, then stops: the rest waits in TCP's buffers and window.
      assert.ok(await waitUntil(() => accepted!.bytesRead > READ_PAUSE_BYTES, 10_000));
      const settled = accepted!.bytesRead;
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(
        accepted!.bytesRead < READ_PAUSE_BYTES + 1024 * 1024,
        `read ${accepted!.bytesRead} bytes (${settled} at the limit) without being asked`,
      );
      assert.equal(sent, false);
      // Reading it all resumes the socket.
      const buffer = new Uint8Array(64 * 1024);
      let received = 0;
      while (received < total) {
        const n = await stream.read(buffer);
        if (n === null) break;
        received += n;
      }
      assert.equal(received, total);
      stream.close();
    } finally {
      sender.destroy();
      accepted?.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
