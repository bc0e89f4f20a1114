import type {
  ClientFrame as CoreClientFrame,
  ClientLimits as CoreClientLimits,
  ErrorCode as CoreErrorCode,
  ServerFrame as CoreServerFrame,
} from "@whisperchat/core";
import { CloseCode as CoreCloseCode } from "@whisperchat/core";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  backoffDelay,
  type ClientFrame,
  type ClientLimits,
  CloseCode,
  DEFAULT_RECONNECT,
  type ProtocolErrorCode,
  RECONNECT_CLOSE_CODES,
  type ServerFrame,
  shouldReconnect,
  tokenExpiry,
  webStorage,
} from "../src/index.js";
import { refreshDelay } from "../src/token.js";

describe("the client's protocol types match the server's", () => {
  it("frames, limits, error codes and close codes", () => {
    expectTypeOf<CoreServerFrame>().toEqualTypeOf<ServerFrame>();
    expectTypeOf<ClientFrame>().toExtend<CoreClientFrame>();
    expectTypeOf<CoreClientLimits>().toEqualTypeOf<ClientLimits>();
    expectTypeOf<CoreErrorCode>().toEqualTypeOf<ProtocolErrorCode>();
    for (const [name, code] of Object.entries(CoreCloseCode)) {
      expect(CloseCode[name as keyof typeof CloseCode], name).toBe(code);
    }
  });
});

describe("reconnect policy", () => {
  it("reconnects after transient closes only", () => {
    for (const code of [1001, 1005, 1006, 1011, 1012, 1013, 1014, 4000])
      expect(shouldReconnect(code), String(code)).toBe(true);
    for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1015, 3000, 4001, 4401, 4999]) {
      expect(shouldReconnect(code), String(code)).toBe(false);
    }
    expect(RECONNECT_CLOSE_CODES.size).toBe(8);
  });

  it("backs off exponentially up to the maximum, with the jitter share random", () => {
    const noJitter = { ...DEFAULT_RECONNECT, jitter: 0 };
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(noJitter, n))).toEqual([
      500, 1000, 2000, 4000, 8000, 15000, 15000,
    ]);
    expect(backoffDelay(DEFAULT_RECONNECT, 3, () => 0)).toBe(2000);
    expect(backoffDelay(DEFAULT_RECONNECT, 3, () => 0.999999)).toBe(1000);
    expect(backoffDelay(DEFAULT_RECONNECT, 40, () => 0.5)).toBe(11250);
  });
});

describe("tokens", () => {
  const jwt = (payload: object) =>
    `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.sig`;

  it("reads exp from a JWT without verifying it", () => {
    expect(tokenExpiry(jwt({ sub: "u", exp: 1_700_000_000, name: "Zoë ✓" }))).toBe(1_700_000_000_000);
    expect(tokenExpiry(jwt({ sub: "u" }))).toBeUndefined();
    expect(tokenExpiry(jwt({ exp: "soon" }))).toBeUndefined();
    expect(tokenExpiry("opaque-token")).toBeUndefined();
    expect(tokenExpiry("a.!!!.c")).toBeUndefined();
  });

  it("refreshes lead-time early, but not later than half the remaining lifetime", () => {
    expect(refreshDelay(3_600_000, 0, 30_000)).toBe(3_570_000);
    expect(refreshDelay(2_000, 0, 30_000)).toBe(1_000);
    expect(refreshDelay(1_000, 2_000, 30_000)).toBe(0);
  });
});

describe("webStorage", () => {
  it("stores, reads and forgets the resume token, and survives a storage that throws", async () => {
    const map = new Map<string, string>();
    const storage = webStorage({
      getItem: (k) => map.get(k) ?? null,
      setItem: (k, v) => void map.set(k, v),
      removeItem: (k) => void map.delete(k),
    });
    await storage.set("tok");
    expect(map.get("whisperchat.resume")).toBe("tok");
    expect(await storage.get()).toBe("tok");
    await storage.set(undefined);
    expect(map.size).toBe(0);
    const broken = webStorage({
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("full");
      },
      removeItem: () => undefined,
    });
    expect(await broken.get()).toBeUndefined();
    expect(() => broken.set("x")).not.toThrow();
  });
});
