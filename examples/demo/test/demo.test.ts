import { spawn } from "node:child_process";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { expectFrame } from "@whisperchat/core/testing";
import { io as ioClient } from "socket.io-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { wrapClient } from "../../../packages/adapter-ws/test/harness.js";
import { pair } from "../../../packages/adapter-ws/test/resume-attacks.js";
import { ConfigError, HTTP_TIMEOUT_DEFAULTS, readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";

let demo: Demo | undefined;
afterEach(async () => {
  await demo?.close();
  demo = undefined;
});

describe("demo config", () => {
  it("has defaults that work with no settings", () => {
    expect(readConfig({})).toMatchObject({
      port: 3000,
      host: "127.0.0.1",
      store: "memory",
      auth: "guest",
      resumeGraceMs: 30000,
      msgPerSec: 5,
      msgBurst: 10,
      nextCooldownMs: 10_000,
      connectPerSec: 5,
      connectBurst: 20,
      keyPrefix: "whisper:",
      httpHeadersTimeoutMs: 10_000,
      httpRequestTimeoutMs: 30_000,
      httpKeepAliveTimeoutMs: 5_000,
    });
    expect(HTTP_TIMEOUT_DEFAULTS).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
    });
  });
  it("rejects bad values with a message naming the setting", () => {
    expect(() => readConfig({ PORT: "http" })).toThrow(ConfigError);
    expect(() => readConfig({ WHISPER_STORE: "mongo" })).toThrow(/WHISPER_STORE/);
    expect(() => readConfig({ WHISPER_MSG_PER_SEC: "-1" })).toThrow(/WHISPER_MSG_PER_SEC/);
    expect(() => readConfig({ WHISPER_NEXT_COOLDOWN_MS: "1.5" })).toThrow(/WHISPER_NEXT_COOLDOWN_MS/);
    expect(readConfig({ WHISPER_NEXT_COOLDOWN_MS: "0" }).nextCooldownMs).toBe(0);
    expect(() => readConfig({ WHISPER_HTTP_REQUEST_TIMEOUT_MS: "0" })).toThrow(
      /WHISPER_HTTP_REQUEST_TIMEOUT_MS/,
    );
    expect(() =>
      readConfig({ WHISPER_HTTP_HEADERS_TIMEOUT_MS: "2000", WHISPER_HTTP_REQUEST_TIMEOUT_MS: "1000" }),
    ).toThrow(/must not exceed/);
  });
});

async function post(
  url: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown>, headers: r.headers };
}

/** `post`, from a chosen local address (any of 127.0.0.0/8 reaches the demo on 127.0.0.1). */
function postFrom(
  localAddress: string,
  url: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown>; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", localAddress, headers: { "Content-Type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text), retryAfter });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

describe("demo accounts and admin routes", () => {
  it("register: 201, then 409 for the same name in another case, 400 for bad input", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    const created = await post(`${demo.url}/auth/register`, { name: "Alice", password: "correct horse" });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ userId: expect.any(String), name: "Alice" });
    expect(
      (await post(`${demo.url}/auth/register`, { name: " alice ", password: "another one" })).status,
    ).toBe(409);
    expect((await post(`${demo.url}/auth/register`, { name: "Al", password: "short" })).status).toBe(400);
    expect((await post(`${demo.url}/auth/register`, { name: 42, password: null })).status).toBe(400);
    const notJson = await fetch(`${demo.url}/auth/register`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{nope",
    });
    expect(notJson.status).toBe(400);
  });

  it("login: 200 with a token the WebSocket accepts; 401 alike for a wrong password and an unknown name; 429 with Retry-After", async () => {
    demo = await startDemo(readConfig({ PORT: "0", WHISPER_AUTH: "required" }), () => undefined);
    await post(`${demo.url}/auth/register`, { name: "Bob", password: "hunter2hunter2" });
    const ok = await post(`${demo.url}/auth/login`, { name: "bob", password: "hunter2hunter2" });
    expect(ok.status).toBe(200);
    expect(ok.json.expiresAt).toBeGreaterThan(Date.now());
    const wrong = await post(`${demo.url}/auth/login`, { name: "Bob", password: "not it at all" });
    const unknown = await post(`${demo.url}/auth/login`, { name: "Nobody", password: "not it at all" });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.json).toEqual(wrong.json);
    // WHISPER_AUTH=required: no token, no socket; the login token opens one as Bob.
    const refused = new WebSocket(`${demo.url.replace("http", "ws")}/whisper`);
    const status = await new Promise<number>((resolve) => {
      refused.once("unexpected-response", (_q, r) => resolve(r.statusCode ?? 0));
      refused.once("error", () => undefined);
    });
    expect(status).toBe(401);
    const ws = wrapClient(new WebSocket(`${demo.url.replace("http", "ws")}/whisper?token=${ok.json.token}`));
    const welcome = await expectFrame(ws, "welcome");
    expect(welcome.user).toEqual({ userId: ok.json.userId, name: "Bob" });
    await ws.close();
    let limited: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 10 && limited === undefined; i++) {
      const r = await post(`${demo.url}/auth/login`, { name: "Bob", password: "guessing again" });
      if (r.status === 429) limited = r;
      else expect(r.status).toBe(401);
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("login: a stranger failing from other addresses does not lock the owner out", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    const login = `${demo.url}/auth/login`;
    const owner = { name: "Olga", password: "owner's own passphrase" };
    expect((await postFrom("127.0.0.1", `${demo.url}/auth/register`, owner)).status).toBe(201);
    // The stranger guesses from 127.0.0.2, then from two more addresses, until refused each time.
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof postFrom>> | undefined;
    for (const stranger of ["127.0.0.2", "127.0.0.3", "127.0.0.4"]) {
      for (let i = 0; i < 7; i++) {
        const r = await postFrom(stranger, login, { name: "olga", password: `guess ${stranger} ${i}` });
        statuses.push(r.status);
        if (r.status === 429) limited = r;
      }
    }
    expect(new Set(statuses)).toEqual(new Set([401, 429]));
    expect(limited?.json.code).toBe("rate_limited");
    expect(Number(limited?.retryAfter)).toBeGreaterThanOrEqual(1);
    // The stranger stays refused, with a Retry-After.
    const again = await postFrom("127.0.0.2", login, { name: "olga", password: "one more guess" });
    expect(again.status).toBe(429);
    expect(Number(again.retryAfter)).toBeGreaterThanOrEqual(1);
    // The owner, from 127.0.0.1, with the right password, gets a token.
    const ok = await postFrom("127.0.0.1", login, owner);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ name: "Olga", token: expect.any(String) });
  });

  it("/admin/stats: 401 without a valid token, 403 without the admin role, 200 with counts", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    const stats = (token?: string) =>
      fetch(`${demo?.url}/admin/stats`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    expect((await stats()).status).toBe(401);
    expect((await stats("garbage")).status).toBe(401);
    const user = await demo.jwt.sign({ userId: "u1", name: "User", roles: [] });
    expect((await stats(user.token)).status).toBe(403);
    const admin = await demo.jwt.sign({ userId: "a1", name: "Admin", roles: ["admin"] });
    const ws = wrapClient(new WebSocket(`${demo.url.replace("http", "ws")}/whisper`));
    await expectFrame(ws, "welcome");
    const ok = await stats(admin.token);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ sessions: 1, waiting: 0, rooms: 0, messages: 0 });
    await ws.close();
  });

  it("/metrics serves the Prometheus text format", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    const r = await fetch(`${demo.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/text\/plain/);
    expect(await r.text()).toMatch(/# TYPE whisperchat_sessions gauge/);
  });

  it("refuses a JWT_SECRET too short for HS256", async () => {
    await expect(startDemo(readConfig({ PORT: "0", JWT_SECRET: "short" }))).rejects.toThrow(/JWT_SECRET/);
  });
});

describe("demo server", () => {
  it("serves the page, its assets and /healthz, and 404 elsewhere", async () => {
    demo = await startDemo(readConfig({ PORT: "0", WHISPER_NEXT_COOLDOWN_MS: "4500" }), () => undefined);
    const page = await fetch(`${demo.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
    const html = await page.text();
    expect(html).toMatch(/<script type="module" src="\/app.js"><\/script>/);
    // The page is told the setting it explains to users.
    expect(html).toContain('<meta name="whisper-next-cooldown-ms" content="4500" />');
    for (const [path, type] of [
      ["/app.js", /javascript/],
      ["/style.css", /text\/css/],
    ] as const) {
      const r = await fetch(demo.url + path);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toMatch(type);
    }
    const health = await fetch(`${demo.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    expect((await fetch(`${demo.url}/../package.json`)).status).toBe(404);
    expect((await fetch(`${demo.url}/nope`)).status).toBe(404);
  });

  it("serves Socket.IO at /socket.io/: a Socket.IO client and a ws client are matched and chat", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    const sio = ioClient(demo.url, { transports: ["websocket"], reconnection: false });
    const sioFrames: { type: string; [k: string]: unknown }[] = [];
    for (const type of ["welcome", "waiting", "matched", "message"]) {
      sio.on(type, (payload: Record<string, unknown>) => sioFrames.push({ type, ...payload }));
    }
    const ws = wrapClient(new WebSocket(`${demo.url.replace("http", "ws")}/whisper`));
    await expectFrame(ws, "welcome");
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(check()).toBe(true);
    };
    await until(() => sioFrames.some((f) => f.type === "welcome"));
    sio.emit("join", { location: { lat: 40.4168, lng: -3.7038 }, rangeKm: 5, name: "Sol" });
    await until(() => sioFrames.some((f) => f.type === "waiting"));
    ws.send({ type: "join", location: { lat: 40.42, lng: -3.7 }, rangeKm: 5, name: "Wes" });
    await expectFrame(ws, "waiting");
    expect((await expectFrame(ws, "matched")).partner.name).toBe("Sol");
    ws.send({ type: "message", id: "1", text: "hola from ws" });
    await expectFrame(ws, "ack");
    await until(() => sioFrames.some((f) => f.type === "message" && f.text === "hola from ws"));
    const ack = await sio.emitWithAck("message", { text: "hola from socket.io" });
    expect(ack).toMatchObject({ ok: true, messageId: expect.any(String) });
    expect((await expectFrame(ws, "message")).text).toBe("hola from socket.io");
    sio.disconnect();
    await ws.close();
  });

  it("applies the message rate settings", async () => {
    demo = await startDemo(
      readConfig({ PORT: "0", WHISPER_MSG_PER_SEC: "1", WHISPER_MSG_BURST: "2" }),
      () => undefined,
    );
    const ws = wrapClient(new WebSocket(`${demo.url.replace("http", "ws")}/whisper`));
    const welcome = await expectFrame(ws, "welcome");
    expect(welcome.limits.messagesPerSec).toBe(1);
    expect(welcome.limits.messageBurst).toBe(2);
    await ws.close();
  });

  /** Two ws clients of the demo, matched with each other. */
  const pairOn = (d: Demo) =>
    pair({ connect: async () => wrapClient(new WebSocket(`${d.url.replace("http", "ws")}/whisper`)) });

  /** Sends `count` messages at once; resolves how many were acknowledged and how many refused. */
  async function burst(client: ReturnType<typeof wrapClient>, count: number) {
    for (let i = 0; i < count; i++) client.send({ type: "message", id: `m${i}`, text: `message ${i}` });
    const answers = { ack: 0, rate_limited: 0 };
    for (let i = 0; i < count; i++) {
      const frame = await client.next();
      if (frame.type === "ack") answers.ack++;
      else if (frame.type === "error" && frame.code === "rate_limited") answers.rate_limited++;
      else throw new Error(`unexpected answer ${JSON.stringify(frame)}`);
    }
    return answers;
  }

  it("raising the message settings raises every limit a message passes, over a real socket", async () => {
    // 60 messages at once: more than the hub's own per-user (20) and per-request (40) buckets.
    demo = await startDemo(
      readConfig({ PORT: "0", WHISPER_MSG_PER_SEC: "1000", WHISPER_MSG_BURST: "100" }),
      () => undefined,
    );
    const { a, b } = await pairOn(demo);
    expect(await burst(a, 60)).toEqual({ ack: 60, rate_limited: 0 });
    for (let i = 0; i < 60; i++) expect((await expectFrame(b, "message")).text).toBe(`message ${i}`);
    await a.close();
    await b.close();
  });

  it("the session's message settings are the limit that binds", async () => {
    demo = await startDemo(
      readConfig({ PORT: "0", WHISPER_MSG_PER_SEC: "0.5", WHISPER_MSG_BURST: "3" }),
      () => undefined,
    );
    const { a, b } = await pairOn(demo);
    expect(await burst(a, 5)).toEqual({ ack: 3, rate_limited: 2 });
    await a.close();
    await b.close();
  });

  it("npm start runs the built demo, which drains on SIGTERM: closes WebSockets with 1012 and exits 0", {
    timeout: 150_000,
  }, async () => {
    // What `npm start` runs: it builds first whatever is not built or older than its sources.
    const start = fileURLToPath(new URL("../scripts/start.mjs", import.meta.url));
    const child = spawn(process.execPath, [start], {
      env: { ...process.env, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start: ${out}`)), 140_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
    });
    const ws = wrapClient(new WebSocket(`${url.replace("http", "ws")}/whisper`));
    await expectFrame(ws, "welcome");
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await ws.closed).toBe(1012);
    expect(await exited).toBe(0);
  });
});

/** Opens a raw TCP connection to the demo, collecting everything it answers until it closes. */
function rawConnection(url: string): { socket: Socket; received: () => string; closed: Promise<void> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let text = "";
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => {
    text += d;
  });
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, received: () => text, closed };
}

describe("demo HTTP hardening", () => {
  it("answers upgrades on paths nobody serves with 404 and closes them; both endpoints still upgrade", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    const upgrade = (path: string) =>
      [
        `GET ${path} HTTP/1.1`,
        "Host: localhost",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "",
        "",
      ].join("\r\n");
    for (const path of ["/x", "/whisperx", "/socket.io", "//"]) {
      const c = rawConnection(demo.url);
      c.socket.write(upgrade(path));
      await c.closed; // the server closes it: nothing is left open
      expect(c.received(), path).toMatch(/^HTTP\/1\.1 404 /);
    }
    const ws = wrapClient(new WebSocket(`${demo.url.replace("http", "ws")}/whisper`));
    expect((await expectFrame(ws, "welcome")).resumed).toBe(false);
    await ws.close();
    const sio = ioClient(demo.url, { transports: ["websocket"], forceNew: true, reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        sio.once("welcome", () => resolve());
        sio.once("connect_error", reject);
      });
    } finally {
      sio.close();
    }
  });

  it("answers request targets new URL cannot read (//, //x:y) with 400 JSON, logging nothing", async () => {
    const logged: string[] = [];
    demo = await startDemo(readConfig({ PORT: "0" }), (line) => logged.push(line));
    logged.length = 0; // the JWT_SECRET warning at start
    const consoleError = vi.spyOn(console, "error");
    const consoleWarn = vi.spyOn(console, "warn");
    try {
      for (const target of ["//", "//x:y", "//127.0.0.1/healthz"]) {
        const c = rawConnection(demo.url);
        c.socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
        await c.closed;
        const [head = "", body = ""] = c.received().split("\r\n\r\n");
        expect(head, target).toMatch(/^HTTP\/1\.1 400 /);
        expect(head).toMatch(/content-type: application\/json/i);
        // The body may come chunked: the JSON object is between the chunk sizes.
        expect(JSON.parse(/\{.*\}/s.exec(body)?.[0] ?? "")).toEqual({ error: "bad request target" });
      }
      expect(consoleError).not.toHaveBeenCalled();
      expect(consoleWarn).not.toHaveBeenCalled();
      expect(logged).toEqual([]);
      // The server is fine afterwards.
      expect((await fetch(`${demo.url}/healthz`)).status).toBe(200);
    } finally {
      consoleError.mockRestore();
      consoleWarn.mockRestore();
    }
  });

  it("sets headersTimeout, requestTimeout and keepAliveTimeout from the settings", async () => {
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    expect(demo.server.headersTimeout).toBe(10_000);
    expect(demo.server.requestTimeout).toBe(30_000);
    expect(demo.server.keepAliveTimeout).toBe(5_000);
  });

  it("cuts off a request body trickled at one byte at a time, well before Node's 300 s", async () => {
    demo = await startDemo(
      readConfig({
        PORT: "0",
        WHISPER_HTTP_HEADERS_TIMEOUT_MS: "500",
        WHISPER_HTTP_REQUEST_TIMEOUT_MS: "1000",
      }),
      () => undefined,
    );
    // A WebSocket outlives the request timeout: it is not a request in progress.
    const ws = wrapClient(new WebSocket(`${demo.url.replace("http", "ws")}/whisper`));
    await expectFrame(ws, "welcome");
    const consoleError = vi.spyOn(console, "error");
    const c = rawConnection(demo.url);
    let isClosed = false;
    void c.closed.then(() => {
      isClosed = true;
    });
    c.socket.write(
      "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    // One byte every 200 ms, for up to 40 bytes (8 s: eight times the request timeout).
    const body = `{"name":"trickle","password":"${"x".repeat(40)}"}`;
    let sent = 0;
    for (; sent < 40 && !isClosed; sent++) {
      if (!c.socket.destroyed) c.socket.write(`1\r\n${body[sent]}\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    try {
      expect(isClosed).toBe(true);
      expect(sent).toBeLessThan(40);
      expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(consoleError).not.toHaveBeenCalled();
    } finally {
      consoleError.mockRestore();
      c.socket.destroy();
    }
    ws.send({ type: "ping", id: "still-there" });
    await expectFrame(ws, "pong");
    await ws.close();
  });
});
