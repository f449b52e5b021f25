import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { retryDelay, waitUntilReady } from "../internal/readiness.ts";

/** Nudges a test can send, as the host sends one for each chunk of plugin output. */
function nudger(): { nudges: (nudge: () => void) => () => void; send(): void } {
  const listeners = new Set<() => void>();
  return {
    nudges: (nudge) => {
      listeners.add(nudge);
      return () => listeners.delete(nudge);
    },
    send: () => listeners.forEach((nudge) => nudge()),
  };
}

describe("waitUntilReady", () => {
  it("polls every 1 ms for the first second, then every 50 ms", () => {
    assert.equal(retryDelay(0), 1);
    assert.equal(retryDelay(999), 1);
    assert.equal(retryDelay(1_000), 50);
  });

  it("pings at once when nudged during a wait, not when the wait ends", async () => {
    const { nudges, send } = nudger();
    let pings = 0;
    const started = performance.now();
    const waiting = waitUntilReady({
      ping: () => {
        pings++;
        if (pings === 1) {
          // Refused; the plugin prints its "serving on" line a moment later.
          setTimeout(send, 20);
          return Promise.reject(new Error("connection refused"));
        }
        return Promise.resolve(undefined);
      },
      exited: new Promise(() => {}),
      timeoutMs: 30_000,
      delay: () => 10_000,
      nudges,
    });
    assert.equal(await waiting, undefined);
    assert.equal(pings, 2);
    assert.ok(performance.now() - started < 5_000, "the 10 s wait was cut short");
  });

  it("pings again at once after a ping that a nudge came during", async () => {
    const { nudges, send } = nudger();
    let pings = 0;
    const result = await waitUntilReady({
      ping: () => {
        pings++;
        if (pings === 1) {
          send(); // output while the first ping is still out
          return Promise.reject(new Error("connection refused"));
        }
        return Promise.resolve(undefined);
      },
      exited: new Promise(() => {}),
      timeoutMs: 30_000,
      delay: () => 10_000,
      nudges,
    });
    assert.equal(result, undefined);
    assert.equal(pings, 2);
  });

  it("stops listening for nudges when it is done", async () => {
    let subscribed = 0;
    await waitUntilReady({
      ping: () => Promise.resolve(undefined),
      exited: new Promise(() => {}),
      timeoutMs: 1_000,
      nudges: () => {
        subscribed++;
        return () => subscribed--;
      },
    });
    assert.equal(subscribed, 0);
  });
});
