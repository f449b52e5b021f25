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

/**
 * A plugin whose first ping is refused (after `onRefused` runs) and whose next ones are
 * answered; waiting on it with 10 s between pings, so only a nudge can make it quick.
 */
function refusedOnce(nudges: (nudge: () => void) => () => void, onRefused: () => void) {
  let pings = 0;
  const result = waitUntilReady({
    ping: () => {
      pings++;
      if (pings > 1) return Promise.resolve(undefined);
      onRefused();
      return Promise.reject(new Error("connection refused"));
    },
    exited: new Promise(() => {}),
    timeoutMs: 30_000,
    delay: () => 10_000,
    nudges,
  });
  return { result, pings: () => pings };
}

describe("waitUntilReady", () => {
  it("polls every 1 ms for the first second, then every 50 ms", () => {
    assert.equal(retryDelay(0), 1);
    assert.equal(retryDelay(999), 1);
    assert.equal(retryDelay(1_000), 50);
  });

  it("pings at once when nudged during a wait, not when the wait ends", async () => {
    const { nudges, send } = nudger();
    const started = performance.now();
    // The plugin prints its "serving on" line a moment after the refusal.
    const waiting = refusedOnce(nudges, () => setTimeout(send, 20));
    assert.equal(await waiting.result, undefined);
    assert.equal(waiting.pings(), 2);
    assert.ok(performance.now() - started < 5_000, "the 10 s wait was cut short");
  });

  it("pings again at once after a ping that a nudge came during", async () => {
    const { nudges, send } = nudger();
    const started = performance.now();
    // Output while the first ping is still out.
    const waiting = refusedOnce(nudges, send);
    assert.equal(await waiting.result, undefined);
    assert.equal(waiting.pings(), 2);
    assert.ok(performance.now() - started < 5_000, "no 10 s wait after that ping");
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
