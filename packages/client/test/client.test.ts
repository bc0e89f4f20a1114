import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createJwtAuth } from "@whisperchat/core/jwt";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import {
  type ClientState,
  createClient,
  isWhisperClientError,
  type MessageFrame,
  type ResumeStorage,
  type WhisperClient,
  WhisperClientError,
} from "../src/index.js";
import {
  client,
  controlledSocket,
  FAST_RECONNECT,
  NEAR_PARIS,
  next,
  PARIS,
  pair,
  reach,
  record,
  startServer,
  type TestServer,
} from "./harness.js";

let server: TestServer | undefined;
const clients: WhisperClient[] = [];
const track = (c: WhisperClient): WhisperClient => {
  clients.push(c);
  return c;
};
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

async function rejection(promise: Promise<unknown>): Promise<WhisperClientError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof WhisperClientError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("createClient", () => {
  it("needs a url and a WebSocket implementation (Node 20 has none built in)", () => {
    expect(() => createClient({ url: "" })).toThrow(/url/);
    const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
    (globalThis as { WebSocket?: unknown }).WebSocket = undefined;
    try {
      expect(() => createClient({ url: "ws://127.0.0.1:1/whisper" })).toThrow(/WebSocket/);
    } finally {
      (globalThis as { WebSocket?: unknown }).WebSocket = saved;
    }
    expect(() => createClient({ url: "ws://x/", WebSocket, reconnect: { jitter: 2 } })).toThrow(/jitter/);
  });
});

describe("chat between two clients (Node, ws)", () => {
  it("connects, matches two nearby users, and carries messages both ways", async () => {
    server = await startServer();
    const a = track(createClient({ url: server.url, WebSocket }));
    const b = track(createClient({ url: server.url, WebSocket }));
    const statesA: ClientState[] = [];
    a.on("state", (s) => statesA.push(s.state));
    expect(a.state).toBe("closed");

    const welcome = await a.connect();
    expect(welcome).toMatchObject({ type: "welcome", protocol: 1, resumed: false });
    expect(a.state).toBe("open");
    expect(a.welcome?.sessionId).toBe(welcome.sessionId);
    expect(await a.connect()).toBe(welcome); // already open: the same welcome
    await b.connect();

    const matchedA = next(a, "matched");
    const matchedB = next(b, "matched");
    const waiting = await a.join({ location: PARIS, rangeKm: 10, name: "Ana" });
    expect(waiting).toMatchObject({ type: "waiting", since: expect.any(Number), id: expect.any(String) });
    await b.join({ location: NEAR_PARIS, rangeKm: 10, name: "Ben" });
    // Close by: one step of the location precision (2.5 km, shown in steps of 3 km) or two.
    expect((await matchedA).partner).toEqual({ name: "Ben", distanceKm: expect.any(Number) });
    expect([3, 6]).toContain((await matchedA).partner.distanceKm);
    expect((await matchedB).partner).toEqual({
      name: "Ana",
      distanceKm: (await matchedA).partner.distanceKm,
    });

    const toB = next(b, "message");
    const ack = await a.send("hello Ben");
    expect(ack).toMatchObject({ type: "ack", messageId: expect.any(String), ts: expect.any(Number) });
    const got = await toB;
    expect(got).toMatchObject({ text: "hello Ben", messageId: ack.messageId });
    const toA = next(a, "message");
    await b.send("hi Ana");
    expect((await toA).text).toBe("hi Ana");

    const typing = next(b, "typing");
    expect(a.typing(true)).toBe(true);
    expect((await typing).active).toBe(true);

    const left = next(b, "partner_left");
    await a.close();
    expect((await left).reason).toBe("disconnected");
    expect(statesA).toEqual(["connecting", "open", "closed"]);
  });
});

describe("requests", () => {
  it("resolve with their reply and reject with the server's code", async () => {
    server = await startServer({ messageRate: { capacity: 1, ratePerSec: 0.5 } });
    const a = track(client(server.url));
    const b = track(client(server.url));
    await a.connect();
    expect((await a.ping()).type).toBe("pong");
    expect((await a.leave()).type).toBe("ack"); // idle: acknowledged, nothing changes

    const badLocation = await rejection(a.join({ location: { lat: 91, lng: 0 }, rangeKm: 5 }));
    expect(badLocation.code).toBe("invalid_location");
    expect(badLocation.requestId).toEqual(expect.any(String));
    expect((await rejection(a.join({ location: PARIS, rangeKm: 1e9 }))).code).toBe("invalid_range");
    expect((await rejection(a.next())).code).toBe("not_in_room");
    expect((await rejection(a.block("spam"))).code).toBe("not_in_room");
    expect((await rejection(a.send("nobody to read this"))).code).toBe("not_in_room");

    await pair(a, b);
    await a.send("one");
    const limited = await rejection(a.send("two"));
    expect(limited.code).toBe("rate_limited");
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect(isWhisperClientError(limited, "rate_limited")).toBe(true);

    // Checked locally, never sent:
    expect((await rejection(a.send("   "))).code).toBe("bad_request");
    const max = a.limits?.maxMessageChars ?? 0;
    expect((await rejection(a.send("x".repeat(max + 1)))).code).toBe("too_large");

    const bWaiting = next(b, "partner_left");
    const again = await a.next();
    expect(again.type).toBe("waiting");
    expect((await bWaiting).reason).toBe("next");
  });

  it("reject with not_connected before connect() and closed when close() is called", async () => {
    server = await startServer();
    const a = track(client(server.url));
    expect((await rejection(a.ping())).code).toBe("not_connected");
    expect((await rejection(a.send("hi"))).code).toBe("not_connected");
    expect(a.typing(true)).toBe(false);
    const connecting = a.connect();
    const closing = a.close();
    expect((await rejection(connecting)).code).toBe("closed");
    await closing;
    expect(a.state).toBe("closed");
    await a.connect(); // usable again
    expect(a.state).toBe("open");
  });

  it("connect() rejects with connect_failed when the handshake is refused", async () => {
    server = await startServer({ allowGuests: false });
    const a = track(client(server.url));
    const disconnected = next(a, "disconnected");
    const error = await rejection(a.connect());
    expect(error.code).toBe("connect_failed");
    expect((await disconnected).willReconnect).toBe(false);
    expect(a.state).toBe("closed");
  });

  it("time out when the server does not answer, and a silent connection is resumed on a new one", async () => {
    // A server that says welcome and then nothing.
    const http = createServer();
    const wss = new WebSocketServer({ server: http, handleProtocols: () => "whisperchat.v1" });
    let connections = 0;
    wss.on("connection", (ws) => {
      connections++;
      ws.send(
        JSON.stringify({
          type: "welcome",
          sessionId: `s${connections}`,
          resumeToken: `s${connections}.t`,
          protocol: 1,
          user: { userId: "u", name: "U" },
          resumed: false,
          limits: {
            maxMessageChars: 100,
            maxRangeKm: 100,
            maxNameChars: 32,
            messagesPerSec: 5,
            messageBurst: 10,
            resumeGraceMs: 30000,
            maxPayloadBytes: 16384,
          },
        }),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    try {
      const quiet = track(client(url, { requestTimeoutMs: 150, heartbeatIntervalMs: 0 }));
      await quiet.connect();
      const timeout = await rejection(quiet.ping());
      expect(timeout.code).toBe("timeout");
      expect(timeout.requestId).toEqual(expect.any(String));

      const beating = track(client(url, { requestTimeoutMs: 150, heartbeatIntervalMs: 100 }));
      await beating.connect();
      const dropped = await next(beating, "disconnected");
      expect(dropped).toMatchObject({ code: 4000, willReconnect: true });
      const lost = await next(beating, "sessionLost"); // the fake server never resumes
      expect(lost.sessionId).not.toBe("s1");
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});

describe("reconnect and resume", () => {
  it("resumes after a drop: receives what it missed, resends unacknowledged messages once, in order", async () => {
    server = await startServer();
    const Sock = controlledSocket();
    const a = track(client(server.url, { WebSocket: Sock }));
    const b = track(client(server.url));
    await pair(a, b);
    const seenByB = record(b, "message");
    const seenByA = record(a, "message");

    // Acks of these two are lost: the server delivered them, the client does not know.
    Sock.swallow = (f) => f.type === "ack";
    const first = a.send("m1");
    const second = a.send("m2");
    await expect.poll(() => seenByB.map((m) => m.text)).toEqual(["m1", "m2"]);
    expect(a.unacknowledged).toBe(2);

    // The connection drops (server side) and new connections fail for a while.
    Sock.swallow = undefined;
    Sock.blocked = true;
    const away = next(b, "partner_away");
    const disconnected = next(a, "disconnected");
    server.drop(Sock);
    expect(await disconnected).toMatchObject({ code: 1006, willReconnect: true });
    await away;
    expect(a.state).toBe("reconnecting");

    // Meanwhile: the partner writes (A must get it after the resume), A writes (queued).
    await b.send("while you were away");
    const third = a.send("m3");
    expect((await rejection(a.ping())).code).toBe("not_connected");
    await next(a, "reconnecting"); // at least one attempt failed
    expect(a.state).toBe("reconnecting");

    const back = next(b, "partner_back");
    const resumed = next(a, "resumed");
    Sock.blocked = false;
    expect((await resumed).resumed).toBe(true);
    await back;
    const acks = await Promise.all([first, second, third]);
    expect(new Set(acks.map((x) => x.messageId)).size).toBe(3);
    expect(a.unacknowledged).toBe(0);
    await expect.poll(() => seenByA.map((m: MessageFrame) => m.text)).toEqual(["while you were away"]);
    await expect.poll(() => seenByB.map((m) => m.text)).toEqual(["m1", "m2", "m3"]);

    // Still one room: the chat goes on.
    const after = next(b, "message");
    await a.send("m4");
    expect((await after).text).toBe("m4");
    expect(seenByB.map((m) => m.text)).toEqual(["m1", "m2", "m3", "m4"]);
  });

  it("reconnects after the server closes with 1012, and reports sessionLost when the server forgot the session", async () => {
    server = await startServer();
    const Sock = controlledSocket();
    const a = track(client(server.url, { WebSocket: Sock }));
    const first = await a.connect();
    await a.join({ location: PARIS, rangeKm: 10 });
    Sock.blocked = true; // until the new hub is up
    const disconnected = next(a, "disconnected");
    await server.restart();
    expect(await disconnected).toMatchObject({ code: 1012, willReconnect: true });
    const queued = a.send("lost with the session");
    const lost = next(a, "sessionLost");
    Sock.blocked = false;
    const welcome = await lost;
    expect(welcome.resumed).toBe(false);
    expect(welcome.sessionId).not.toBe(first.sessionId);
    expect((await rejection(queued)).code).toBe("session_lost");
    expect(a.state).toBe("open");
    expect((await a.ping()).type).toBe("pong");
  });

  it("a new client with the same resumeStorage resumes the session (a page reload)", async () => {
    server = await startServer();
    let stored: string | undefined;
    const storage: ResumeStorage = {
      get: () => stored,
      set: (t) => {
        stored = t;
      },
    };
    const Sock = controlledSocket();
    const a = track(client(server.url, { WebSocket: Sock, resumeStorage: storage, reconnect: false }));
    const b = track(client(server.url));
    await pair(a, b);
    expect(stored).toBe(a.welcome?.resumeToken);
    const session = a.welcome?.sessionId;
    // The page goes away without close(): the browser closes with 1001.
    const away = next(b, "partner_away");
    Sock.sockets.at(-1)?.close(1001);
    await away;
    const reloaded = track(client(server.url, { resumeStorage: storage }));
    const resumed = next(reloaded, "resumed");
    const welcome = await reloaded.connect();
    expect(welcome).toMatchObject({ resumed: true, sessionId: session });
    await resumed;
    expect(stored).toBe(welcome.resumeToken);
    const got = next(b, "message");
    await reloaded.send("still here");
    expect((await got).text).toBe("still here");
    await reloaded.close();
    expect(stored).toBeUndefined(); // close() ends the session: nothing left to resume
  });

  it("sends its deviceId: a guest is the same user on every new session of the device", async () => {
    server = await startServer();
    const deviceId = "0123456789abcdef0123";
    const first = track(client(server.url, { deviceId }));
    const one = await first.connect();
    await first.close();
    const second = track(client(server.url, { deviceId }));
    const two = await second.connect();
    expect(two.sessionId).not.toBe(one.sessionId);
    expect(two.user.userId).toBe(one.user.userId);
    const other = track(client(server.url));
    expect((await other.connect()).user.userId).not.toBe(one.user.userId);
  });

  it("does not reconnect after 4001 (another connection took the session over)", async () => {
    server = await startServer();
    const a = track(client(server.url));
    const welcome = await a.connect();
    const disconnected = next(a, "disconnected");
    const thief = new WebSocket(`${server.url}?resume=${encodeURIComponent(welcome.resumeToken)}`);
    expect(await disconnected).toEqual({ code: 4001, reason: expect.any(String), willReconnect: false });
    expect(a.state).toBe("closed");
    thief.close(1000);
  });

  it("gives up after reconnect.maxAttempts and rejects what was queued", async () => {
    server = await startServer();
    const Sock = controlledSocket();
    const a = track(
      client(server.url, { WebSocket: Sock, reconnect: { ...FAST_RECONNECT, maxAttempts: 2 } }),
    );
    await a.connect();
    Sock.blocked = true;
    const attempts = record(a, "reconnecting");
    server.drop(Sock);
    await reach(a, "reconnecting");
    const queued = a.send("never delivered");
    await reach(a, "closed");
    expect(attempts.map((x) => x.attempt)).toEqual([1, 2]);
    expect((await rejection(queued)).code).toBe("closed");
  });
});

describe("tokens", () => {
  const secret = "a-test-secret-that-is-at-least-32-bytes-long";

  it("refreshes a short-lived token with auth before it expires (getToken)", async () => {
    const jwt = createJwtAuth({ secret });
    server = await startServer({
      allowGuests: false,
      authenticate: jwt.authenticate,
      reauthenticate: jwt.reauthenticate,
    });
    const issued: number[] = [];
    const getToken = async () => {
      const t = await jwt.sign({ userId: "u1", name: "Uma", roles: [] }, { expiresInSec: 2 });
      issued.push(t.expiresAt);
      return t.token;
    };
    const a = track(client(server.url, { getToken }));
    const welcome = await a.connect();
    expect(welcome.user).toEqual({ userId: "u1", name: "Uma" });
    const firstExpiry = issued[0] ?? 0;
    const refreshed = record(a, "tokenRefreshed");
    const disconnects = record(a, "disconnected");
    // Past the first token's expiry, the session is still there: it was refreshed in time.
    await expect
      .poll(() => Date.now() > firstExpiry + 300 && refreshed.length >= 2, { timeout: 8000 })
      .toBe(true);
    expect((await a.ping()).type).toBe("pong");
    expect(disconnects).toEqual([]);
    expect(refreshed[0]?.expiresAt).toBe(issued[1]);
  });

  it("without a refresh the server closes with 4401, and the client does not reconnect", async () => {
    const jwt = createJwtAuth({ secret });
    server = await startServer({
      allowGuests: false,
      authenticate: jwt.authenticate,
      reauthenticate: jwt.reauthenticate,
    });
    const { token } = await jwt.sign({ userId: "u2", name: "Ugo", roles: [] }, { expiresInSec: 1 });
    const a = track(client(server.url, { getToken: () => token }));
    await a.connect();
    const disconnected = await next(a, "disconnected", () => true, 5000);
    expect(disconnected).toMatchObject({ code: 4401, willReconnect: false });
    expect(a.state).toBe("closed");
  });

  it("reports tokenRefreshFailed when the server refuses the new token", async () => {
    const jwt = createJwtAuth({ secret });
    server = await startServer({
      allowGuests: false,
      authenticate: jwt.authenticate,
      reauthenticate: jwt.reauthenticate,
    });
    let user = "u3";
    const getToken = async () =>
      (await jwt.sign({ userId: user, name: user, roles: [] }, { expiresInSec: 60 })).token;
    const a = track(client(server.url, { getToken }));
    await a.connect();
    user = "someone-else";
    const failed = next(a, "tokenRefreshFailed");
    const error = await rejection(a.refreshToken());
    expect(error.code).toBe("unauthorized");
    expect((await failed).code).toBe("unauthorized");
    expect(a.state).toBe("open");
  });
});

describe("message cursor", () => {
  it("resumes with the last message it got (last=<roomId>:<messageId>) and shows a replayed message once", async () => {
    const http = createServer();
    const wss = new WebSocketServer({ server: http, handleProtocols: () => "whisperchat.v1" });
    const urls: string[] = [];
    const limits = {
      maxMessageChars: 100,
      maxRangeKm: 100,
      maxNameChars: 32,
      messagesPerSec: 5,
      messageBurst: 10,
      resumeGraceMs: 30000,
      maxPayloadBytes: 16384,
    };
    const message = (messageId: string) => ({
      type: "message",
      roomId: "R",
      messageId,
      text: messageId,
      ts: 1,
    });
    wss.on("connection", (ws, req) => {
      urls.push(req.url ?? "");
      const first = urls.length === 1;
      const frames: object[] = [
        {
          type: "welcome",
          sessionId: "s",
          resumeToken: `s.t${urls.length}`,
          protocol: 1,
          user: { userId: "u", name: "U" },
          resumed: !first,
          limits,
        },
      ];
      if (first) frames.push({ type: "matched", roomId: "R", partner: { name: "P", distanceKm: 1 } });
      frames.push(...(first ? [message("m1"), message("m2")] : [message("m2"), message("m3")]));
      for (const f of frames) ws.send(JSON.stringify(f));
      if (first) setTimeout(() => ws.terminate(), 50); // the node dies
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    try {
      const c = track(client(url, { heartbeatIntervalMs: 0 }));
      const got: string[] = [];
      c.on("message", (m) => got.push(m.messageId));
      await c.connect();
      await next(c, "resumed");
      await new Promise((r) => setTimeout(r, 100));
      expect(new URL(urls[1] ?? "", "http://x").searchParams.get("last")).toBe("R:m2");
      expect(new URL(urls[0] ?? "", "http://x").searchParams.get("last")).toBe(null);
      expect(got).toEqual(["m1", "m2", "m3"]);
    } finally {
      wss.close();
      http.close();
    }
  });
});
