// Crash faults with messages in flight both ways, on one Redis and on a three-master Redis
// Cluster: nodes are hubs in this process, each with its own Redis client as an app's nodes
// would have, and a crash is `hub.halt()` with its sockets cut (no close frames, nothing told).
// What must hold: every acked message reaches the other side once and in order after a resume,
// and a late resume of a dead node's session gets a fresh session. (examples/cluster runs the
// same with real processes and SIGKILL/SIGSTOP.)
import type { Store, WhisperOptions } from "@whisperchat/core";
import type { ClusterNode } from "@whisperchat/core/testing";
import { expectFrame } from "@whisperchat/core/testing";
import { createRedisStore, type RedisClient } from "@whisperchat/store-redis";
import { Cluster, Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { Chatter, deliveryProblems } from "../../adapter-ws/test/chatter.js";
import { startWsClusterNode, wrapClient } from "../../adapter-ws/test/harness.js";
import { deleteUnder, REDIS_URL, redisUp, testPrefix } from "./redis.js";
import { hasRedisServer, startCluster, type TestCluster } from "./servers.js";

type Kind = "single" | "cluster";
let cluster: TestCluster | undefined;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  if (hasRedisServer) cluster = await startCluster();
}, 30_000);
afterAll(async () => {
  await cluster?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function client(kind: Kind): RedisClient {
  const c =
    kind === "single"
      ? new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
      : new Cluster(
          (cluster?.ports ?? []).map((port) => ({ host: "127.0.0.1", port })),
          { redisOptions: { maxRetriesPerRequest: 1 } },
        );
  c.on("error", () => {});
  return c;
}

/** Two nodes on one store (each with its own client); cleaned up after the test. */
async function twoNodes(kind: Kind, options: Partial<WhisperOptions>): Promise<[ClusterNode, ClusterNode]> {
  return (await nodesOn(kind, options, 2)) as [ClusterNode, ClusterNode];
}

/**
 * `count` nodes on one store (each with its own client); cleaned up after the test. `wrap` may
 * put something between node `i` and its store.
 */
async function nodesOn(
  kind: Kind,
  options: Partial<WhisperOptions>,
  count: number,
  wrap: (store: Store, i: number) => Store = (store) => store,
): Promise<ClusterNode[]> {
  const keyPrefix = testPrefix();
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < count; i++) {
    const c = client(kind);
    const store = createRedisStore({ client: c, keyPrefix });
    const node = await startWsClusterNode(wrap(store, i), options);
    nodes.push(node);
    cleanups.push(async () => {
      await node.close().catch(() => undefined);
      await store.close();
      await deleteUnder(c, keyPrefix);
      c.disconnect();
    });
  }
  return nodes;
}

/** A gate: `wait` blocks until `release` (then never again); `held` resolves once one waited. */
/** Client a on n1 and b on n2, matched in one room (a is closed after the test). */
async function pairAcross(n1: ClusterNode, n2: ClusterNode) {
  const a = wrapClient(new WebSocket(urlOf(n1)));
  const b = wrapClient(new WebSocket(urlOf(n2)));
  cleanups.push(() => a.close());
  const aw = await expectFrame(a, "welcome");
  const bw = await expectFrame(b, "welcome");
  a.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
  await expectFrame(a, "waiting");
  b.send({ type: "join", location: { lat: 1, lng: 1.01 }, rangeKm: 5 });
  await expectFrame(b, "waiting");
  const { roomId } = await expectFrame(a, "matched");
  await expectFrame(b, "matched");
  return { a, b, aw, bw, roomId };
}

function gate() {
  let open = false;
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = () => {
      open = true;
      resolve();
    };
  });
  let reached = () => {};
  const held = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const wait = async () => {
    if (open) return;
    reached();
    await released;
  };
  return { wait, held, release, isOpen: () => open };
}

/** Reads a member of `target`, methods bound to it (they may use private fields). */
const member = (target: object, key: PropertyKey): unknown => {
  const value: unknown = Reflect.get(target, key, target);
  return typeof value === "function" ? value.bind(target) : value;
};

/** `store` with its `nodes.alive` and `sessions.get` passed through `alive` and `get`. */
function intercept(
  store: Store,
  alive: (ids: readonly string[], found: Set<string>) => Promise<void>,
  get: (sessionId: string) => Promise<void>,
): Store {
  const nodes = new Proxy(store.nodes, {
    get: (t, key) =>
      key === "alive"
        ? async (ids: readonly string[]) => {
            const found = await store.nodes.alive(ids);
            await alive(ids, found);
            return found;
          }
        : member(t, key),
  });
  const sessions = new Proxy(store.sessions, {
    get: (t, key) =>
      key === "get"
        ? async (sessionId: string) => {
            const record = await store.sessions.get(sessionId);
            await get(sessionId);
            return record;
          }
        : member(t, key),
  });
  return new Proxy(store, {
    get: (t, key) => (key === "nodes" ? nodes : key === "sessions" ? sessions : member(t, key)),
  });
}

/**
 * Node 0 of `nodesOn` with two gates: `deathCheck` holds the heartbeat checks that find `dead`
 * missing half an interval or more after it was first found missing (the ticks that would
 * confirm its death, see packages/core/src/liveness.ts); `recordRead` holds a read of the session
 * record of `record`, after it was read.
 */
function heldNode0(intervalMs: number) {
  const watch = { dead: "", record: "" };
  const deathCheck = gate();
  const recordRead = gate();
  let firstMissAt: number | undefined;
  const wrap = (store: Store, i: number): Store =>
    i !== 0
      ? store
      : intercept(
          store,
          async (ids, found) => {
            if (watch.dead === "" || !ids.includes(watch.dead) || found.has(watch.dead)) return;
            firstMissAt ??= Date.now();
            if (Date.now() - firstMissAt >= intervalMs / 2) await deathCheck.wait();
          },
          async (sessionId) => {
            if (sessionId === watch.record) await recordRead.wait();
          },
        );
  return { watch, deathCheck, recordRead, wrap };
}

const FAST = { capacity: 1000, ratePerSec: 1000 };
const urlOf = (node: ClusterNode) => (node as unknown as { url: string }).url;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const kinds: Kind[] = [
  ...(redisUp ? (["single"] as const) : []),
  ...(hasRedisServer ? (["cluster"] as const) : []),
];

describe.each(kinds)("crash faults (%s Redis)", (kind) => {
  it("a node crashes mid-stream: after the resume elsewhere nothing acked is lost, duplicated or reordered", async () => {
    const [n1, n2] = await twoNodes(kind, {
      resumeGraceMs: 20_000,
      messageRate: FAST,
      userMessageRate: FAST,
      nodeHeartbeatMs: 500,
    });
    const a = new Chatter(urlOf(n1), "a");
    const b = new Chatter(urlOf(n2), "b");
    cleanups.push(() => a.close());
    await Promise.all([a.welcomed, b.welcomed]);
    a.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await a.waitFor((f) => f.type === "waiting");
    b.send({ type: "join", location: { lat: 1, lng: 1.01 }, rangeKm: 5 });
    await a.waitFor((f) => f.type === "matched");
    await b.waitFor((f) => f.type === "matched");
    a.streaming = true;
    b.streaming = true;
    await sleep(300);
    // b's connection dies with frames on the wire: the node wrote them, they never arrive.
    b.deaf = true;
    b.streaming = false;
    await sleep(100);
    await n2.crash();
    await sleep(300); // a goes on sending while b's node is gone
    const b2 = new Chatter(
      `${urlOf(n1)}?resume=${b.resumeToken}&last=${encodeURIComponent(b.cursor())}`,
      "b",
      b,
    );
    cleanups.push(() => b2.close());
    expect((await b2.welcomed).resumed).toBe(true);
    b2.resendUnacked();
    b2.streaming = true;
    await sleep(400);
    a.streaming = false;
    b2.streaming = false;
    await sleep(1000);
    expect(deliveryProblems(a, b2)).toEqual([]);
    expect(deliveryProblems(b2, a)).toEqual([]);
  }, 30_000);

  it("the partner of a crashed node is told away, then left at the grace; a late resume gets a fresh session", async () => {
    const [n1, n2] = await twoNodes(kind, { resumeGraceMs: 800, nodeHeartbeatMs: 200 });
    const a = wrapClient(new WebSocket(urlOf(n1)));
    const b = wrapClient(new WebSocket(urlOf(n2)));
    cleanups.push(() => a.close());
    await expectFrame(a, "welcome");
    const bw = await expectFrame(b, "welcome");
    a.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await expectFrame(a, "waiting");
    b.send({ type: "join", location: { lat: 1, lng: 1.01 }, rangeKm: 5 });
    await expectFrame(a, "matched");
    await n2.crash();
    await expectFrame(a, "partner_away", 5000);
    expect((await expectFrame(a, "partner_left", 5000)).reason).toBe("disconnected");
    const late = wrapClient(new WebSocket(`${urlOf(n1)}?resume=${bw.resumeToken}`));
    cleanups.push(() => late.close());
    expect((await expectFrame(late, "welcome")).resumed).toBe(false);
  }, 30_000);

  it("a session that was waiting on a crashed node ends at its grace: a late resume gets a fresh session", async () => {
    const [n1, n2] = await twoNodes(kind, { resumeGraceMs: 600, nodeHeartbeatMs: 200 });
    const c = wrapClient(new WebSocket(urlOf(n2)));
    const cw = await expectFrame(c, "welcome");
    c.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await expectFrame(c, "waiting");
    await n2.crash();
    await sleep(1200); // its heartbeat expires
    const a = wrapClient(new WebSocket(urlOf(n1)));
    cleanups.push(() => a.close());
    await expectFrame(a, "welcome");
    a.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await expectFrame(a, "waiting");
    await sleep(1500); // a's search drops c's entry, and c's grace runs out
    await expect(expectFrame(a, "matched", 200)).rejects.toThrow();
    const late = wrapClient(new WebSocket(`${urlOf(n1)}?resume=${cw.resumeToken}`));
    cleanups.push(() => late.close());
    expect((await expectFrame(late, "welcome")).resumed).toBe(false);
  }, 30_000);

  it("after both partners moved through crashes, each knows where the other is: no false partner_away", async () => {
    const [n1, n2, n3] = (await nodesOn(kind, { resumeGraceMs: 20_000, nodeHeartbeatMs: 200 }, 3)) as [
      ClusterNode,
      ClusterNode,
      ClusterNode,
    ];
    const { a, aw, bw } = await pairAcross(n1, n2);
    // b's node dies; b comes back on n3: a learns b's new address (partner_back).
    await n2.crash();
    const b2 = wrapClient(new WebSocket(`${urlOf(n3)}?resume=${bw.resumeToken}`));
    cleanups.push(() => b2.close());
    expect((await expectFrame(b2, "welcome")).resumed).toBe(true);
    await expectFrame(a, "partner_back", 5000);
    // Then a's node dies; a comes back on n3 from its stored record.
    await n1.crash();
    const a2 = wrapClient(new WebSocket(`${urlOf(n3)}?resume=${aw.resumeToken}`));
    cleanups.push(() => a2.close());
    expect((await expectFrame(a2, "welcome")).resumed).toBe(true);
    await sleep(1500); // several heartbeats: a stale address (dead n2) would be found dead by now
    expect(a2.pending().filter((f) => f.type === "partner_away")).toEqual([]);
    a2.send({ type: "message", text: "still together", id: "m" });
    await expectFrame(a2, "ack");
    // b2 may first hear that a went away and came back (a's own node died); then the message.
    for (;;) {
      const f = await b2.next(5000);
      if (f.type === "message") {
        expect(f.text).toBe("still together");
        break;
      }
      expect(["partner_away", "partner_back"]).toContain(f.type);
    }
  }, 30_000);

  /**
   * a on n1 and b on n2 in a room; n2 crashes; while n1 is in the middle of finding b lost (`hold`),
   * b resumes on n3 and a learns b's new address (partner_back). What n1 then finds about n2 must
   * not make a's partner lost: no `partner_away` while b is connected, and when n3 dies in turn
   * a is told.
   */
  async function backWhileFoundLost(kind: Kind, hold: "deathCheck" | "recordRead") {
    const heartbeat = 200;
    const held = heldNode0(heartbeat);
    const [n1, n2, n3] = (await nodesOn(
      kind,
      { resumeGraceMs: 20_000, nodeHeartbeatMs: heartbeat },
      3,
      held.wrap,
    )) as [ClusterNode, ClusterNode, ClusterNode];
    const { a, bw } = await pairAcross(n1, n2);
    if (hold === "deathCheck") held.watch.dead = n2.hub.nodeId;
    else held.watch.record = bw.sessionId;
    await n2.crash();
    await held[hold].held;
    const b2 = wrapClient(new WebSocket(`${urlOf(n3)}?resume=${bw.resumeToken}`));
    cleanups.push(() => b2.close());
    expect((await expectFrame(b2, "welcome")).resumed).toBe(true);
    await expectFrame(a, "partner_back", 5000);
    held[hold].release();
    await sleep(1500); // several heartbeats
    expect(a.pending().filter((f) => f.type === "partner_away" || f.type === "partner_left")).toEqual([]);
    a.send({ type: "message", text: "still together", id: "m" });
    await expectFrame(a, "ack");
    expect((await expectFrame(b2, "message", 5000)).text).toBe("still together");
    // Now b's new node dies: a is told (the bound is five heartbeats; generous here).
    await n3.crash();
    await expectFrame(a, "partner_away", 5000);
  }

  it("a partner back on another node while the heartbeat tick confirms its old node dead: no false partner_away, and its new node's death is told", async () => {
    await backWhileFoundLost(kind, "deathCheck");
  }, 30_000);

  it("a partner back on another node while its record is read after its old node died: no false partner_away, and its new node's death is told", async () => {
    await backWhileFoundLost(kind, "recordRead");
  }, 30_000);

  it("a partner that moved while the session was away, then lost its new node: its session ends at the grace, record and all", async () => {
    let store: Store | undefined; // n4's, to look at b's record
    const [n1, n2, n3, n4] = (await nodesOn(
      kind,
      { resumeGraceMs: 3000, nodeHeartbeatMs: 200 },
      4,
      (s, i) => {
        if (i === 3) store = s;
        return s;
      },
    )) as [ClusterNode, ClusterNode, ClusterNode, ClusterNode];
    const { aw, bw } = await pairAcross(n1, n2);
    // a's node dies (a's record: b on n2); then b's, and b moves to n3 while a is away.
    await n1.crash();
    await n2.crash();
    const b2 = wrapClient(new WebSocket(`${urlOf(n3)}?resume=${bw.resumeToken}`));
    expect((await expectFrame(b2, "welcome")).resumed).toBe(true);
    // b's new node dies too; a comes back on n4 (within its grace), knowing b on n2.
    await n3.crash();
    await sleep(800); // n3's heartbeat expires (three intervals)
    const a2 = wrapClient(new WebSocket(`${urlOf(n4)}?resume=${aw.resumeToken}`));
    cleanups.push(() => a2.close());
    expect((await expectFrame(a2, "welcome")).resumed).toBe(true);
    // The partner_back of b's move comes from a's mailbox first; then n4 finds b lost.
    const seen: string[] = [];
    for (;;) {
      const f = await a2.next(5000);
      seen.push(f.type);
      if (f.type === "partner_left") break;
    }
    expect(seen.filter((t) => t !== "partner_back")).toEqual(["partner_away", "partner_left"]);
    // b's session ended with the grace: its record is gone (it was on n3, not n2, when it went).
    const records = (store as Store).sessions;
    for (let i = 0; i < 50 && (await records.get(bw.sessionId)) !== undefined; i++) await sleep(100);
    expect(await records.get(bw.sessionId)).toBeUndefined();
  }, 30_000);
  it("a message pushed to the mailbox after a resume drained it (and replayed from the history) is not replayed again at the next resume", async () => {
    // n1 routes a's message to b, whose node n2 crashed; n1 reads b's record (b away on n2) and is
    // held there while b resumes on n3, which drains b's (empty) mailbox and replays the message
    // from the history. Then n1 pushes it into b's mailbox. b's next resume, with a cursor past
    // it, must not get it again.
    const held = heldNode0(10_000);
    const [n1, n2, n3] = (await nodesOn(
      kind,
      { resumeGraceMs: 20_000, nodeHeartbeatMs: 10_000 },
      3,
      held.wrap,
    )) as [ClusterNode, ClusterNode, ClusterNode];
    const { a, b, bw, roomId } = await pairAcross(n1, n2);
    a.send({ type: "message", text: "one", id: "1" });
    await expectFrame(a, "ack");
    const one = await expectFrame(b, "message");
    held.watch.record = bw.sessionId;
    await n2.crash();
    a.send({ type: "message", text: "two", id: "2" });
    await held.recordRead.held; // n1 found b away on n2, and is about to keep "two" in its mailbox
    const b2 = wrapClient(
      new WebSocket(`${urlOf(n3)}?resume=${bw.resumeToken}&last=${roomId}:${one.messageId}`),
    );
    const b2w = await expectFrame(b2, "welcome");
    expect(b2w.resumed).toBe(true);
    const two = await expectFrame(b2, "message", 5000);
    expect(two.text).toBe("two");
    held.recordRead.release();
    // "two" is in b's mailbox now (a may hear first that b came back)
    for (let f = await a.next(5000); f.type !== "ack"; f = await a.next(5000))
      expect(f.type).toBe("partner_back");
    await b2.drop();
    const b3 = wrapClient(
      new WebSocket(`${urlOf(n3)}?resume=${b2w.resumeToken}&last=${roomId}:${two.messageId}`),
    );
    cleanups.push(() => b3.close());
    expect((await expectFrame(b3, "welcome")).resumed).toBe(true);
    a.send({ type: "message", text: "three", id: "3" });
    for (;;) {
      const f = await b3.next(5000);
      if (f.type !== "message") continue;
      expect(f.text).toBe("three");
      break;
    }
  }, 30_000);
  it("a resume whose node took the session over and died before its welcome: the old token resumes it once more, until the client used the new one", async () => {
    // n3's takeover of b's session is held once done (the token swapped in the store), and n3 is
    // crashed: b never gets the welcome with the new token, and retries with its old one on n1.
    const takenOver = gate();
    let holdTakeover = false;
    let store4: Store | undefined; // n4's, to look at b's record
    const [n1, n2, n3, n4] = (await nodesOn(
      kind,
      { resumeGraceMs: 20_000, nodeHeartbeatMs: 10_000 },
      4,
      (store, i) => {
        if (i === 3) store4 = store;
        return i !== 2
          ? store
          : new Proxy(store, {
              get: (t, key) =>
                key !== "sessions"
                  ? member(t, key)
                  : new Proxy(store.sessions, {
                      get: (st, k) =>
                        k === "takeover"
                          ? async (...args: Parameters<Store["sessions"]["takeover"]>) => {
                              const before = await store.sessions.takeover(...args);
                              if (!holdTakeover) return before;
                              await takenOver.wait(); // until the node halted: it never answers
                              throw new Error("the node died");
                            }
                          : member(st, k),
                    }),
            });
      },
    )) as [ClusterNode, ClusterNode, ClusterNode, ClusterNode];
    const { a, bw, roomId } = await pairAcross(n1, n2);
    await n2.crash();
    a.send({ type: "message", text: "while away", id: "1" });
    await expectFrame(a, "ack", 5000);
    holdTakeover = true;
    const lost = wrapClient(new WebSocket(`${urlOf(n3)}?resume=${bw.resumeToken}&last=${roomId}:`));
    lost.ws.on("error", () => undefined);
    await takenOver.held;
    await n3.hub.halt();
    takenOver.release();
    await n3.crash();
    await lost.closed;
    expect(lost.pending().filter((f) => f.type === "welcome")).toEqual([]);
    // The retry with the old token, on n1: the same session, its room and what it missed.
    const retry = wrapClient(new WebSocket(`${urlOf(n1)}?resume=${bw.resumeToken}&last=${roomId}:`));
    cleanups.push(() => retry.close());
    const rw = await expectFrame(retry, "welcome");
    expect(rw.resumed).toBe(true);
    expect(rw.sessionId).toBe(bw.sessionId);
    for (;;) {
      const f = await retry.next(5000);
      if (f.type !== "message") continue;
      expect(f.text).toBe("while away");
      break;
    }
    // While its connection is live, the old token takes nothing (a fresh session, on either node).
    for (const node of [n1, n4]) {
      const thief = wrapClient(new WebSocket(`${urlOf(node)}?resume=${bw.resumeToken}`));
      expect((await expectFrame(thief, "welcome")).resumed).toBe(false);
      await thief.close();
    }
    // The client uses its new token's connection: the old token is spent, even while it is away.
    retry.send({ type: "message", text: "got it", id: "2" });
    await expectFrame(retry, "ack", 5000);
    const records = (store4 as Store).sessions;
    for (let i = 0; i < 50 && (await records.get(bw.sessionId))?.tokenHash.includes(" "); i++)
      await sleep(50);
    expect((await records.get(bw.sessionId))?.tokenHash).not.toContain(" "); // saved without the old token
    await retry.drop();
    const old = wrapClient(new WebSocket(`${urlOf(n1)}?resume=${bw.resumeToken}`));
    cleanups.push(() => old.close());
    expect((await expectFrame(old, "welcome")).resumed).toBe(false);
    const again = wrapClient(new WebSocket(`${urlOf(n1)}?resume=${rw.resumeToken}`));
    cleanups.push(() => again.close());
    expect((await expectFrame(again, "welcome")).resumed).toBe(true);
  }, 30_000);
});
