import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { attachWebSocket } from "@whisperchat/adapter-ws";
import type { Identity, ServerFrame } from "@whisperchat/core";
import { createWhisper, WhisperError } from "@whisperchat/core";
import { expectFrame, type TestClient } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { Server } from "socket.io";
import { type Socket as ClientSocket, io as connectSocket, Manager } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { AckAnswer, CloseEventData } from "../src/index.js";
import { attachSocketIo } from "../src/index.js";
import { type SioHarness, type SioTestClient, startSocketIoHarness, wrapSocket } from "./harness.js";

let h: SioHarness | undefined;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await h?.close();
  h = undefined;
});

/** A bare socket.io-client socket, as an app would open it. */
function rawClient(url: string, auth: Record<string, unknown> = {}): ClientSocket {
  const socket = connectSocket(url, { auth, transports: ["websocket"], forceNew: true, reconnection: false });
  cleanups.push(() => socket.close());
  return socket;
}

function once<T>(socket: ClientSocket, event: string): Promise<T> {
  return new Promise((resolve) => socket.once(event, (payload: T) => resolve(payload)));
}

function emitWithAck(socket: ClientSocket, event: string, ...args: unknown[]): Promise<AckAnswer> {
  return new Promise((resolve) => socket.emit(event, ...args, (answer: AckAnswer) => resolve(answer)));
}

const PARIS = { lat: 48.8566, lng: 2.3522 };

async function pair(a: TestClient, b: TestClient): Promise<string> {
  await expectFrame(a, "welcome");
  await expectFrame(b, "welcome");
  a.send({ type: "join", location: PARIS, rangeKm: 10, name: "Ann" });
  await expectFrame(a, "waiting");
  b.send({ type: "join", location: PARIS, rangeKm: 10, name: "Bob" });
  await expectFrame(b, "waiting");
  const mb = await expectFrame(b, "matched");
  await expectFrame(a, "matched");
  return mb.roomId;
}

/** A ws client of adapter-ws, queueing frames. */
function wsClient(url: string): TestClient {
  const ws = new WebSocket(url);
  const queue: ServerFrame[] = [];
  const waiters: ((f: ServerFrame) => void)[] = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString()) as ServerFrame;
    const w = waiters.shift();
    if (w) w(frame);
    else queue.push(frame);
  });
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  const client: TestClient = {
    send: (frame) => {
      const go = () => ws.send(JSON.stringify(frame));
      if (ws.readyState === WebSocket.OPEN) go();
      else ws.once("open", go);
    },
    next: (timeoutMs = 3000) => {
      const f = queue.shift();
      if (f) return Promise.resolve(f);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((frame) => {
          clearTimeout(timer);
          resolve(frame);
        });
      });
    },
    pending: () => queue,
    closed,
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close(1000);
      await closed;
    },
    async drop() {
      ws.terminate();
      await closed;
    },
  };
  cleanups.push(() => client.close());
  return client;
}

describe("adapter-socketio: event mapping", () => {
  it("answers through ack callbacks with { ok, ...fields } and sends server frames as events", async () => {
    h = await startSocketIoHarness();
    const url = h.origin;
    const a = rawClient(url);
    const b = rawClient(url);
    const welcomeA = await once<Record<string, unknown>>(a, "welcome");
    expect(welcomeA).toMatchObject({ protocol: 1, resumed: false });
    expect(welcomeA).not.toHaveProperty("type");
    await once(b, "welcome");
    expect(await emitWithAck(a, "ping")).toEqual({ ok: true });
    expect(await emitWithAck(a, "ping", { id: "p" })).toEqual({ ok: true, id: "p" });
    const refused = await emitWithAck(a, "message", { text: "anyone?" });
    expect(refused).toEqual({ ok: false, error: { code: "not_in_room", message: expect.any(String) } });
    const joined = await emitWithAck(a, "join", { location: PARIS, rangeKm: 5 });
    expect(joined).toEqual({ ok: true, since: expect.any(Number) });
    const matchedB = once<Record<string, unknown>>(b, "matched");
    const matchedA = once<Record<string, unknown>>(a, "matched");
    expect((await emitWithAck(b, "join", { location: PARIS, rangeKm: 5 })).ok).toBe(true);
    const room = await matchedA;
    expect(room).toEqual({
      roomId: expect.any(String),
      partner: { name: expect.any(String), distanceKm: expect.any(Number) },
    });
    expect((await matchedB).roomId).toBe(room.roomId);
    const incoming = once<Record<string, unknown>>(b, "message");
    const ack = await emitWithAck(a, "message", { text: "hello" });
    expect(ack).toEqual({ ok: true, messageId: expect.any(String), ts: expect.any(Number) });
    expect(await incoming).toEqual({
      roomId: room.roomId,
      messageId: (ack as { messageId: string }).messageId,
      text: "hello",
      ts: (ack as { ts: number }).ts,
    });
    const left = once<Record<string, unknown>>(a, "partner_left");
    expect(await emitWithAck(b, "leave")).toEqual({ ok: true, ts: expect.any(Number) });
    expect(await left).toEqual({ roomId: room.roomId, reason: "left" });
  });

  it("delivers errors of requests without a callback as the event `error` (socket.on works)", async () => {
    h = await startSocketIoHarness();
    const a = rawClient(h.origin);
    await once(a, "welcome");
    const error = once<Record<string, unknown>>(a, "error");
    a.emit("message", { id: "m1", text: "anyone?" });
    expect(await error).toEqual({ code: "not_in_room", message: expect.any(String), id: "m1" });
    const answered = once<Record<string, unknown>>(a, "pong");
    a.emit("ping", { id: "p1" });
    expect(await answered).toEqual({ id: "p1" });
  });

  it("passes a rate_limited retryAfterMs through the ack callback", async () => {
    h = await startSocketIoHarness({ messageRate: { capacity: 1, ratePerSec: 0.01 } });
    const a = await h.connect();
    const b = await h.connect();
    await pair(a, b);
    const raw = a.socket;
    expect((await emitWithAck(raw, "message", { text: "one" })).ok).toBe(true);
    const limited = await emitWithAck(raw, "message", { text: "two" });
    expect(limited.ok).toBe(false);
    if (limited.ok) return;
    expect(limited.error.code).toBe("rate_limited");
    expect(limited.error.retryAfterMs).toBeGreaterThan(0);
  });

  it.each([
    [
      "a string payload (not parsed as a frame)",
      ["message", JSON.stringify({ type: "message", text: "hi" })],
    ],
    ["an array payload", ["ping", [1, 2]]],
    ["a null payload", ["ping", null]],
    ["a binary payload", ["ping", Buffer.from("hello")]],
    ["extra arguments", ["ping", {}, "extra"]],
    ["a numeric event name", [7, {}]],
  ] as [string, unknown[]][])("answers %s with bad_request, and the session goes on", async (_what, args) => {
    h = await startSocketIoHarness();
    const a = rawClient(h.origin);
    await once(a, "welcome");
    const [event, ...rest] = args as [string, ...unknown[]];
    const answer = await emitWithAck(a, event, ...rest);
    expect(answer).toEqual({ ok: false, error: { code: "bad_request", message: expect.any(String) } });
    const error = once<Record<string, unknown>>(a, "error");
    a.emit(event, ...rest);
    expect((await error).code).toBe("bad_request");
    expect(await emitWithAck(a, "ping")).toEqual({ ok: true });
  });

  it("answers unknown events, including one named `error`, with unknown_type and does not crash", async () => {
    h = await startSocketIoHarness();
    const a = rawClient(h.origin);
    await once(a, "welcome");
    expect(await emitWithAck(a, "dance", { id: "d" })).toMatchObject({
      ok: false,
      error: { code: "unknown_type" },
    });
    expect(await emitWithAck(a, "error", { id: "e" })).toMatchObject({
      ok: false,
      error: { code: "unknown_type" },
    });
    const error = once<Record<string, unknown>>(a, "error");
    a.emit("error", { id: "e2" });
    expect(await error).toMatchObject({ code: "unknown_type", id: "e2" });
    expect(await emitWithAck(a, "ping")).toEqual({ ok: true });
  });

  it("handles each request once (no double handling of events)", async () => {
    h = await startSocketIoHarness();
    const c = await h.connect(undefined, { acks: false });
    await expectFrame(c, "welcome");
    c.send({ type: "ping", id: "1" });
    c.send({ type: "ping", id: "2" });
    expect(await c.next()).toEqual({ type: "pong", id: "1" });
    expect(await c.next()).toEqual({ type: "pong", id: "2" });
    c.send({ type: "ping", id: "sync" });
    expect(await c.next()).toEqual({ type: "pong", id: "sync" });
    expect(c.pending()).toEqual([]);
  });

  it("serves HTTP long-polling clients too", async () => {
    h = await startSocketIoHarness({}, { mode: { transports: ["polling"] } });
    const c = await h.connect();
    expect((c.socket.io.engine as unknown as { transport: { name: string } }).transport.name).toBe("polling");
    expect((await c.next()).type).toBe("welcome");
  });
});

describe("adapter-socketio: handshake", () => {
  it("passes the auth payload and the client's headers and address to the auth hook", async () => {
    const seen: { transport: string; token: string | undefined; address: string; header: unknown }[] = [];
    h = await startSocketIoHarness({
      allowGuests: false,
      authenticate: (handshake, token): Identity | null => {
        seen.push({
          transport: handshake.transport,
          token,
          address: handshake.remoteAddress,
          header: handshake.headers["x-app"],
        });
        if (token !== "good") return null;
        return { userId: "u1", name: "Alice", roles: [] };
      },
    });
    const socket = connectSocket(h.origin, {
      auth: { token: "good" },
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      extraHeaders: { "x-app": "demo" },
    });
    cleanups.push(() => socket.close());
    const welcome = await once<{ user: { userId: string; name: string } }>(socket, "welcome");
    expect(welcome.user).toEqual({ userId: "u1", name: "Alice" });
    expect(seen[0]).toEqual({ transport: "socket.io", token: "good", address: "127.0.0.1", header: "demo" });
  });

  it("refuses guests when not allowed: connect_error with data { code: unauthorized, status: 401 }", async () => {
    h = await startSocketIoHarness({ allowGuests: false });
    const refused = await h.connectRefused();
    expect(refused.data).toEqual({ code: "unauthorized", status: 401 });
    expect(refused.message).toMatch(/token/);
  });

  it("refuses with 401 or 403 as the auth hook decides", async () => {
    h = await startSocketIoHarness({
      authenticate: (_h, token) => {
        if (token === "banned") throw new WhisperError("forbidden", "you are banned");
        throw new WhisperError("unauthorized", "the token expired");
      },
    });
    expect((await h.connectRefused({ token: "banned" })).data).toEqual({ code: "forbidden", status: 403 });
    const expired = await h.connectRefused({ token: "old" });
    expect(expired.data).toEqual({ code: "unauthorized", status: 401 });
    expect(expired.message).toBe("the token expired");
  });

  it("refuses a disallowed origin with 403", async () => {
    h = await startSocketIoHarness({ allowedOrigins: ["https://chat.example"] });
    const refused = await h.connectRefused({ headers: { origin: "https://evil.example" } });
    expect(refused.data).toEqual({ code: "forbidden", status: 403 });
    const ok = await h
      .connectRefused({ headers: { origin: "https://chat.example" } })
      .catch((e: Error) => e.message);
    expect(ok).toBe("the connection was accepted");
  });

  it("refuses repeated connection attempts with 429 and retryAfterSec", async () => {
    h = await startSocketIoHarness({ connectRate: { capacity: 2, ratePerSec: 0.5 } });
    await h.connect();
    await h.connect();
    const refused = await h.connectRefused();
    expect(refused.data.code).toBe("rate_limited");
    expect(refused.data.status).toBe(429);
    expect(refused.data.retryAfterSec).toBeGreaterThanOrEqual(1);
  });

  it("refuses non-string token or resume with 400, and treats a null token as none", async () => {
    h = await startSocketIoHarness();
    expect((await h.connectRefused({ auth: { token: 42 } })).data).toEqual({
      code: "bad_request",
      status: 400,
    });
    expect((await h.connectRefused({ auth: { resume: { x: 1 } } })).data.status).toBe(400);
    const guest = rawClient(h.origin, { token: null, theme: "dark" });
    expect((await once<{ resumed: boolean }>(guest, "welcome")).resumed).toBe(false);
  });
});

describe("adapter-socketio: mounting", () => {
  it("stays in its namespace: the app's own handlers on / are left alone", async () => {
    h = await startSocketIoHarness(
      { allowGuests: false },
      {
        namespace: "/chat",
        mount: (hub, server) => {
          const adapter = attachSocketIo(hub, { server, namespace: "/chat" });
          adapter.io.on("connection", (socket) => {
            socket.on("echo", (x: unknown, ack: (y: unknown) => void) => ack(x));
          });
          return adapter;
        },
      },
    );
    // Guests are refused in /chat, but / is the app's: no WhisperChat admission there.
    expect((await h.connectRefused()).data.status).toBe(401);
    const own = rawClient(h.origin);
    await once(own, "connect");
    expect(await new Promise((resolve) => own.emit("echo", { hi: 1 }, resolve))).toEqual({ hi: 1 });
    own.emit("message", { text: "not for WhisperChat" });
    expect(await new Promise((resolve) => own.emit("echo", 2, resolve))).toBe(2);
    expect((await h.hub.stats()).sessions).toBe(0);
  });

  it("attaches to an existing Server with namespaces and events of its own, multiplexed", async () => {
    let adminHits = 0;
    h = await startSocketIoHarness(
      {},
      {
        namespace: "/whisper",
        mount: (hub, server) => {
          const io = new Server(server, { maxHttpBufferSize: hub.limits.maxPayloadBytes });
          io.on("connection", (socket) => socket.on("hello", (ack: (s: string) => void) => ack("hi")));
          io.of("/admin").on("connection", (socket) => {
            adminHits++;
            socket.emit("stats", { ok: 1 });
          });
          const adapter = attachSocketIo(hub, { io, namespace: "/whisper" });
          expect(adapter.io).toBe(io);
          expect(adapter.namespace.name).toBe("/whisper");
          return adapter;
        },
      },
    );
    const manager = new Manager(h.origin, { transports: ["websocket"], reconnection: false });
    const root = manager.socket("/");
    const admin = manager.socket("/admin");
    const stats = once(admin, "stats");
    const chat = wrapSocket(manager.socket("/whisper"));
    cleanups.push(() => {
      root.close();
      admin.close();
      chat.socket.close();
    });
    expect((await chat.next()).type).toBe("welcome");
    expect(await new Promise((resolve) => root.emit("hello", resolve))).toBe("hi");
    expect(await stats).toEqual({ ok: 1 });
    expect(adminHits).toBe(1);
    // The hub closing ends the WhisperChat socket only: the shared connection stays up.
    await h.hub.close();
    expect(await chat.closed).toBe(1001);
    expect(chat.closeEvent()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(root.connected).toBe(true);
    expect(await new Promise((resolve) => root.emit("hello", resolve))).toBe("hi");
  });

  it("matches a ws client with a Socket.IO client on one hub and HTTP server; they chat both ways", async () => {
    h = await startSocketIoHarness(
      {},
      {
        mount: (hub, server) => {
          attachWebSocket(hub, { server });
          return attachSocketIo(hub, { server });
        },
      },
    );
    const port = (h.server.address() as AddressInfo).port;
    const viaWs = wsClient(`ws://127.0.0.1:${port}/whisper`);
    const viaSio = await h.connect(undefined, { acks: false });
    const roomId = await pair(viaWs, viaSio);
    viaWs.send({ type: "message", id: "w1", text: "from ws" });
    const ackW = await expectFrame(viaWs, "ack");
    expect(ackW.id).toBe("w1");
    expect(await expectFrame(viaSio, "message")).toEqual({
      type: "message",
      roomId,
      messageId: ackW.messageId,
      text: "from ws",
      ts: ackW.ts,
    });
    const ackS = await emitWithAck(viaSio.socket, "message", { text: "from socket.io ✓" });
    expect(ackS.ok).toBe(true);
    expect((await expectFrame(viaWs, "message")).text).toBe("from socket.io ✓");
    viaSio.send({ type: "typing", active: true });
    expect(await expectFrame(viaWs, "typing")).toEqual({ type: "typing", active: true });
    await viaSio.close();
    expect((await expectFrame(viaWs, "partner_left")).reason).toBe("disconnected");
  });

  it("leaves slow upgrades on other paths alone (adapter-ws admitting after a second)", async () => {
    h = await startSocketIoHarness(
      {
        authenticate: async () => {
          await new Promise((r) => setTimeout(r, 1300));
          return null;
        },
      },
      {
        mount: (hub, server) => {
          attachWebSocket(hub, { server });
          return attachSocketIo(hub, { server });
        },
      },
    );
    const port = (h.server.address() as AddressInfo).port;
    const viaWs = wsClient(`ws://127.0.0.1:${port}/whisper`);
    expect((await viaWs.next(5000)).type).toBe("welcome");
  });

  it("rejects bad options", () => {
    const hub = createWhisper({ store: createMemoryStore() });
    const server = createServer();
    expect(() => attachSocketIo(hub, { server, namespace: "chat" })).toThrow(TypeError);
    expect(() => attachSocketIo(hub, { server, path: "socket" })).toThrow(TypeError);
    expect(() => attachSocketIo(hub, {} as never)).toThrow(TypeError);
  });

  it("sets maxHttpBufferSize from the hub when it creates the server", async () => {
    h = await startSocketIoHarness({ maxPayloadBytes: 4096 });
    expect(
      (h.adapter.io.engine as unknown as { opts: { maxHttpBufferSize: number } }).opts.maxHttpBufferSize,
    ).toBe(4096);
  });
});

describe("adapter-socketio: closing", () => {
  it("disconnects a client whose packet exceeds maxHttpBufferSize; the server stays up", async () => {
    h = await startSocketIoHarness({ maxPayloadBytes: 2048 });
    const a = await h.connect();
    const b = await h.connect();
    const roomId = await pair(a, b);
    a.send({ type: "message", text: "x".repeat(4096) });
    expect(await a.closed).toBe(1006);
    // Like a WebSocket closed 1009, the session is dropped, not ended: it may resume.
    expect(await expectFrame(b, "partner_away")).toEqual({ type: "partner_away", roomId });
    const c = await h.connect();
    expect((await c.next()).type).toBe("welcome");
  });

  it("emits close { code, reason } before disconnecting: 1012 when the hub restarts", async () => {
    h = await startSocketIoHarness();
    const a = await h.connect();
    await expectFrame(a, "welcome");
    const reason = once<string>(a.socket, "disconnect");
    await h.hub.close({ code: 1012 });
    expect(await reason).toBe("io server disconnect");
    expect(a.closeEvent()).toEqual({ code: 1012, reason: "server restarting" } satisfies CloseEventData);
  });

  it("closes a flooding client with 1008", async () => {
    h = await startSocketIoHarness({ messageRate: { capacity: 1, ratePerSec: 0.01 }, floodCloseAfter: 3 });
    const a = await h.connect(undefined, { acks: false });
    const b = await h.connect();
    await pair(a, b);
    for (let i = 0; i < 5; i++) a.send({ type: "message", text: `m${i}` });
    expect(await a.closed).toBe(1008);
    expect(a.closeEvent()?.reason).toMatch(/flood/);
    expect((await expectFrame(b, "message")).text).toBe("m0");
    expect(await b.next()).toMatchObject({ type: "partner_left", reason: "disconnected" });
  });

  it("closes a client that does not read once its send buffer passes the bound", async () => {
    h = await startSocketIoHarness({
      maxBufferedBytes: 256 * 1024,
      maxMessageChars: 8000,
      maxPayloadBytes: 32 * 1024,
      messageRate: { capacity: 1e6, ratePerSec: 1e6 },
      userMessageRate: { capacity: 1e6, ratePerSec: 1e6 },
    });
    const a = await h.connect();
    const slow = await h.connect();
    const roomId = await pair(a, slow);
    // Stop reading: the kernel buffers fill, then the server's own buffers grow.
    const engine = slow.socket.io.engine as unknown as {
      transport: { ws: { _socket: { pause(): void; resume(): void } } };
    };
    const tcp = engine.transport.ws._socket;
    tcp.pause();
    cleanups.push(() => tcp.resume());
    const text = "y".repeat(8000);
    let left: ServerFrame | undefined;
    for (let round = 0; round < 300 && left === undefined; round++) {
      for (let i = 0; i < 20; i++) a.send({ type: "message", text });
      for (let i = 0; i < 20 && left === undefined; i++) {
        const f = await a.next();
        if (f.type === "partner_left") left = f;
        else if (f.type !== "ack") expect(f).toMatchObject({ type: "error", code: "not_in_room" });
      }
    }
    expect(left).toEqual({ type: "partner_left", roomId, reason: "disconnected" });
    expect((await h.hub.stats()).sessions).toBe(1);
  });

  it("adapter.close() drops its sessions with 1001 (resumable elsewhere) and refuses new connections", async () => {
    h = await startSocketIoHarness(
      {},
      { mount: (hub, server) => attachSocketIo(hub, { io: new Server(server) }) },
    );
    const a = await h.connect();
    await expectFrame(a, "welcome");
    await h.adapter.close();
    expect(await a.closed).toBe(1001);
    expect((await h.connectRefused()).data).toEqual({ code: "internal", status: 503, retryAfterSec: 1 });
    expect((await h.hub.stats()).byState.away).toBe(1);
  });

  it("a client that reconnects by itself resumes its session when auth gives the latest resumeToken", async () => {
    h = await startSocketIoHarness();
    const b = await h.connect();
    let resume: string | undefined;
    const socket = connectSocket(h.origin, {
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelay: 10,
      // A function: each reconnection attempt sends the token of the latest welcome.
      auth: (cb) => cb(resume === undefined ? {} : { resume }),
    });
    cleanups.push(() => socket.close());
    socket.on("welcome", (w: { resumeToken: string }) => {
      resume = w.resumeToken;
    });
    const a = wrapSocket(socket);
    const roomId = await pair(a, b);
    const first = resume;
    // Lose the transport: Socket.IO reconnects on its own.
    (socket.io.engine as unknown as { close(): void }).close();
    expect(await expectFrame(b, "partner_away")).toEqual({ type: "partner_away", roomId });
    b.send({ type: "message", text: "missed" });
    await expectFrame(b, "ack");
    const w = await expectFrame(a, "welcome");
    expect(w.resumed).toBe(true);
    expect(w.resumeToken).not.toBe(first);
    expect((await expectFrame(a, "message")).text).toBe("missed");
    expect(await expectFrame(b, "partner_back")).toEqual({ type: "partner_back", roomId });
  });

  it("adapter.close() on a server it created stops serving Socket.IO and leaves other routes alone", async () => {
    h = await startSocketIoHarness();
    const a = await h.connect();
    await expectFrame(a, "welcome");
    await h.adapter.close();
    expect(await a.closed).toBe(1001);
    const late = connectSocket(h.origin, { transports: ["websocket"], forceNew: true, reconnection: false });
    cleanups.push(() => late.close());
    const outcome = await new Promise<string>((resolve) => {
      late.once("connect", () => resolve("connected"));
      late.once("connect_error", () => resolve("refused"));
    });
    expect(outcome).toBe("refused");
    const port = (h.server.address() as AddressInfo).port;
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  });

  it("admits a socket that Socket.IO's connection state recovery let skip the middlewares", async () => {
    h = await startSocketIoHarness(
      {},
      {
        mount: (hub, server) =>
          attachSocketIo(hub, { io: new Server(server, { connectionStateRecovery: {} }) }),
      },
    );
    const socket = connectSocket(h.origin, { transports: ["websocket"], forceNew: true });
    cleanups.push(() => socket.close());
    const c: SioTestClient = wrapSocket(socket);
    await expectFrame(c, "welcome");
    // Drop the transport: the client reconnects and Socket.IO recovers the connection.
    (socket.io.engine as unknown as { close(): void }).close();
    await new Promise<void>((r) => socket.once("connect", () => r()));
    expect(socket.recovered).toBe(true);
    const welcome = await expectFrame(c, "welcome");
    expect(welcome.resumed).toBe(false);
    c.send({ type: "ping", id: "after" });
    expect((await expectFrame(c, "pong")).id).toBe("after");
    const stats = await h.hub.stats();
    expect(stats.sessions - stats.byState.away).toBe(1);
  });
});
