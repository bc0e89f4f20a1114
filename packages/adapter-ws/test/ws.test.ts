import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { expectFrame } from "@whisperchat/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startWsHarness, type WsHarness, wrapClient } from "./harness.js";

let h: WsHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function rawUpgrade(port: number, lines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1", () => sock.write(`${lines.join("\r\n")}\r\n\r\n`));
    let data = "";
    sock.on("data", (d) => {
      data += d.toString();
    });
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
    sock.setTimeout(3000, () => {
      sock.destroy();
      resolve(data);
    });
  });
}

describe("adapter-ws", () => {
  it("selects the whisperchat.v1 subprotocol when offered, and accepts clients that offer none", async () => {
    h = await startWsHarness();
    const c = await h.connect();
    expect((c as unknown as { ws: WebSocket }).ws.protocol).toBe("whisperchat.v1");
    const bare = wrapClient(new WebSocket(h.url));
    expect((await bare.next()).type).toBe("welcome");
    await c.close();
    await bare.close();
  });

  it("answers text that is not JSON, and binary frames, with bad_request; the session goes on", async () => {
    h = await startWsHarness();
    const c = await h.connect();
    await expectFrame(c, "welcome");
    h.sendRaw?.(c, "{not json");
    const e1 = await expectFrame(c, "error");
    expect(e1.code).toBe("bad_request");
    h.sendRaw?.(c, new Uint8Array([1, 2, 3]));
    const e2 = await expectFrame(c, "error");
    expect(e2.code).toBe("bad_request");
    expect(e2.message).toMatch(/binary/);
    c.send({ type: "ping", id: "ok" });
    expect((await expectFrame(c, "pong")).id).toBe("ok");
    await c.close();
  });

  it("closes with 1009 when a frame exceeds the maximum payload, and the server stays up", async () => {
    h = await startWsHarness({ maxPayloadBytes: 2048 });
    const c = await h.connect();
    await expectFrame(c, "welcome");
    c.send({ type: "message", text: "x".repeat(4096) });
    expect(await c.closed).toBe(1009);
    const d = await h.connect();
    expect((await d.next()).type).toBe("welcome");
    await d.close();
  });

  it("leaves other upgrade paths alone for other handlers", async () => {
    h = await startWsHarness();
    const port = (h.server.address() as AddressInfo).port;
    let seen = "";
    h.server.on("upgrade", (req, socket) => {
      if (req.url === "/other") {
        seen = req.url;
        socket.end("HTTP/1.1 418 I'm a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      }
    });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/other`);
    const status = await new Promise<number>((resolve) => {
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.once("error", () => resolve(-1));
    });
    expect(status).toBe(418);
    expect(seen).toBe("/other");
  });

  it("refuses an invalid upgrade on its path with HTTP 400", async () => {
    h = await startWsHarness();
    const port = (h.server.address() as AddressInfo).port;
    const answer = await rawUpgrade(port, [
      "GET /whisper HTTP/1.1",
      "Host: 127.0.0.1",
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: not-a-key",
      "Sec-WebSocket-Version: 13",
    ]);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it("refuses a disallowed origin with 403", async () => {
    h = await startWsHarness({ allowedOrigins: ["https://chat.example"] });
    expect((await h.connectRefused({ headers: { Origin: "https://evil.example" } })).status).toBe(403);
    const ok = await h.connect();
    expect((await ok.next()).type).toBe("welcome");
    await ok.close();
  });

  it("refuses repeated connection attempts with 429 and a Retry-After header", async () => {
    h = await startWsHarness({ connectRate: { capacity: 2, ratePerSec: 0.5 } });
    const a = await h.connect();
    const b = await h.connect();
    const res = await h.connectRefused();
    expect(res.status).toBe(429);
    expect(res.retryAfterSec).toBeGreaterThanOrEqual(1);
    await a.close();
    await b.close();
  });

  it("refuses guests with 401 when the server does not allow them", async () => {
    h = await startWsHarness({ allowGuests: false });
    expect((await h.connectRefused()).status).toBe(401);
  });

  it("terminates a peer that stops answering pings, and its partner is told it is away", async () => {
    h = await startWsHarness({}, { heartbeatIntervalMs: 100 });
    const a = await h.connect();
    const deaf = wrapClient(new WebSocket(h.url, { autoPong: false }));
    await expectFrame(a, "welcome");
    await expectFrame(deaf, "welcome");
    a.send({ type: "join", location: { lat: 10, lng: 10 }, rangeKm: 5 });
    await expectFrame(a, "waiting");
    deaf.send({ type: "join", location: { lat: 10, lng: 10 }, rangeKm: 5 });
    await expectFrame(a, "matched");
    // A dead peer counts as dropped: its partner is told it is away (it may still resume).
    await expectFrame(a, "partner_away", 3000);
    expect(await deaf.closed).toBe(1006);
    await a.close();
  });

  it("closes a client that does not read once its send buffer passes the bound", async () => {
    h = await startWsHarness({
      maxBufferedBytes: 64 * 1024,
      messageRate: { capacity: 1e6, ratePerSec: 1e6 },
      userMessageRate: { capacity: 1e6, ratePerSec: 1e6 },
    });
    const a = await h.connect();
    const slow = await h.connect();
    await expectFrame(a, "welcome");
    await expectFrame(slow, "welcome");
    a.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await expectFrame(a, "waiting");
    slow.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await expectFrame(slow, "waiting");
    await expectFrame(a, "matched");
    await expectFrame(slow, "matched");
    // Stop reading: the kernel buffers fill, then the server's own buffer grows.
    (slow as unknown as { ws: WebSocket & { _socket: { pause(): void } } }).ws._socket.pause();
    const text = "y".repeat(900);
    let left = false;
    for (let i = 0; i < 20_000 && !left; i++) {
      a.send({ type: "message", text });
      if (i % 200 === 199) {
        await new Promise((r) => setTimeout(r, 5));
        left = a.pending().some((f) => f.type === "partner_left" && f.reason === "disconnected");
        if (!left) (a.pending() as unknown[]).length = 0; // acks: keep the test's own queue small
      }
    }
    expect(left).toBe(true);
    const stats = await h.hub.stats();
    expect(stats.sessions).toBe(1);
    await a.close();
  });

  it("keeps serving plain HTTP routes of the host server", async () => {
    h = await startWsHarness();
    const port = (h.server.address() as AddressInfo).port;
    const status = await new Promise<number>((resolve) => {
      request({ port, host: "127.0.0.1", path: "/anything" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).end();
    });
    expect(status).toBe(404);
  });
});

describe("adapter-ws behind a proxy", () => {
  it("keys the connection limiter by X-Forwarded-For only from trusted proxies", async () => {
    h = await startWsHarness({
      connectRate: { capacity: 1, ratePerSec: 0.01 },
      trustedProxies: ["127.0.0.1"],
    });
    const open = async (xff: string) => {
      const ws = new WebSocket(h?.url ?? "", { headers: { "X-Forwarded-For": xff } });
      return new Promise<number>((resolve) => {
        ws.once("open", () => {
          ws.close();
          resolve(101);
        });
        ws.once("unexpected-response", (_req, res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        ws.once("error", () => undefined);
      });
    };
    expect(await open("198.51.100.1")).toBe(101);
    expect(await open("198.51.100.2")).toBe(101); // another client behind the same proxy
    expect(await open("198.51.100.1")).toBe(429);
  });

  it("ignores X-Forwarded-For when no proxy is trusted (the default)", async () => {
    h = await startWsHarness({ connectRate: { capacity: 1, ratePerSec: 0.01 } });
    const first = await h.connect();
    expect((await h.connectRefused({ headers: { "X-Forwarded-For": "198.51.100.3" } })).status).toBe(429);
    await first.close();
  });
});

describe("adapter-ws: limits that protect the service", () => {
  async function pairOn(harness: WsHarness) {
    const a = await harness.connect();
    const b = await harness.connect();
    await expectFrame(a, "welcome");
    await expectFrame(b, "welcome");
    a.send({ type: "join", location: { lat: 5, lng: 5 }, rangeKm: 5 });
    await expectFrame(a, "waiting");
    b.send({ type: "join", location: { lat: 5, lng: 5 }, rangeKm: 5 });
    await expectFrame(b, "waiting");
    await expectFrame(a, "matched");
    await expectFrame(b, "matched");
    return { a, b };
  }

  it("a session that keeps flooding after rate_limited is closed with 1008; its partner is told", async () => {
    h = await startWsHarness({ messageRate: { capacity: 2, ratePerSec: 0.5 }, floodCloseAfter: 5 });
    const { a, b } = await pairOn(h);
    for (let i = 0; i < 20; i++) a.send({ type: "message", text: `spam ${i}` });
    expect(await a.closed).toBe(1008);
    expect((await expectFrame(b, "message")).text).toBe("spam 0");
    expect((await expectFrame(b, "message")).text).toBe("spam 1");
    expect((await expectFrame(b, "partner_left")).reason).toBe("disconnected");
    const c = await h.connect();
    expect((await c.next()).type).toBe("welcome"); // the server is fine
    await c.close();
  });

  it("typing frames over the message rate are dropped quietly (no error frame)", async () => {
    h = await startWsHarness({ messageRate: { capacity: 2, ratePerSec: 0.1 } });
    const { a, b } = await pairOn(h);
    a.send({ type: "message", text: "one" });
    a.send({ type: "message", text: "two" });
    await expectFrame(a, "ack");
    await expectFrame(a, "ack");
    a.send({ type: "typing", active: true });
    a.send({ type: "ping", id: "sync" });
    // No error for the typing frame: the next frame a sees is the pong.
    expect(await a.next()).toEqual({ type: "pong", id: "sync" });
    await expectFrame(b, "message");
    await expectFrame(b, "message");
    b.send({ type: "ping", id: "b" });
    expect(await b.next()).toEqual({ type: "pong", id: "b" }); // the typing never reached b
  });

  it("join and next churn per user is limited with rate_limited and retryAfterMs", async () => {
    h = await startWsHarness({ churnRate: { capacity: 3, ratePerSec: 0.5 } });
    const a = await h.connect();
    await expectFrame(a, "welcome");
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) {
      a.send({ type: "join", id: `j${i}`, location: { lat: 7, lng: 7 }, rangeKm: 1 + i });
      const f = await a.next();
      answers.push(f.type === "error" ? `${f.code}:${(f.retryAfterMs ?? 0) > 0}` : f.type);
    }
    expect(answers).toEqual(["waiting", "waiting", "waiting", "rate_limited:true", "rate_limited:true"]);
    await a.close();
  });

  it("refuses connections past the session cap with 503 and Retry-After", async () => {
    h = await startWsHarness({ maxSessions: 2 });
    const a = await h.connect();
    const b = await h.connect();
    await expectFrame(a, "welcome");
    await expectFrame(b, "welcome");
    const res = await h.connectRefused();
    expect(res.status).toBe(503);
    expect(res.retryAfterSec).toBeGreaterThanOrEqual(1);
    await a.close();
    const c = await h.connect(); // room again once a session ended
    expect((await c.next()).type).toBe("welcome");
    await b.close();
    await c.close();
  });
});
