import { createMemoryStore } from "@whisperchat/store-memory";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import type { Connection, SessionLink } from "./connection.js";
import { createWhisper, type WhisperHub } from "./hub.js";
import type { Logger } from "./observe.js";
import { prometheusMetrics } from "./prometheus.js";
import type { ServerFrame } from "./protocol.js";

let hub: WhisperHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

async function connect(h: WhisperHub): Promise<{ link: SessionLink; frames: ServerFrame[] }> {
  const frames: ServerFrame[] = [];
  const conn: Connection = { send: (f) => frames.push(f), close: () => undefined, bufferedAmount: 0 };
  const admission = await h.admit({ transport: "test", headers: {}, params: {}, remoteAddress: "127.0.0.1" });
  return { link: h.open(admission, conn), frames };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe("prometheusMetrics", () => {
  it("counts sessions, matches, messages, errors, limits and store latency on the app's registry", async () => {
    hub = createWhisper({ store: createMemoryStore(), messageRate: { capacity: 1, ratePerSec: 0.1 } });
    const registry = new Registry();
    const metrics = prometheusMetrics(hub, { registry, labels: { node: "n1" } });
    const a = await connect(hub);
    const b = await connect(hub);
    a.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    b.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await until(() => a.frames.some((f) => f.type === "matched"));
    a.link.receive({ type: "message", text: "hi" });
    a.link.receive({ type: "message", text: "too fast" });
    a.link.receive({ type: "dance" });
    await until(() => a.frames.filter((f) => f.type === "error").length === 2);
    const text = await metrics.metrics();
    expect(text).toMatch(/whisperchat_sessions\{node="n1",state="room"\} 2/);
    expect(text).toMatch(/whisperchat_matches_total\{node="n1"\} 1/);
    expect(text).toMatch(/whisperchat_time_to_match_seconds_count\{node="n1"\} 2/);
    expect(text).toMatch(/whisperchat_messages_total\{node="n1"\} 1/);
    expect(text).toMatch(/whisperchat_rate_limited_total\{node="n1",kind="message"\} 1/);
    expect(text).toMatch(/whisperchat_errors_total\{node="n1",code="unknown_type"\} 1/);
    expect(text).toMatch(/whisperchat_errors_total\{node="n1",code="rate_limited"\} 1/);
    expect(text).toMatch(/whisperchat_pool_waiting\{node="n1"\} 0/);
    expect(text).toMatch(
      /whisperchat_store_operation_seconds_count\{node="n1",operation="pool.candidates",ok="true"\} [1-9]/,
    );
    expect(metrics.contentType).toMatch(/text\/plain/);
    metrics.close();
    expect(await registry.metrics()).not.toMatch(/whisperchat_/);
  });
});

describe("prometheusMetrics on the hot path", () => {
  it("listens to no per-message event: messages, refusals and errors are read from the hub on scrape", async () => {
    hub = createWhisper({ store: createMemoryStore() });
    const metrics = prometheusMetrics(hub);
    for (const event of ["message", "rateLimited", "requestError"] as const) {
      expect(hub.listenerCount(event)).toBe(0);
    }
    const a = await connect(hub);
    const b = await connect(hub);
    a.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    b.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await until(() => b.frames.some((f) => f.type === "matched"));
    for (let i = 0; i < 3; i++) a.link.receive({ type: "message", text: `m${i}` });
    await until(() => b.frames.filter((f) => f.type === "message").length === 3);
    expect(hub.totals().messages).toBe(3);
    const first = await metrics.metrics();
    expect(first).toMatch(/whisperchat_messages_total 3/);
    // Scraping twice does not count twice.
    expect(await metrics.metrics()).toMatch(/whisperchat_messages_total 3/);
    metrics.close();
  });

  it("builds no per-message event nobody listens to, and does once a listener is there", async () => {
    hub = createWhisper({ store: createMemoryStore() });
    prometheusMetrics(hub);
    const emitted: string[] = [];
    const emit = hub.emit.bind(hub);
    hub.emit = ((event: Parameters<WhisperHub["emit"]>[0], ...args: unknown[]) => {
      emitted.push(String(event));
      return (emit as (e: unknown, ...a: unknown[]) => boolean)(event, ...args);
    }) as WhisperHub["emit"];
    const a = await connect(hub);
    const b = await connect(hub);
    a.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    b.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await until(() => b.frames.some((f) => f.type === "matched"));
    emitted.length = 0;
    for (let i = 0; i < 3; i++) a.link.receive({ type: "message", text: `m${i}` });
    await until(() => b.frames.filter((f) => f.type === "message").length === 3);
    expect(emitted).toEqual([]);
    const heard: string[] = [];
    hub.on("message", ({ text }) => heard.push(text));
    a.link.receive({ type: "message", text: "now heard" });
    await until(() => heard.length === 1);
    expect(emitted).toEqual(["message"]);
  });

  it("times one store call in sampleEvery per operation, the first one always", async () => {
    hub = createWhisper({ store: createMemoryStore() });
    const seen: string[] = [];
    hub.observeStore((operation) => seen.push(operation), { sampleEvery: 4 });
    for (let i = 0; i < 8; i++) await hub.store.pool.size();
    await hub.store.rooms.get("nope");
    expect(seen.filter((op) => op === "pool.size")).toHaveLength(2);
    expect(seen).toContain("rooms.get");
    expect(() => hub?.observeStore(() => undefined, { sampleEvery: 0 })).toThrow(RangeError);
    hub.observeStore(undefined);
  });

  it("hands a timed call's caller the store's own promise, so that timing adds no microtask hop", async () => {
    const store = createMemoryStore();
    hub = createWhisper({ store });
    const seen: string[] = [];
    hub.observeStore((operation, _seconds, ok) => seen.push(`${operation}:${ok}`), { sampleEvery: 1 });
    const resolved = Promise.resolve(7);
    store.pool.size = () => resolved;
    expect(hub.store.pool.size()).toBe(resolved);
    const rejected = Promise.reject(new Error("down"));
    rejected.catch(() => undefined);
    store.pool.size = () => rejected;
    const timed = hub.store.pool.size();
    expect(timed).toBe(rejected);
    await expect(timed).rejects.toThrow("down");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(seen).toEqual(["pool.size:true", "pool.size:false"]);
    hub.observeStore(undefined);
  });

  it("times a store method replaced after the hub was created (a test's fault still counts)", async () => {
    const store = createMemoryStore();
    hub = createWhisper({ store });
    const seen: string[] = [];
    hub.observeStore((operation, _seconds, ok) => seen.push(`${operation}:${ok}`));
    store.pool.size = () => Promise.reject(new Error("down"));
    await expect(hub.store.pool.size()).rejects.toThrow("down");
    expect(seen).toContain("pool.size:false");
    hub.observeStore(undefined);
  });
});

describe("logger hook", () => {
  it("is silent by default and logs the hub's events to a pino-like logger when given", async () => {
    const lines: { level: string; msg: string | undefined; obj: Record<string, unknown> }[] = [];
    const at =
      (level: string) =>
      (obj: Record<string, unknown>, msg?: string): void => {
        lines.push({ level, msg, obj });
      };
    const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
    hub = createWhisper({ store: createMemoryStore(), logger, allowGuests: false });
    const refused = await hub.admit({
      transport: "test",
      headers: {},
      params: {},
      remoteAddress: "10.0.0.1",
    });
    expect(refused.ok).toBe(false);
    expect(lines).toContainEqual({
      level: "info",
      msg: "handshake refused",
      obj: expect.objectContaining({ status: 401, code: "unauthorized", remoteAddress: "10.0.0.1" }),
    });
  });
});
