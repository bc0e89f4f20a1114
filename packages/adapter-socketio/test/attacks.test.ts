// Attacks on the Socket.IO transport, each reproduced over real sockets: what a hostile client
// did to the server, and the bound or behaviour that now holds. The twin of adapter-ws's
// attacks.test.ts; keep them together, so that a regression shows up by name.
import { Agent, get as httpGet } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { ErrorFrame, Handshake, Identity, ServerFrame, Store, WhisperOptions } from "@whisperchat/core";
import { WhisperError } from "@whisperchat/core";
import { expectFrame } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { createRedisStore } from "@whisperchat/store-redis";
import { io as connectSocket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import {
  answerOf,
  eventually,
  fdCount,
  hasProcFd,
  rawSocket as kitRawSocket,
  sleep,
  upgradeLines,
} from "../../adapter-ws/test/attack-kit.js";
import { pair, resumeAttacks, welcome } from "../../adapter-ws/test/resume-attacks.js";
import { deleteUnder, connect as redisClient, redisUp, testPrefix } from "../../store-redis/test/redis.js";
import { attachSocketIo } from "../src/index.js";
import { type SioHarness, type SioTestClient, startSocketIoHarness } from "./harness.js";

const harnesses: SioHarness[] = [];
const cleanups: (() => unknown)[] = [];
/** Raw TCP clients of a test: destroyed first. */
const rawSockets = new Set<Socket>();
/** The server side of every connection of a test's harnesses. */
const serverSockets = new Set<Socket>();
afterEach(async () => {
  for (const s of rawSockets) s.destroy();
  rawSockets.clear();
  for (const h of harnesses.splice(0)) {
    const closing = h.close();
    // An upgrade nobody answered keeps its socket (the regression the first tests catch), and
    // with it the HTTP server open: cut such sockets so that the failure stays in its test.
    if ((await within(closing, 3000)) === "timeout") for (const s of serverSockets) s.destroy();
    await closing;
  }
  serverSockets.clear();
  for (const c of cleanups.splice(0)) await c();
  resumesSeen.clear();
});

async function start(...args: Parameters<typeof startSocketIoHarness>): Promise<SioHarness> {
  const h = await startSocketIoHarness(...args);
  harnesses.push(h);
  h.server.on("connection", (s: Socket) => {
    serverSockets.add(s);
    s.on("close", () => serverSockets.delete(s));
  });
  return h;
}

const portOf = (h: SioHarness) => (h.server.address() as AddressInfo).port;
const HERE = { lat: 52.52, lng: 13.405 };

/** Resolves `promise`'s value, or `"timeout"` if it has not settled after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  return Promise.race([promise, sleep(ms).then(() => "timeout" as const)]);
}

/** A raw TCP connection to the harness (destroyed after the test). */
function rawSocket(port: number, lines: string[]): Socket {
  const socket = kitRawSocket(port, lines);
  rawSockets.add(socket);
  return socket;
}

/** Sends a raw HTTP request; resolves what came back once the server closed or `waitMs` passed. */
function rawRequest(port: number, lines: string[], waitMs = 3000): Promise<{ data: string; socket: Socket }> {
  return answerOf(rawSocket(port, lines), waitMs);
}

/** Sends a raw HTTP request; resolves the first bytes of the answer ("" if closed without one). */
function firstAnswer(port: number, lines: string[]): Promise<string> {
  return new Promise((resolve) => {
    const socket = rawSocket(port, lines);
    socket.once("data", (d) => resolve(d.toString()));
    socket.on("close", () => resolve(""));
  });
}

/** An Engine.IO handshake (the first polling request), as a plain HTTP GET on a fresh connection. */
function engineHandshake(port: number, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(
      { host: "127.0.0.1", port, path: "/socket.io/?EIO=4&transport=polling", agent },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
  });
}

/** Sends `n` Engine.IO handshakes at once from one address; counts what the engine answered. */
async function handshakeFlood(h: SioHarness, n: number) {
  const agent = new Agent({ keepAlive: false });
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: n }, () => engineHandshake(portOf(h), agent)));
  const elapsedSec = (Date.now() - started) / 1000;
  agent.destroy();
  const accepted = answers.filter((a) => a.status === 200 && a.body.includes('"sid"')).length;
  const refused = answers.filter((a) => a.status === 403);
  return { accepted, refused, elapsedSec };
}

/** Resume tokens whose admission began: the `authenticate` hook of {@link tokenAuth} saw them. */
const resumesSeen = new Set<string>();

/** Token scheme of these tests: `u:<userId>[:<expiresAt>]`; no token is a guest. */
function tokenAuth(delayMs = 0): WhisperOptions["authenticate"] {
  return async (handshake: Handshake, token: string | undefined): Promise<Identity | null> => {
    const resume = handshake.params.resume;
    if (typeof resume === "string") resumesSeen.add(resume);
    if (delayMs > 0 && resume !== undefined) await sleep(delayMs);
    if (token === undefined) return null;
    const [kind, userId, exp] = token.split(":");
    if (kind !== "u" || userId === undefined) throw new WhisperError("unauthorized", "bad token");
    const identity: Identity = { userId, name: userId, roles: [] };
    if (exp !== undefined) identity.expiresAt = Number(exp);
    return identity;
  };
}

type Params = { token?: string; resume?: string };

/**
 * Starts a Socket.IO connection resuming with `resumeToken` and closes it once the (slow)
 * admission has begun, before it answers.
 */
async function resumeCutMidHandshake(h: SioHarness, resumeToken: string, token?: string): Promise<void> {
  const auth: Params = { resume: resumeToken };
  if (token !== undefined) auth.token = token;
  const socket = connectSocket(h.origin, {
    auth,
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
  });
  socket.on("connect_error", () => undefined);
  await sleep(20);
  const began = await eventually(() => resumesSeen.has(resumeToken), 2000);
  socket.close();
  resumesSeen.delete(resumeToken);
  expect(began, "the resume's admission began").toBe(true);
  expect(socket.connected, "the resume was still being admitted").toBe(false);
}

type StoreKind = "memory" | "redis";
const storeKinds: StoreKind[] = redisUp ? ["memory", "redis"] : ["memory"];

async function makeStore(kind: StoreKind): Promise<Store> {
  if (kind === "memory") {
    const store = createMemoryStore();
    cleanups.push(() => store.close());
    return store;
  }
  const client = redisClient();
  const keyPrefix = testPrefix();
  const store = createRedisStore({ client, keyPrefix });
  cleanups.push(async () => {
    await deleteUnder(client, keyPrefix);
    client.disconnect();
  });
  return store;
}

describe("attack: upgrade requests nobody answers (fd exhaustion)", () => {
  it.skipIf(!hasProcFd)(
    "with refuseOtherUpgrades, every upgrade on another path gets 404 and the fd count returns to its baseline",
    async () => {
      const h = await start(
        {},
        { mount: (hub, server) => attachSocketIo(hub, { server, refuseOtherUpgrades: true }) },
      );
      const before = fdCount();
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) => rawRequest(portOf(h), upgradeLines(`/x${i}`))),
      );
      for (const { data, socket } of answers) {
        expect(data).toMatch(/^HTTP\/1\.1 404 /);
        socket.destroy();
      }
      expect(await eventually(() => fdCount() <= before + 5)).toBe(true);
      // Socket.IO itself still works.
      const c = await h.connect();
      await welcome(c);
    },
  );

  it.skipIf(!hasProcFd)(
    "by default, an upgrade on another path that no handler answers is closed after the timeout",
    async () => {
      const h = await start(
        {},
        { mount: (hub, server) => attachSocketIo(hub, { server, unclaimedUpgradeTimeoutMs: 200 }) },
      );
      const before = fdCount();
      const sockets: Socket[] = [];
      for (let i = 0; i < 200; i++) {
        const s = rawSocket(portOf(h), upgradeLines("/x"));
        s.on("data", () => undefined);
        sockets.push(s);
      }
      // The clients never leave: the server must close its side by itself.
      const closed = await eventually(() => sockets.every((s) => s.destroyed || s.readableEnded), 5000);
      expect(closed).toBe(true);
      for (const s of sockets) s.destroy();
      expect(await eventually(() => fdCount() <= before + 5)).toBe(true);
      const c = await h.connect();
      await welcome(c);
    },
  );

  it("a bad URL on an upgrade is refused, not left open", async () => {
    const h = await start(
      {},
      { mount: (hub, server) => attachSocketIo(hub, { server, refuseOtherUpgrades: true }) },
    );
    const { data } = await rawRequest(portOf(h), upgradeLines("//"), 3000);
    expect(data).toMatch(/^HTTP\/1\.1 404 /);
  });
});

describe("attack: Engine.IO handshake floods", () => {
  const connectRate = { capacity: 5, ratePerSec: 1 };

  it("handshakes from one address are refused (403) past twice the connectRate; the engine keeps no state for them", async () => {
    const h = await start({ connectRate });
    const { accepted, refused, elapsedSec } = await handshakeFlood(h, 200);
    const bound = 2 * connectRate.capacity + Math.ceil(2 * connectRate.ratePerSec * elapsedSec) + 1;
    expect(accepted + refused.length).toBe(200);
    expect(accepted).toBeGreaterThanOrEqual(2 * connectRate.capacity);
    expect(accepted).toBeLessThanOrEqual(bound);
    expect(refused[0]?.body).toMatch(/too many connection attempts/);
    expect(h.adapter.io.engine.clientsCount).toBeLessThanOrEqual(accepted);
    expect(h.adapter.io.engine.clientsCount).toBeLessThanOrEqual(bound);
  });

  it("WebSocket-first handshakes (no polling) pass the same limiter; engine.io answers them 400", async () => {
    const h = await start({ connectRate });
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, () =>
        firstAnswer(portOf(h), upgradeLines("/socket.io/?EIO=4&transport=websocket")),
      ),
    );
    const elapsedSec = (Date.now() - started) / 1000;
    const bound = 2 * connectRate.capacity + Math.ceil(2 * connectRate.ratePerSec * elapsedSec) + 1;
    const accepted = answers.filter((a) => a.startsWith("HTTP/1.1 101 ")).length;
    // engine.io refuses an upgrade whose allowRequest failed with 400 (403 is for polling).
    const refused = answers.filter((a) => a.startsWith("HTTP/1.1 400 "));
    expect(accepted + refused.length).toBe(200);
    expect(accepted).toBeGreaterThanOrEqual(2 * connectRate.capacity);
    expect(accepted).toBeLessThanOrEqual(bound);
    expect(refused[0]).toMatch(/too many connection attempts/);
    expect(h.adapter.io.engine.clientsCount).toBeLessThanOrEqual(accepted);
  });

  it("with limitHandshakes: false, the engine accepts them all (the bound above is the limiter's)", async () => {
    const h = await start(
      { connectRate },
      { mount: (hub, server) => attachSocketIo(hub, { server, limitHandshakes: false }) },
    );
    const { accepted } = await handshakeFlood(h, 200);
    expect(accepted).toBe(200);
    expect(h.adapter.io.engine.clientsCount).toBe(200);
  });
});

describe.each(storeKinds)("attack: resume handshakes (%s store)", (kind) => {
  resumeAttacks({
    start: (hubOptions) => start(hubOptions),
    options: async () => ({ store: await makeStore(kind), authenticate: tokenAuth(150) }),
    cutMidHandshake: (h, resumeToken) => resumeCutMidHandshake(h, resumeToken),
    stillOpen: (client) => {
      const c = client as SioTestClient;
      expect(c.socket.connected).toBe(true);
      expect(c.closeEvent()).toBeUndefined();
    },
  });
});

describe.skipIf(!redisUp)("attack: keeping a session past its token's expiry (Redis, two nodes)", () => {
  it("a resume on another node keeps the 4401 at the original expiry, even with a token without one", async () => {
    const store = await makeStore("redis");
    const options = { store, authenticate: tokenAuth() };
    const n1 = await start(options);
    const n2 = await start(options);
    const exp = Date.now() + 1500;
    const a = await n1.connect({ token: `u:alice:${exp}` });
    const aw = await welcome(a);
    a.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "waiting");
    await a.drop();
    const back = await n2.connect({ token: "u:alice", resume: aw.resumeToken });
    expect((await welcome(back)).resumed).toBe(true);
    expect(await within(back.closed, 5000)).toBe(4401);
    expect(back.closeEvent()?.code).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(exp - 50);
  });
});

describe("attack: floods of cheap events", () => {
  it("typing is limited: a flood reaches the partner as a handful of events", async () => {
    const typingRate = { capacity: 6, ratePerSec: 2 };
    const h = await start({ typingRate });
    const { a, b } = await pair(h);
    const started = Date.now();
    for (let i = 0; i < 5000; i++) a.send({ type: "typing", active: i % 2 === 0 });
    a.send({ type: "ping", id: "done" });
    // The flood also passes the request bucket; the ping may be refused, but is answered.
    for (;;) if (((await a.next(10_000)) as { id?: string }).id === "done") break;
    await sleep(200);
    const elapsedSec = (Date.now() - started) / 1000;
    const typing = b.pending().filter((f) => f.type === "typing").length;
    expect(typing).toBeGreaterThan(0);
    expect(typing).toBeLessThanOrEqual(
      typingRate.capacity + Math.ceil(typingRate.ratePerSec * elapsedSec) + 1,
    );
  });

  it("leave floods are refused past the request bucket and end in a 1008 close; an idle leave writes nothing", async () => {
    const h = await start({ requestRate: { capacity: 10, ratePerSec: 5 }, floodCloseAfter: 20 });
    const calls: string[] = [];
    h.hub.observeStore((operation) => calls.push(operation));
    const a = await h.connect();
    await welcome(a);
    for (let i = 0; i < 500; i++) a.send({ type: "leave", id: `l${i}` });
    expect(await within(a.closed, 5000)).toBe(1008);
    expect(a.closeEvent()?.code).toBe(1008);
    expect(
      calls.filter((c) => !c.startsWith("limiter") && !c.startsWith("nodes")),
      calls.join(),
    ).toEqual([]);
  });

  it("auth floods: the token check runs a few times, then rate_limited", async () => {
    let checks = 0;
    const authRate = { capacity: 3, ratePerSec: 0.2 };
    const h = await start({
      authRate,
      authenticate: tokenAuth(),
      reauthenticate: (token, current) => {
        checks++;
        if (token.startsWith("u:")) return { ...current };
        throw new WhisperError("unauthorized", "bad token");
      },
    });
    const a = await h.connect({ token: "u:alice" });
    await welcome(a);
    const big = `x${"y".repeat(8000)}`;
    for (let i = 0; i < 15; i++) a.send({ type: "auth", token: big, id: `a${i}` });
    const answers: ErrorFrame[] = [];
    for (let i = 0; i < 15; i++) answers.push(await expectFrame(a, "error"));
    expect(checks).toBe(authRate.capacity);
    const limited = answers.slice(authRate.capacity);
    expect(limited.every((f) => f.code === "rate_limited" && f.retryAfterMs !== undefined)).toBe(true);
  });

  it("the in-flight refusal carries the request's id (events without ack callbacks)", async () => {
    const h = await start(
      { maxPendingRequests: 2, authorize: () => sleep(100).then(() => true) },
      { mode: { acks: false } },
    );
    const a = await h.connect();
    await welcome(a);
    for (let i = 0; i < 5; i++) a.send({ type: "ping", id: `p${i}` });
    const frames: ServerFrame[] = [];
    for (let i = 0; i < 5; i++) frames.push(await a.next());
    const refused = frames.filter((f) => f.type === "error");
    expect(refused.length).toBe(3);
    expect(refused.map((f) => f.id).sort()).toEqual(["p2", "p3", "p4"]);
  });

  it("block passes the churn bucket like next", async () => {
    const h = await start({ churnRate: { capacity: 3, ratePerSec: 0.01 } });
    const { a } = await pair(h); // a's join took one
    a.send({ type: "block", id: "b1" });
    await expectFrame(a, "waiting");
    const b2 = await h.connect();
    await welcome(b2);
    b2.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "matched");
    a.send({ type: "block", id: "b2" });
    await expectFrame(a, "waiting");
    const b3 = await h.connect();
    await welcome(b3);
    b3.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "matched");
    a.send({ type: "block", id: "b3" });
    const refused = await expectFrame(a, "error");
    expect(refused.code).toBe("rate_limited");
    expect(refused.id).toBe("b3");
  });
});

describe("attack: oversized credentials", () => {
  it("a bearer token in the Authorization header is held to the 8192-character limit", async () => {
    const h = await start({ authenticate: tokenAuth() });
    const refused = await h.connectRefused({
      headers: { Authorization: `Bearer u:${"a".repeat(9000)}` },
    });
    expect(refused.status).toBe(400);
  });
});

describe("attack: display names that hide or reorder text", () => {
  it.each([
    ["a zero-width space", "\u200B"],
    ["a right-to-left override", "\u202Eevil"],
  ])("a guest join with %s as its name is answered bad_request", async (_what, name) => {
    const h = await start();
    const a = await h.connect();
    await welcome(a);
    a.send({ type: "join", location: HERE, rangeKm: 5, name, id: "j1" });
    const refused = await expectFrame(a, "error");
    expect(refused.code).toBe("bad_request");
    expect(refused.id).toBe("j1");
    expect(await h.hub.store.pool.size()).toBe(0);
  });

  it("an ordinary accented name is accepted", async () => {
    const h = await start();
    const a = await h.connect();
    await welcome(a);
    a.send({ type: "join", location: HERE, rangeKm: 5, name: "José" });
    await expectFrame(a, "waiting");
  });
});
