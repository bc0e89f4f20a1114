/**
 * What a chat message and a join cost Redis on one Redis server against a three-master Redis
 * Cluster, and how a cluster spreads that work over its masters. Starts its own private
 * `redis-server` and cluster on free ports (needs `redis-server` and `redis-cli` on PATH;
 * without them every row is "n/a") and stops them at the end.
 *
 * On each, two WhisperChat nodes (`createWhisper` on `createRedisStore`, through
 * `@whisperchat/adapter-ws`; message, churn and connection limits raised out of the way) run in
 * this process, each with its own client (`Redis`, or an ioredis `Cluster` on the cluster).
 * PAIRS pairs join, one client of each pair on each node, so that every message crosses nodes;
 * then every client sends MESSAGES 100-byte texts, 8 in flight. Over the joins and over the
 * messages, separately, it reads `INFO` of every master: commands processed
 * (`total_commands_processed`, which counts the commands a script runs too) and Redis CPU time,
 * and reports them per join and per message, and the share of the busiest master on the cluster.
 * The clients and nodes share this process, so its throughput figures are not reported: only
 * what Redis did.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/redis-cluster-cost.ts [--quick]
 *
 * Not in `npm run bench`'s list (`run.ts`): run it alone. It writes
 * `results/redis-cluster-cost.json`.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { attachWebSocket, type WebSocketAdapter } from "@whisperchat/adapter-ws";
import { createWhisper, type WhisperHub } from "@whisperchat/core";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import { Cluster, Redis } from "ioredis";
import { WebSocket } from "ws";
import {
  freePort,
  hasRedisServer,
  startCluster,
  startRedis,
  stopRedis,
} from "../packages/store-redis/test/servers.js";
import { NO_LIMITS } from "./lib/no-limits.js";
import { redisCounters } from "./lib/redis-util.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const quick = isQuick();
const PAIRS = quick ? 20 : 100;
const MESSAGES = quick ? 100 : 300;
const WINDOW = 8;
const TEXT = "x".repeat(100);
const PREFIX = "whisper:";

const log = (line: string) => process.stderr.write(`[redis-cluster-cost] ${line}\n`);
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

interface Node {
  url: string;
  close(): Promise<void>;
}

async function startNode(client: Redis | Cluster): Promise<Node> {
  const store: RedisStore = createRedisStore({ client, keyPrefix: PREFIX });
  const hub: WhisperHub = createWhisper({
    store,
    ...NO_LIMITS,
  });
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const ws: WebSocketAdapter = attachWebSocket(hub, { server });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/whisper`,
    async close() {
      await ws.close();
      await hub.close();
      await store.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await client.quit();
    },
  };
}

/** A WebSocket client that counts acks and the partner's messages. */
class Client {
  readonly ws: WebSocket;
  acked = 0;
  received = 0;
  private waiters: { type: string; resolve: () => void }[] = [];
  private onProgress: (() => void) | undefined;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string };
      if (frame.type === "ack") this.acked++;
      else if (frame.type === "message") this.received++;
      else if (frame.type === "error") log(`error frame: ${String(data)}`);
      for (const w of this.waiters.filter((w) => w.type === frame.type)) w.resolve();
      this.waiters = this.waiters.filter((w) => w.type !== frame.type);
      this.onProgress?.();
    });
  }

  next(type: string): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ type, resolve }));
  }

  send(frame: object): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Sends `count` messages, `WINDOW` unacked at most; resolves when all are acked. */
  stream(count: number): Promise<void> {
    let sent = 0;
    return new Promise((resolve) => {
      const pump = () => {
        while (sent < count && sent - this.acked < WINDOW) {
          this.send({ type: "message", id: String(sent), text: TEXT });
          sent++;
        }
        if (this.acked >= count) {
          this.onProgress = undefined;
          resolve();
        }
      };
      this.onProgress = pump;
      pump();
    });
  }
}

interface Masters {
  clients: Redis[];
  counters(): Promise<{ cpuSeconds: number; commands: number }[]>;
}

function masters(ports: readonly number[]): Masters {
  const clients = ports.map((port) => new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 }));
  return { clients, counters: () => Promise.all(clients.map(redisCounters)) };
}

interface Cost {
  joins: number;
  messages: number;
  /** Per master: commands and CPU seconds over the joins, and over the messages. */
  joinWork: { cpuSeconds: number; commands: number }[];
  messageWork: { cpuSeconds: number; commands: number }[];
}

const diff = (
  after: { cpuSeconds: number; commands: number }[],
  before: { cpuSeconds: number; commands: number }[],
) =>
  after.map((a, i) => ({
    cpuSeconds: a.cpuSeconds - (before[i]?.cpuSeconds ?? 0),
    // INFO itself is a command: one per read.
    commands: a.commands - (before[i]?.commands ?? 0) - 1,
  }));

async function run(label: string, ports: readonly number[], client: () => Redis | Cluster): Promise<Cost> {
  const nodes = [await startNode(client()), await startNode(client())];
  const m = masters(ports);
  const clients: Client[] = [];
  try {
    // Every client connected and welcomed before anything is counted.
    for (let i = 0; i < PAIRS; i++) {
      for (const node of nodes) {
        const c = new Client(node.url);
        const welcomed = c.next("welcome");
        await welcomed;
        clients.push(c);
      }
    }
    const beforeJoins = await m.counters();
    for (let i = 0; i < PAIRS; i++) {
      const a = clients[2 * i] as Client;
      const b = clients[2 * i + 1] as Client;
      // Each pair at a place of its own, 50 km from the next, with a 1 km range.
      const location = { lat: -60 + (i % 240) * 0.5, lng: -170 + Math.floor(i / 240) * 2 };
      const matched = [a.next("matched"), b.next("matched")];
      a.send({ type: "join", location, rangeKm: 1 });
      await a.next("waiting");
      b.send({ type: "join", location, rangeKm: 1 });
      await Promise.all(matched);
    }
    const afterJoins = await m.counters();
    await Promise.all(clients.map((c) => c.stream(MESSAGES)));
    const expected = MESSAGES * clients.length;
    for (
      let waited = 0;
      clients.reduce((n, c) => n + c.received, 0) < expected && waited < 10_000;
      waited += 10
    )
      await new Promise((resolve) => setTimeout(resolve, 10));
    const afterMessages = await m.counters();
    const received = clients.reduce((n, c) => n + c.received, 0);
    if (received !== expected) throw new Error(`${label}: ${received} of ${expected} messages received`);
    const cost: Cost = {
      joins: PAIRS * 2,
      messages: received,
      joinWork: diff(afterJoins, beforeJoins),
      messageWork: diff(afterMessages, afterJoins),
    };
    const sum = (w: { cpuSeconds: number; commands: number }[], k: "cpuSeconds" | "commands") =>
      w.reduce((n, x) => n + x[k], 0);
    log(
      `${label}: ${cost.joins} joins, ${sum(cost.joinWork, "commands") / cost.joins} commands each; ${cost.messages} messages, ${fmt(sum(cost.messageWork, "commands") / cost.messages, 2)} commands and ${fmt((sum(cost.messageWork, "cpuSeconds") / cost.messages) * 1e6, 2)} µs of Redis CPU each; commands per master (messages): ${cost.messageWork.map((w) => fmt(w.commands)).join(", ")}`,
    );
    return cost;
  } finally {
    for (const c of clients) c.ws.close(1000);
    await Promise.all(nodes.map((n) => n.close()));
    await Promise.all(m.clients.map((c) => c.quit()));
  }
}

const rows: ResultRow[] = [];
const notes: string[] = [];
const total = (w: { cpuSeconds: number; commands: number }[], k: "cpuSeconds" | "commands") =>
  w.reduce((n, x) => n + x[k], 0);

function report(single: Cost | undefined, cluster: Cost | undefined): void {
  const per = (c: Cost | undefined, what: "join" | "message", k: "cpuSeconds" | "commands") => {
    if (c === undefined) return null;
    const work = what === "join" ? c.joinWork : c.messageWork;
    const count = what === "join" ? c.joins : c.messages;
    return k === "commands" ? total(work, k) / count : (total(work, k) / count) * 1e6;
  };
  for (const what of ["join", "message"] as const) {
    rows.push(
      row({
        group: `Redis work per ${what}`,
        metric: "commands, three-master cluster vs one server",
        unit: "commands",
        ours: per(cluster, what, "commands"),
        baseline: per(single, what, "commands"),
        baselineName: "one Redis server",
        higherIsBetter: false,
      }),
      row({
        group: `Redis work per ${what}`,
        metric: "Redis CPU (all masters), three-master cluster vs one server",
        unit: "µs",
        ours: per(cluster, what, "cpuSeconds"),
        baseline: per(single, what, "cpuSeconds"),
        baselineName: "one Redis server",
        higherIsBetter: false,
      }),
    );
    const work = cluster === undefined ? undefined : what === "join" ? cluster.joinWork : cluster.messageWork;
    rows.push(
      row({
        group: `Redis work per ${what}`,
        metric: "commands on the busiest master vs all masters (cluster)",
        unit: "commands",
        ours: work === undefined ? null : Math.max(...work.map((w) => w.commands)),
        baseline: work === undefined ? null : total(work, "commands"),
        baselineName: "all three masters",
        higherIsBetter: false,
      }),
    );
  }
}

if (!hasRedisServer) {
  notes.push("redis-server or redis-cli is not on PATH: nothing measured");
  report(undefined, undefined);
} else {
  const port = await freePort();
  const server = await startRedis(port, ["--bind", "127.0.0.1"]);
  let single: Cost | undefined;
  let clustered: Cost | undefined;
  try {
    single = await run("one server", [port], () => {
      const c = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, enableAutoPipelining: true });
      c.on("error", () => undefined);
      return c;
    });
  } finally {
    await stopRedis(server);
  }
  const cluster = await startCluster();
  try {
    clustered = await run("three-master cluster", cluster.ports, () => {
      const c = new Cluster(
        cluster.ports.map((p) => ({ host: "127.0.0.1", port: p })),
        { redisOptions: { maxRetriesPerRequest: 1 }, enableAutoPipelining: true },
      );
      c.on("error", () => undefined);
      return c;
    });
  } finally {
    await cluster.stop();
  }
  report(single, clustered);
  notes.push(
    `${PAIRS} pairs, one client on each of two WhisperChat nodes (in this process, each with its own ioredis client, autopipelining on), ${MESSAGES} 100-byte texts per client, ${WINDOW} in flight. Private Redis servers started by the script (one server; three masters, no replicas).`,
    "Commands: total_commands_processed over every master (commands run by scripts included), less the INFO reads; CPU: used_cpu_user + used_cpu_sys over every master. The windows also hold the nodes' heartbeats (every 2 s): indicative.",
    "A join here is one client's join: the first of a pair waits (pool.add and a search), the second is matched (search, claim, room, session records).",
  );
}

const path = writeResults("redis-cluster-cost", rows, { quick, notes });
log(`wrote ${path}`);
