import { describe, expect, it } from "vitest";
import type { Admission, Handshake } from "./connection.js";
import { admitHandshake, type Corkable, closeReason, corkForTick, refusal } from "./transport.js";

const HANDSHAKE: Handshake = { transport: "ws", remoteAddress: "203.0.113.7", headers: {}, params: {} };
const ACCEPTED = { ok: true } as unknown as Admission;

describe("closeReason", () => {
  it("keeps a reason that fits in 123 bytes", () => {
    expect(closeReason("kicked")).toBe("kicked");
    expect(closeReason("x".repeat(123))).toBe("x".repeat(123));
  });

  it("cuts a longer reason to 123 bytes on a character boundary", () => {
    expect(closeReason("x".repeat(200))).toBe("x".repeat(123));
    const accents = closeReason("é".repeat(100)); // 2 bytes each
    expect(accents).toBe("é".repeat(61));
  });

  it("never leaves half of a surrogate pair (4-byte characters)", () => {
    for (let pad = 118; pad <= 122; pad++) {
      const reason = `${"a".repeat(pad)}😀😀`;
      const cut = closeReason(reason);
      expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(123);
      expect(reason.startsWith(cut)).toBe(true);
      // A lone surrogate does not survive UTF-8: the cut is valid text only if it round-trips.
      expect(Buffer.from(cut, "utf8").toString("utf8")).toBe(cut);
      expect(Buffer.byteLength(cut)).toBeGreaterThan(119); // as long as the limit allows
    }
  });
});

describe("refusal", () => {
  it("gives Retry-After at least 1 s, and none unless asked", () => {
    expect(refusal(429, "rate_limited", "slow down", 0).retryAfterSec).toBe(1);
    expect(refusal(429, "rate_limited", "slow down", 5).retryAfterSec).toBe(5);
    expect("retryAfterSec" in refusal(403, "forbidden", "no")).toBe(false);
  });
});

describe("admitHandshake", () => {
  it("refuses with 503 while the endpoint is closed, without asking the hub", async () => {
    let asked = 0;
    const hub = {
      admit: async () => {
        asked++;
        return ACCEPTED;
      },
      cancel: () => undefined,
    };
    const answer = await admitHandshake(hub, HANDSHAKE, { closed: () => true });
    expect(answer).toMatchObject({ ok: false, status: 503 });
    expect(asked).toBe(0);
  });

  it("answers 503 when the admission fails", async () => {
    const hub = { admit: () => Promise.reject(new Error("store down")), cancel: () => undefined };
    expect(await admitHandshake(hub, HANDSHAKE)).toMatchObject({ ok: false, status: 503, retryAfterSec: 1 });
  });

  it("passes an admission that comes in time", async () => {
    const hub = { admit: async () => ACCEPTED, cancel: () => undefined };
    expect(await admitHandshake(hub, HANDSHAKE, { timeoutMs: 1000 })).toBe(ACCEPTED);
  });

  it("answers 503 past the deadline and gives a late admission back with cancel", async () => {
    let admit!: (a: Admission) => void;
    const cancelled: Admission[] = [];
    const hub = {
      admit: () => new Promise<Admission>((resolve) => (admit = resolve)),
      cancel: (a: Admission) => cancelled.push(a),
    };
    const answer = await admitHandshake(hub, HANDSHAKE, { timeoutMs: 5 });
    expect(answer).toMatchObject({ ok: false, status: 503 });
    expect(cancelled).toEqual([]);
    admit(ACCEPTED);
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancelled).toEqual([ACCEPTED]);
  });
});

describe("corkForTick", () => {
  function socket(): Corkable & { calls: string[]; destroyed: boolean } {
    const calls: string[] = [];
    return { calls, destroyed: false, cork: () => calls.push("cork"), uncork: () => calls.push("uncork") };
  }

  it("corks once per tick and uncorks at the end of it", async () => {
    const s = socket();
    corkForTick(s);
    corkForTick(s);
    expect(s.calls).toEqual(["cork"]);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(s.calls).toEqual(["cork", "uncork"]);
    corkForTick(s); // the next tick corks again
    expect(s.calls).toEqual(["cork", "uncork", "cork"]);
  });

  it("does not uncork a socket destroyed meanwhile", async () => {
    const s = socket();
    corkForTick(s);
    s.destroyed = true;
    await new Promise((resolve) => process.nextTick(resolve));
    expect(s.calls).toEqual(["cork"]);
  });
});
