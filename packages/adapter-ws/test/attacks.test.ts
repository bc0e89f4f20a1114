// Attacks on the ws transport, each reproduced over real sockets: what a hostile client did to
// the server, and the bound or behaviour that now holds. Keep them together, so that a
// regression shows up by name.
import type { AddressInfo } from "node:net";
import { type Socket, connect as tcpConnect } from "node:net";
import type { ErrorFrame, Handshake, Identity, ServerFrame, Store, WhisperOptions } from "@whisperchat/core";
import { WhisperError } from "@whisperchat/core";
import { expectFrame } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { createRedisStore } from "@whisperchat/store-redis";
import { afterEach, describe, expect, it } from "vitest";
import { deleteUnder, connect as redisClient, redisUp, testPrefix } from "../../store-redis/test/redis.js";
import { answerOf, eventually, fdCount, hasProcFd, rawSocket, sleep, upgradeLines } from "./attack-kit.js";
import { startWsHarness, type WsHarness } from "./harness.js";
import { pair, resumeAttacks, welcome } from "./resume-attacks.js";

const harnesses: WsHarness[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
  for (const c of cleanups.splice(0)) await c();
});

async function start(...args: Parameters<typeof startWsHarness>): Promise<WsHarness> {
  const h = await startWsHarness(...args);
  harnesses.push(h);
  return h;
}

const portOf = (h: WsHarness) => (h.server.address() as AddressInfo).port;
const HERE = { lat: 52.52, lng: 13.405 };

/** Sends a raw HTTP request; resolves what came back once the server closed or `waitMs` passed. */
function rawRequest(port: number, lines: string[], waitMs = 3000): Promise<{ data: string; socket: Socket }> {
  return answerOf(rawSocket(port, lines), waitMs);
}

/** Token scheme of these tests: `u:<userId>[:<expiresAt>]`; no token is a guest. */
function tokenAuth(delayMs = 0): WhisperOptions["authenticate"] {
  return async (handshake: Handshake, token: string | undefined): Promise<Identity | null> => {
    if (delayMs > 0 && handshake.params.resume !== undefined) await sleep(delayMs);
    if (token === undefined) return null;
    const [kind, userId, exp] = token.split(":");
    if (kind !== "u" || userId === undefined) throw new WhisperError("unauthorized", "bad token");
    const identity: Identity = { userId, name: userId, roles: [] };
    if (exp !== undefined) identity.expiresAt = Number(exp);
    return identity;
  };
}

/** Starts a resume handshake and cuts the socket before the (slow) admission answers. */
async function resumeCutMidHandshake(h: WsHarness, resumeToken: string, token?: string): Promise<void> {
  const q = new URLSearchParams({ resume: resumeToken });
  if (token !== undefined) q.set("token", token);
  const socket = tcpConnect(portOf(h), "127.0.0.1", () => {
    socket.write(`${upgradeLines(`/whisper?${q}`).join("\r\n")}\r\n\r\n`);
    setTimeout(() => socket.destroy(), 20);
  });
  socket.on("error", () => undefined);
  await new Promise((resolve) => socket.on("close", resolve));
}

type StoreKind = "memory" | "redis";
const storeKinds: StoreKind[] = redisUp ? ["memory", "redis"] : ["memory"];

async function makeStore(kind: StoreKind): Promise<Store> {
  if (kind === "memory") return createMemoryStore();
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
      const h = await start({}, { refuseOtherUpgrades: true });
      const before = fdCount();
      const answers = await Promise.all(
        Array.from({ length: 300 }, (_, i) => rawRequest(portOf(h), upgradeLines(`/x${i}`))),
      );
      for (const { data, socket } of answers) {
        expect(data).toMatch(/^HTTP\/1\.1 404 /);
        socket.destroy();
      }
      expect(await eventually(() => fdCount() <= before + 5)).toBe(true);
      // The endpoint itself still works.
      const c = await h.connect();
      await welcome(c);
    },
  );

  it.skipIf(!hasProcFd)(
    "by default, an upgrade on another path that no handler answers is closed after the timeout",
    async () => {
      const h = await start({}, { unclaimedUpgradeTimeoutMs: 200 });
      const before = fdCount();
      const sockets: Socket[] = [];
      for (let i = 0; i < 200; i++) {
        const s = tcpConnect(portOf(h), "127.0.0.1", () =>
          s.write(`${upgradeLines("/x").join("\r\n")}\r\n\r\n`),
        );
        s.on("error", () => undefined);
        s.on("data", () => undefined);
        sockets.push(s);
      }
      // The clients never leave: the server must close its side by itself.
      const closed = await eventually(() => sockets.every((s) => s.destroyed || s.readableEnded), 5000);
      expect(closed).toBe(true);
      for (const s of sockets) s.destroy();
      expect(await eventually(() => fdCount() <= before + 5)).toBe(true);
    },
  );

  it("a handshake whose admission hangs is answered 503 and closed after handshakeTimeoutMs", async () => {
    const h = await start(
      { authenticate: () => new Promise<null>(() => undefined) },
      { handshakeTimeoutMs: 200 },
    );
    const { data } = await rawRequest(portOf(h), upgradeLines("/whisper"), 3000);
    expect(data).toMatch(/^HTTP\/1\.1 503 /);
    expect(data).toMatch(/Retry-After: 1/);
  });

  it("a bad URL on an upgrade is refused, not left open", async () => {
    const h = await start({}, { refuseOtherUpgrades: true });
    const { data } = await rawRequest(portOf(h), upgradeLines("//"), 3000);
    expect(data).toMatch(/^HTTP\/1\.1 404 /);
  });
});

describe.each(storeKinds)("attack: resume handshakes (%s store)", (kind) => {
  resumeAttacks({
    start: (hubOptions) => start(hubOptions),
    options: async () => ({ store: await makeStore(kind), authenticate: tokenAuth(150) }),
    cutMidHandshake: (h, resumeToken) => resumeCutMidHandshake(h, resumeToken),
  });
});

describe.skipIf(!redisUp)("attack: keeping a session past its token's expiry (Redis, two nodes)", () => {
  it("a resume on another node keeps the 4401 at the original expiry, even with a token without one", async () => {
    const store = await makeStore("redis");
    const options = { store, authenticate: tokenAuth() };
    const n1 = await startWsHarness(options, {}, { closeStore: false });
    const n2 = await startWsHarness(options, {}, { closeStore: false });
    harnesses.push(n1, n2);
    const exp = Date.now() + 1500;
    const a = await n1.connect({ token: `u:alice:${exp}` });
    const aw = await welcome(a);
    a.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "waiting");
    await a.drop();
    const back = await n2.connect({ token: "u:alice", resume: aw.resumeToken });
    expect((await welcome(back)).resumed).toBe(true);
    expect(await back.closed).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(exp - 50);
  });
});

describe("attack: floods of cheap frames", () => {
  it("typing is limited: a flood reaches the partner as a handful of frames", async () => {
    const h = await start({ typingRate: { capacity: 6, ratePerSec: 2 } });
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
    expect(typing).toBeLessThanOrEqual(6 + Math.ceil(2 * elapsedSec) + 1);
  });

  it("leave floods are refused past the request bucket and end in a 1008 close; an idle leave writes nothing", async () => {
    const h = await start({ requestRate: { capacity: 10, ratePerSec: 5 }, floodCloseAfter: 20 });
    const calls: string[] = [];
    h.hub.observeStore((operation) => calls.push(operation));
    const a = await h.connect();
    await welcome(a);
    for (let i = 0; i < 500; i++) a.send({ type: "leave", id: `l${i}` });
    expect(await a.closed).toBe(1008);
    expect(
      calls.filter((c) => !c.startsWith("limiter") && !c.startsWith("nodes")),
      calls.join(),
    ).toEqual([]);
  });

  it("auth floods: the token check runs a few times, then rate_limited", async () => {
    let checks = 0;
    const h = await start({
      authRate: { capacity: 3, ratePerSec: 0.2 },
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
    expect(checks).toBe(3);
    expect(answers.slice(3).every((f) => f.code === "rate_limited" && f.retryAfterMs !== undefined)).toBe(
      true,
    );
  });

  it("the in-flight refusal carries the request's id", async () => {
    const h = await start({
      maxPendingRequests: 2,
      authorize: () => sleep(100).then(() => true),
    });
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

describe("attack: display names that hide or fake what they say", () => {
  it("refuses zero-width, bidi-override and empty-looking names; accepts ordinary ones", async () => {
    const h = await start();
    const a = await h.connect();
    await welcome(a);
    for (const name of ["\u200B", "\u202Eevil", "ab\u200Dc", "\u2066x\u2069", "\u3164"]) {
      a.send({ type: "join", location: HERE, rangeKm: 5, name, id: "n" });
      const refused = await expectFrame(a, "error");
      expect(refused.code, JSON.stringify(name)).toBe("bad_request");
    }
    a.send({ type: "join", location: HERE, rangeKm: 5, name: "José", id: "ok" });
    expect((await expectFrame(a, "waiting")).id).toBe("ok");
  });
});

describe("attack: probing with throwaway guest connections", () => {
  it("joins of guests share a bucket per address, however many connections they use", async () => {
    const h = await start({ guestChurnPerAddress: { capacity: 5, ratePerSec: 0.1 } });
    const answers: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await h.connect(); // a new guest, a new user id, each time
      await welcome(c);
      c.send({ type: "join", location: HERE, rangeKm: 5, id: `j${i}` });
      const f = await c.next();
      answers.push(f.type === "error" ? f.code : f.type);
      await c.close();
    }
    expect(answers.slice(0, 5)).toEqual(["waiting", "waiting", "waiting", "waiting", "waiting"]);
    expect(answers.slice(5)).toEqual(["rate_limited", "rate_limited", "rate_limited"]);
  });
});
