// The device id the client keeps for a guest (client option `deviceId`, docs/protocol.md
// section 6, "Location privacy"): made at random, kept in a Web Storage object, checked before
// anything is sent.
import { describe, expect, it } from "vitest";
import { createClient, isDeviceId, randomDeviceId, type WebStorageLike, webDeviceId } from "../src/index.js";

/** A Web Storage object in memory; `broken` makes every call throw (storage disabled). */
function memoryStorage(broken = false): WebStorageLike & { items: Map<string, string> } {
  const items = new Map<string, string>();
  const check = () => {
    if (broken) throw new Error("SecurityError: storage is disabled");
  };
  return {
    items,
    getItem(key) {
      check();
      return items.get(key) ?? null;
    },
    setItem(key, value) {
      check();
      items.set(key, value);
    },
    removeItem(key) {
      check();
      items.delete(key);
    },
  };
}

describe("device id", () => {
  it("randomDeviceId: well-formed, 128 random bits, never the same twice", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = randomDeviceId();
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(1000);
  });

  it("webDeviceId: made once, then the stored one, under the key given", () => {
    const storage = memoryStorage();
    const first = webDeviceId(storage);
    expect(isDeviceId(first)).toBe(true);
    expect(storage.items.get("whisperchat.device")).toBe(first);
    expect(webDeviceId(storage)).toBe(first);
    const other = webDeviceId(storage, "app.device");
    expect(other).not.toBe(first);
    expect(storage.items.get("app.device")).toBe(other);
  });

  it("webDeviceId: a malformed stored value is replaced; a disabled storage gives a new id each time", () => {
    const storage = memoryStorage();
    storage.items.set("whisperchat.device", "short");
    const id = webDeviceId(storage);
    expect(isDeviceId(id)).toBe(true);
    expect(storage.items.get("whisperchat.device")).toBe(id);
    const disabled = memoryStorage(true);
    const a = webDeviceId(disabled);
    expect(isDeviceId(a)).toBe(true);
    expect(webDeviceId(disabled)).not.toBe(a);
  });

  it("createClient refuses a malformed deviceId with a TypeError before connecting", () => {
    const WebSocket = class {} as never;
    const url = "ws://127.0.0.1:1/whisper";
    for (const deviceId of ["", "short", "x".repeat(129), "has spaces in it 0123", "ünïcödé-0123456789"]) {
      expect(() => createClient({ url, WebSocket, deviceId }), JSON.stringify(deviceId)).toThrow(
        /deviceId must be 16 to 128 characters/,
      );
    }
    expect(() => createClient({ url, WebSocket, deviceId: "0123456789abcdef" })).not.toThrow();
    expect(isDeviceId("x".repeat(128))).toBe(true);
    expect(isDeviceId(42)).toBe(false);
  });
});
