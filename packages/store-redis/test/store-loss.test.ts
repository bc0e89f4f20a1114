// Redis restarted empty under a running node: rooms, the pool and session records are gone.
// Members of a lost room are told (`partner_left` `lost`), waiting sessions go back in the pool,
// and new pairs work.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServerFrame } from "@whisperchat/core";
import { expectFrame, type TestClient } from "@whisperchat/core/testing";
import { createRedisStore, DEFAULT_POOL_LEVELS } from "@whisperchat/store-redis";
import { Cluster, Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { startWsHarness, type WsHarness } from "../../adapter-ws/test/harness.js";
import { cellOf, type Level, levelsOf } from "../src/cells.js";
import { freePort, hasRedisServer, startCluster, startRedis, stopRedis } from "./servers.js";

const HERE = { lat: 59.33, lng: 18.07 };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function joined(h: WsHarness): Promise<TestClient> {
  const c = await h.connect();
  await expectFrame(c, "welcome");
  c.send({ type: "join", location: HERE, rangeKm: 5 });
  await expectFrame(c, "waiting");
  return c;
}

/** Frames of `type` that `client` got (waiting for them up to `ms`). */
async function framesOf(
  client: TestClient,
  type: ServerFrame["type"],
  count: number,
  ms = 8000,
): Promise<ServerFrame[]> {
  const got: ServerFrame[] = [];
  const end = Date.now() + ms;
  while (got.length < count && Date.now() < end) {
    const f = await client.next(Math.max(1, end - Date.now())).catch(() => undefined);
    if (f?.type === type) got.push(f);
  }
  return got;
}

const SYDNEY = { lat: -33.9, lng: 151.2 };

/**
 * The key of the pool cell a user waiting in Sydney with a 5 km range is in, with the geo-sharded
 * pool (the default on a Cluster): level 1 (tiers up to 10 km), a 1° cell.
 */
function sydneyCell(keyPrefix: string): string {
  const level = levelsOf([1, 3, 10, 30, 100, 300, 1000, 3000], DEFAULT_POOL_LEVELS)[0] as Level;
  const [band, col] = cellOf(level, SYDNEY.lat, SYDNEY.lng);
  return `${keyPrefix}{${keyPrefix}pool:${level.cellDeg}:${band}:${col}}:entries`;
}

/** A user waiting alone in Sydney (nobody near it). */
async function waitingAlone(h: WsHarness): Promise<TestClient> {
  const c = await h.connect();
  await expectFrame(c, "welcome");
  c.send({ type: "join", location: SYDNEY, rangeKm: 5 });
  await expectFrame(c, "waiting");
  return c;
}

/** A newcomer in Sydney is matched with `waiting`: its entry is in the pool. */
async function newcomerFinds(h: WsHarness, waiting: TestClient): Promise<void> {
  const d = await h.connect();
  await expectFrame(d, "welcome");
  d.send({ type: "join", location: SYDNEY, rangeKm: 5 });
  await expectFrame(d, "waiting");
  await expectFrame(d, "matched", 8000);
  await expectFrame(waiting, "matched", 8000);
}

/** After a restart that kept the data: the pair chats on, the waiting user is found, nobody is told. */
async function carriesOn(
  h: WsHarness,
  { a, b, c }: { a: TestClient; b: TestClient; c: TestClient },
): Promise<void> {
  a.send({ type: "message", text: "still here", id: "m" });
  expect((await expectFrame(a, "ack", 8000)).id).toBe("m");
  expect((await expectFrame(b, "message")).text).toBe("still here");
  await newcomerFinds(h, c);
  for (const x of [a, b, c]) expect(x.pending().filter((f) => f.type === "partner_left")).toEqual([]);
}

/** Until `client` has reconnected and answers a PING (10 s at most). */
async function untilAnswers(client: Redis): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      if (client.status === "ready" && (await client.ping()) === "PONG") return;
    } catch (err) {
      if (Date.now() > end) throw err;
    }
    if (Date.now() > end) throw new Error(`the client did not reconnect (status ${client.status})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A private redis-server (started with `args`) and a node on it; `restart()` kills the server
 * (SIGKILL) and starts it again with the same arguments.
 */
async function nodeOnPrivateRedis(args: string[], keyPrefix: string) {
  const port = await freePort();
  let server = await startRedis(port, args);
  cleanups.push(() => stopRedis(server));
  const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on("error", () => {});
  cleanups.push(() => client.disconnect());
  const store = createRedisStore({ client, keyPrefix, onError: () => {} });
  const h = await startWsHarness({ store, nodeHeartbeatMs: 200 }, {}, { closeStore: false });
  cleanups.push(() => store.close());
  cleanups.push(() => h.close());
  return {
    h,
    async restart() {
      await stopRedis(server);
      server = await startRedis(port, args);
      // Back when the node's own client is: a join before it reconnects fails as in an outage.
      await untilAnswers(client);
    },
  };
}

describe.skipIf(!hasRedisServer)("Redis restarted empty under a running node", () => {
  it("tells both members of every lost room, puts waiting sessions back in the pool, and new pairs work", async () => {
    const { h, restart } = await nodeOnPrivateRedis([], "test:loss:");

    const a = await joined(h);
    const b = await joined(h);
    const { roomId } = await expectFrame(a, "matched");
    await expectFrame(b, "matched");
    const c = await waitingAlone(h);

    await restart(); // empty: nothing was saved

    // Nobody sends anything: the node notices by itself.
    for (const member of [a, b]) {
      const left = await framesOf(member, "partner_left", 1);
      expect(left).toEqual([{ type: "partner_left", roomId, reason: "lost" }]);
    }
    // c is back in the pool: a newcomer near c is matched with it.
    await newcomerFinds(h, c);
    // And the members of the lost room can pair again.
    a.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "waiting");
    b.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(b, "waiting");
    await expectFrame(a, "matched");
    a.send({ type: "message", text: "again", id: "m" });
    expect((await expectFrame(a, "ack")).id).toBe("m");
  }, 30_000);

  it("restarted with its data (append-only file): rooms and the pool carry on, nobody is told anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "whisper-aof-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { h, restart } = await nodeOnPrivateRedis(
      ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir],
      "test:kept:",
    );

    const a = await joined(h);
    const b = await joined(h);
    await expectFrame(a, "matched");
    await expectFrame(b, "matched");
    const c = await waitingAlone(h);

    await restart(); // SIGKILL: what is on disk is what an fsync'd AOF kept
    await new Promise((resolve) => setTimeout(resolve, 1000)); // a few heartbeats after the restart

    await carriesOn(h, { a, b, c });
  }, 30_000);
});

/** The port of the master that holds `key`. */
async function ownerOf(client: Cluster, key: string): Promise<number> {
  const slot = Number(await client.cluster("KEYSLOT", key));
  const ranges = await client.cluster("SLOTS");
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  const port = range?.[2]?.[1];
  if (port === undefined) throw new Error(`no master for slot ${slot}`);
  return port;
}

/** A node on the cluster (heartbeats and audits fast), a pair in a room and a user waiting alone. */
async function pairAndWaiting(client: Cluster, keyPrefix: string) {
  const store = createRedisStore({ client, keyPrefix, onError: () => {} });
  const h = await startWsHarness(
    { store, nodeHeartbeatMs: 200, auditIntervalMs: 1000 },
    {},
    { closeStore: false },
  );
  cleanups.push(() => store.close());
  cleanups.push(() => h.close());
  const a = await joined(h);
  const b = await joined(h);
  const { roomId } = await expectFrame(a, "matched");
  await expectFrame(b, "matched");
  const c = await waitingAlone(h);
  return { h, a, b, c, roomId };
}

/** A client of a test cluster, cleaned up after the test. */
function clusterClient(ports: readonly number[]): Cluster {
  const client = new Cluster(
    ports.map((port) => ({ host: "127.0.0.1", port })),
    { redisOptions: { maxRetriesPerRequest: 1 }, clusterRetryStrategy: () => 50 },
  );
  client.on("error", () => {});
  cleanups.push(() => client.disconnect());
  return client;
}

describe.skipIf(!hasRedisServer)("one master of a Redis Cluster restarted under a running node", () => {
  it("the sessions' audits put back the lost pool entries and end the lost rooms; the node's own heartbeat never noticed", async () => {
    const cluster = await startCluster();
    cleanups.push(() => cluster.stop());
    const client = clusterClient(cluster.ports);
    const keyPrefix = "test:part:";
    const poolOwner = await ownerOf(client, sydneyCell(keyPrefix));
    // A node whose heartbeat key lives on another master: the loss stays out of its own sight.
    let nodeId = "";
    for (let i = 0; nodeId === ""; i++) {
      if ((await ownerOf(client, `${keyPrefix}node:{n${i}}`)) !== poolOwner) nodeId = `n${i}`;
    }
    const store = createRedisStore({ client, keyPrefix, onError: () => {} });
    // Many connections from one address: the limits are raised out of the way.
    const open = { capacity: 1000, ratePerSec: 1000 };
    const h = await startWsHarness(
      {
        store,
        nodeId,
        nodeHeartbeatMs: 200,
        auditIntervalMs: 1000,
        connectRate: open,
        guestChurnPerAddress: open,
        churnRate: open,
      },
      {},
      { closeStore: false },
    );
    cleanups.push(() => store.close());
    cleanups.push(() => h.close());

    // Rooms until one has its key on the master of the waiting user's pool cell (the one
    // restarted), and one waiting user.
    const rooms: { a: TestClient; b: TestClient; roomId: string; lost: boolean }[] = [];
    while (!rooms.some((r) => r.lost)) {
      if (rooms.length >= 40) throw new Error("no room key landed on the pool cell's master in 40 rooms");
      const a = await joined(h);
      const b = await joined(h);
      const { roomId } = await expectFrame(a, "matched");
      await expectFrame(b, "matched");
      rooms.push({
        a,
        b,
        roomId,
        lost: (await ownerOf(client, `${keyPrefix}room:{${roomId}}`)) === poolOwner,
      });
    }
    const c = await waitingAlone(h);
    expect(await store.pool.size()).toBe(1);
    expect(await client.hlen(sydneyCell(keyPrefix))).toBe(1); // on the master about to restart

    await cluster.restart(poolOwner); // empty; the audits may put entries back while it restarts

    // Nobody sends anything. Within the audit interval: the lost rooms end for both members...
    for (const room of rooms.filter((r) => r.lost)) {
      for (const member of [room.a, room.b]) {
        expect(await framesOf(member, "partner_left", 1)).toEqual([
          { type: "partner_left", roomId: room.roomId, reason: "lost" },
        ]);
      }
    }
    // ... the waiting user is back in the pool and found by a newcomer...
    await newcomerFinds(h, c);
    // ... and a room the restart did not touch carries on.
    const kept = rooms.find((r) => !r.lost);
    if (kept !== undefined) {
      kept.a.send({ type: "message", text: "still here", id: "k" });
      expect((await expectFrame(kept.a, "ack", 8000)).id).toBe("k");
      expect((await expectFrame(kept.b, "message")).text).toBe("still here");
    }
  }, 60_000);

  it("restarted with its data (append-only file): rooms and the pool carry on, nobody is told anything", async () => {
    const cluster = await startCluster({ persist: true });
    cleanups.push(() => cluster.stop());
    const client = clusterClient(cluster.ports);
    const keyPrefix = "test:kept:";
    const { h, a, b, c, roomId } = await pairAndWaiting(client, keyPrefix);

    // Restart the masters that hold the waiting user's pool cell and the room (SIGKILL: what is
    // on disk is kept).
    const owners = new Set([
      await ownerOf(client, sydneyCell(keyPrefix)),
      await ownerOf(client, `${keyPrefix}room:{${roomId}}`),
    ]);
    for (const port of owners) await cluster.restart(port);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // past an audit of every session

    await carriesOn(h, { a, b, c });
  }, 60_000);
});

/**
 * A cluster of three masters with one replica each (`redis-cli --cluster create
 * --cluster-replicas 1`), with a short `cluster-node-timeout` so that a failover takes a couple
 * of seconds. `kill(port)` SIGKILLs one server.
 */
async function startReplicatedCluster(nodeTimeoutMs: number) {
  const dir = mkdtempSync(join(tmpdir(), "whisper-failover-"));
  const ports: number[] = [];
  const children = new Map<number, Awaited<ReturnType<typeof startRedis>>>();
  const stop = async () => {
    await Promise.all([...children.values()].map(stopRedis));
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push(stop);
  for (let i = 0; i < 6; i++) {
    const port = await freePort();
    ports.push(port);
    const args = ["--cluster-enabled", "yes", "--cluster-node-timeout", String(nodeTimeoutMs)];
    args.push("--cluster-config-file", join(dir, `nodes-${port}.conf`), "--dir", dir);
    children.set(port, await startRedis(port, args));
  }
  const hosts = ports.map((p) => `127.0.0.1:${p}`);
  const created = spawnSync(
    "redis-cli",
    ["--cluster", "create", ...hosts, "--cluster-replicas", "1", "--cluster-yes"],
    { encoding: "utf8" },
  );
  if (created.status !== 0)
    throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  const cli = (port: number, ...args: string[]) =>
    spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" }).stdout;
  // Ready: every node sees the cluster ok, and every replica is in sync with its master.
  const deadline = Date.now() + 20_000;
  for (const port of ports) {
    for (;;) {
      const ok = cli(port, "cluster", "info").includes("cluster_state:ok");
      const replication = cli(port, "info", "replication");
      const synced = replication.includes("role:master") || replication.includes("master_link_status:up");
      if (ok && synced) break;
      if (Date.now() > deadline) throw new Error(`cluster node ${port} not ready: ${replication}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    ports,
    cli,
    kill: async (port: number) => {
      const child = children.get(port);
      if (child !== undefined) await stopRedis(child);
      children.delete(port);
    },
  };
}

describe.skipIf(!hasRedisServer)(
  "a master of a Redis Cluster with replicas fails over under a running node",
  () => {
    it("the node carries on through the promotion: acked messages arrive once and in order, the waiting user is found, nobody is told anything", async () => {
      const cluster = await startReplicatedCluster(1000);
      const client = clusterClient(cluster.ports);
      const keyPrefix = "test:failover:";
      const { h, a, b, c, roomId } = await pairAndWaiting(client, keyPrefix);

      // Messages are acked before the kill: replicated asynchronously, within milliseconds here.
      const sent: string[] = [];
      const send = async (n: number): Promise<number> => {
        // As a client does: on `internal` (the store is failing over), resend with the same id.
        const text = `m${n}`;
        const started = Date.now();
        for (;;) {
          a.send({ type: "message", text, id: text });
          const f = await a.next(8000);
          if (f.type === "ack" && f.id === text) break;
          expect(f, `while sending ${text}`).toMatchObject({ type: "error", code: "internal", id: text });
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        sent.push(text);
        return Date.now() - started;
      };
      for (let n = 0; n < 10; n++) await send(n);

      // Kill the master that holds the room; its replica takes over after the node timeout.
      const roomOwner = await ownerOf(client, `${keyPrefix}room:{${roomId}}`);
      await new Promise((resolve) => setTimeout(resolve, 200)); // let the last writes replicate
      await cluster.kill(roomOwner);
      const outageMs = await send(10);
      for (let n = 11; n < 20; n++) await send(n);
      console.log(
        `failover: the first message after the kill was acked ${outageMs} ms after it was first sent`,
      );

      // The replica is a master now, with the room and its history.
      const alive = cluster.ports.filter((p) => p !== roomOwner);
      expect(cluster.cli(alive[0] as number, "cluster", "info")).toContain("cluster_state:ok");
      const received: string[] = [];
      while (received.length < sent.length) {
        const f = await b.next(8000);
        if (f.type === "message" && !received.includes(f.text)) received.push(f.text);
        else expect(f.type, `b got ${JSON.stringify(f)}`).toBe("message");
      }
      expect(received).toEqual(sent);
      await newcomerFinds(h, c);
      for (const x of [a, b, c]) expect(x.pending().filter((f) => f.type === "partner_left")).toEqual([]);
    }, 60_000);
  },
);
