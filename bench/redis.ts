/**
 * Redis benchmark: `@whisperchat/store-redis` against what a straightforward Redis design would
 * do, in the same run, on one Redis (`REDIS_URL`, default redis://127.0.0.1:6379).
 *
 * 1. Join+claim per second with 10k and 100k users waiting (`--quick`: 10k), on two workloads
 *    of `lib/matching-workloads.ts` (uniform over the world; 80% in 5 cities with a 10 km
 *    spread), with 1 and 16 joins in flight. A join is what the hub does for a newcomer:
 *    `store.pool.add(newcomer)` + `searchAndClaim(store, newcomer)` (+ `pool.remove` when
 *    nobody matched; a matched waiting user is put back, untimed, so the pool keeps its size).
 *    The pool is filled through `searchAndClaim` until enough wait, so it holds no mutually
 *    eligible pair. Baseline: a plain GEO set holding the same waiting users (member
 *    `sessionId|userId|rangeKm|since`), searched with `GEOSEARCH ... BYRADIUS <newcomer's
 *    range> km ASC WITHDIST`, the mutual rule checked in JS on the returned distances,
 *    exclusions checked like ours, the longest-waiting candidate claimed with a small Lua
 *    script (both still there → ZREM both).
 * 2. Cross-node relay: two WhisperChat nodes (`createWhisper` on `createRedisStore`, through
 *    `@whisperchat/adapter-ws`, each in its own process) against two Socket.IO servers with
 *    `@socket.io/redis-adapter`, each in its own process; every pair has one client on each
 *    node, so every message crosses Redis. Load from another process, as in `relay.ts`: 100-byte
 *    texts, 8 in flight per client, 1 and 50 pairs.
 *
 *   node --conditions=@whisperchat/source --import tsx --expose-gc bench/redis.ts [--quick] [--profile] [--source] [--part=join|relay]
 *
 * Keys use a random prefix and are deleted at the end. Without Redis every row is "n/a".
 * `--profile` writes V8 CPU profiles of the WhisperChat nodes (see `lib/profile-top.ts`).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PoolEntry, searchAndClaim } from "@whisperchat/core";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import type { Redis } from "ioredis";
import { bundle, howRun } from "./lib/bundle.js";
import type { ClusterKind } from "./lib/cluster-node.js";
import { NODE_ARGS, spawnWorker, type Worker } from "./lib/ipc.js";
import { clustered, NEWCOMER_T0, T0, uniform, type Workload } from "./lib/matching-workloads.js";
import { connectRedis, deleteKeys, REDIS_URL, redisCounters } from "./lib/redis-util.js";
import { PAYLOAD_BYTES } from "./lib/relay-config.js";
import { isQuick, type ResultRow, row, writeResults } from "./lib/results.js";

const here = dirname(fileURLToPath(import.meta.url));
const NODE = join(here, "lib", "cluster-node.ts");
const LOAD = join(here, "lib", "cluster-load.ts");
const PROFILE_DIR = join(tmpdir(), "whisperchat-bench-profiles");

const quick = isQuick();
const profile = process.argv.includes("--profile");
const fromSource = process.argv.includes("--source");
/** `--part=join` or `--part=relay` runs one half (the results then hold only its rows). */
const part = process.argv.find((a) => a.startsWith("--part="))?.slice("--part=".length);

// Join+claim.
const SIZES = quick ? [10_000] : [10_000, 100_000];
const WORKLOADS: Workload[] = [uniform, clustered];
const JOIN_IN_FLIGHT = [1, 16];
/** Joins in flight while filling the pool. */
const FILL_IN_FLIGHT = 32;
const JOIN_WARMUP_MS = quick ? 300 : 1000;
const JOIN_MEASURE_MS = quick ? 1500 : 4000;
/** Each join figure is measured this many times, ours and the baseline taking turns; the best counts. */
const JOIN_ROUNDS = quick ? 1 : 2;

// Cross-node relay.
const PAIRS = [1, 50];
const WINDOW = 8;
const SERVER_WARMUP_MS = quick ? 500 : 2000;
const WARMUP_MS = quick ? 300 : 700;
const MEASURE_MS = quick ? 1000 : 2500;
const RELAY_ROUNDS = quick ? 1 : 3;
const KINDS: ClusterKind[] = ["whisper", "socketio"];
const NAMES: Record<ClusterKind, string> = {
  whisper: "WhisperChat (store-redis)",
  socketio: "Socket.IO Redis adapter",
};

const log = (line: string) => process.stderr.write(`[redis] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const compact = (n: number) => (n >= 1000 ? `${Math.round(n / 1000)}k` : `${n}`);

const t0 = performance.now();
const prefix = `bench:${randomUUID()}:`;
const notes: string[] = [];
const rows: ResultRow[] = [];

// ------------------------------------------------------------------------------------------------
// Join+claim

/** One side of the join benchmark: a pool in Redis, and how a newcomer joins it. */
interface Contender {
  /** Adds the newcomer, searches and claims; resolves the claimed partner, if any. */
  join(n: PoolEntry): Promise<PoolEntry | undefined>;
  /** Puts a claimed waiting user back (untimed). */
  putBack(e: PoolEntry): Promise<void>;
  size(): Promise<number>;
  /** Members a search returned per join, summed (the baseline only). */
  searched: number;
}

interface JoinTiming {
  joins: number;
  joinsPerSec: number;
  p50Us: number;
  p99Us: number;
  matched: number;
  searchedPerJoin: number;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Runs joins with `inFlight` loops for `ms` (newcomers `first`, `first + 1`, ...); a matched
 * waiting user is put back outside the timed part. Resolves the figures of the window.
 */
async function joinWindow(
  c: Contender,
  newcomer: (k: number) => PoolEntry,
  first: number,
  inFlight: number,
  ms: number,
): Promise<JoinTiming> {
  let k = first;
  const latencies: number[] = [];
  let matched = 0;
  c.searched = 0;
  const start = performance.now();
  const end = start + ms;
  const loop = async () => {
    while (performance.now() < end) {
      const n = newcomer(k++);
      const t = performance.now();
      const partner = await c.join(n);
      latencies.push(performance.now() - t);
      if (partner !== undefined) {
        matched++;
        // Two newcomers may match each other (16 in flight); only waiting users go back.
        if (partner.since < NEWCOMER_T0) await c.putBack(partner);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  const elapsed = performance.now() - start;
  const sorted = Float64Array.from(latencies).sort();
  return {
    joins: latencies.length,
    joinsPerSec: (latencies.length * 1000) / elapsed,
    p50Us: quantile(sorted, 0.5) * 1000,
    p99Us: quantile(sorted, 0.99) * 1000,
    matched,
    searchedPerJoin: c.searched / latencies.length,
  };
}

function ours(store: RedisStore): Contender {
  return {
    searched: 0,
    async join(n) {
      await store.pool.add(n);
      const found = await searchAndClaim(store, n, undefined);
      if (found === undefined) await store.pool.remove(n.sessionId);
      return found?.partner;
    },
    putBack: (e) => store.pool.add(e),
    size: () => store.pool.size(),
  };
}

const BASE_CLAIM = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
`;
type ClaimCommand = (key: string, a: string, b: string) => Promise<number>;

/** Redis GEO takes latitudes up to ±85.05°: the baseline clamps (a straightforward design would). */
const clampLat = (lat: number) => Math.max(-85, Math.min(85, lat));
const memberOf = (e: PoolEntry) => `${e.sessionId}|${e.userId}|${e.rangeKm}|${e.since}`;

/** The straightforward design: one GEO set, a radius search with the newcomer's range. */
function geosearchBaseline(
  client: Redis,
  key: string,
  exclusionsStore: RedisStore,
  w: Workload,
  size: number,
): Contender {
  const claim = (client as unknown as { benchClaimPair: ClaimCommand }).benchClaimPair.bind(client);
  const c: Contender = {
    searched: 0,
    async join(me) {
      const mine = memberOf(me);
      await client.geoadd(key, me.lng, clampLat(me.lat), mine);
      const found = (await client.call(
        "GEOSEARCH",
        key,
        "FROMLONLAT",
        me.lng,
        clampLat(me.lat),
        "BYRADIUS",
        me.rangeKm,
        "km",
        "ASC",
        "WITHDIST",
      )) as [string, string][];
      c.searched += found.length;
      const eligible: { member: string; userId: string; since: number; sessionId: string; d: number }[] = [];
      for (const [member, dist] of found) {
        const [sessionId, userId, range, since] = member.split("|") as [string, string, string, string];
        if (sessionId === me.sessionId || userId === me.userId) continue;
        const d = Number(dist);
        if (d > me.rangeKm || d > Number(range)) continue;
        eligible.push({ member, userId, since: Number(since), sessionId, d });
      }
      let partner: PoolEntry | undefined;
      if (eligible.length > 0) {
        const excluded = await exclusionsStore.exclusions.excluded(
          me.userId,
          eligible.map((e) => e.userId),
        );
        const ranked = eligible.filter((e) => !excluded.has(e.userId));
        ranked.sort((a, b) => a.since - b.since || a.d - b.d || (a.sessionId < b.sessionId ? -1 : 1));
        for (const cand of ranked) {
          if ((await claim(key, mine, cand.member)) === 1) {
            // The claimed user, rebuilt from its index (waiting users) or a stand-in (newcomers).
            partner = cand.since < NEWCOMER_T0 ? w.fill(cand.since - T0, size) : { ...me, since: cand.since };
            break;
          }
          if ((await client.zscore(key, mine)) === null) break;
        }
      }
      if (partner === undefined) await client.zrem(key, mine);
      return partner;
    },
    async putBack(e) {
      await client.geoadd(key, e.lng, clampLat(e.lat), memberOf(e));
    },
    size: () => client.zcard(key),
  };
  return c;
}

interface JoinCase {
  workload: string;
  waiting: number;
  fill: { added: number; claimedPairs: number; seconds: number };
  ours: Map<number, JoinTiming>;
  base: Map<number, JoinTiming>;
}

/** Fills our pool through the matcher until `size` wait; resolves which fill entries wait. */
async function fillPool(store: RedisStore, w: Workload, size: number) {
  const maxAdds = 4 * size;
  const alive = new Uint8Array(maxAdds);
  let added = 0;
  let claimedPairs = 0;
  const start = performance.now();
  const loop = async () => {
    while (added < maxAdds && added - 2 * claimedPairs < size) {
      const i = added++;
      const e = w.fill(i, size);
      alive[i] = 1;
      await store.pool.add(e);
      const found = await searchAndClaim(store, e, undefined);
      if (found !== undefined) {
        alive[i] = 0;
        alive[found.partner.since - T0] = 0;
        claimedPairs++;
      }
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, loop));
  return { alive, added, claimedPairs, seconds: (performance.now() - start) / 1000 };
}

async function joinCase(client: Redis, w: Workload, size: number, caseNo: number): Promise<JoinCase> {
  const store = createRedisStore({ client, keyPrefix: `${prefix}join${caseNo}:` });
  const baseStore = createRedisStore({ client, keyPrefix: `${prefix}join${caseNo}base:` });
  const geoKey = `${prefix}join${caseNo}base:{geo}:waiting`;
  try {
    const fill = await fillPool(store, w, size);
    const waiting = await store.pool.size();
    // The baseline's GEO set holds the same waiting users.
    let batch: (string | number)[] = [];
    let pipeline = client.pipeline();
    let held = 0;
    for (let i = 0; i < fill.added; i++) {
      if (fill.alive[i] !== 1) continue;
      const e = w.fill(i, size);
      batch.push(e.lng, clampLat(e.lat), memberOf(e));
      held++;
      if (batch.length >= 3000) {
        pipeline.geoadd(geoKey, ...batch);
        batch = [];
      }
      if (held % 50_000 === 0) {
        await pipeline.exec();
        pipeline = client.pipeline();
      }
    }
    if (batch.length > 0) pipeline.geoadd(geoKey, ...batch);
    await pipeline.exec();
    const baseSize = await client.zcard(geoKey);
    if (baseSize !== waiting) throw new Error(`the baseline holds ${baseSize} users, ours ${waiting}`);
    log(
      `${w.name} ${compact(size)}: ${fmt(waiting)} waiting after ${fmt(fill.added)} joins ` +
        `(${fmt(fill.claimedPairs)} pairs claimed) in ${fill.seconds.toFixed(1)} s`,
    );

    const contenders = { ours: ours(store), base: geosearchBaseline(client, geoKey, baseStore, w, size) };
    const newcomer = (k: number) => w.newcomer(k, size);
    const best = { ours: new Map<number, JoinTiming>(), base: new Map<number, JoinTiming>() };
    let window = 0;
    for (let round = 0; round < JOIN_ROUNDS; round++) {
      for (const inFlight of JOIN_IN_FLIGHT) {
        const first = ++window * 1_000_000;
        for (const side of ["ours", "base"] as const) {
          const c = contenders[side];
          await joinWindow(c, newcomer, first, inFlight, JOIN_WARMUP_MS);
          // The measured window takes newcomers the warm-up did not, the same for both sides.
          const r = await joinWindow(c, newcomer, first + 500_000, inFlight, JOIN_MEASURE_MS);
          const previous = best[side].get(inFlight);
          if (previous === undefined || r.joinsPerSec > previous.joinsPerSec) best[side].set(inFlight, r);
          log(
            `${w.name} ${compact(size)}, ${inFlight} in flight, ${side === "ours" ? "ours" : "GEOSEARCH"}: ` +
              `${fmt(r.joinsPerSec)} joins/s, p50 ${fmt(r.p50Us)} µs, p99 ${fmt(r.p99Us)} µs, ` +
              `${fmt((100 * r.matched) / r.joins, 1)}% matched` +
              (side === "base" ? `, ${fmt(r.searchedPerJoin)} members returned per search` : ""),
          );
        }
      }
    }
    const [after, afterBase] = await Promise.all([contenders.ours.size(), contenders.base.size()]);
    if (after !== waiting || afterBase !== waiting)
      log(`warning: pool size moved during the joins (ours ${after}, baseline ${afterBase}, was ${waiting})`);
    return {
      workload: w.name,
      waiting,
      fill: { added: fill.added, claimedPairs: fill.claimedPairs, seconds: fill.seconds },
      ...best,
    };
  } finally {
    await Promise.all([store.close(), baseStore.close()]);
    await deleteKeys(client, `${prefix}join${caseNo}`);
  }
}

function joinRows(cases: JoinCase[] | undefined): ResultRow[] {
  const out: ResultRow[] = [];
  for (const w of WORKLOADS) {
    for (const size of SIZES) {
      const c = cases?.find((x) => x.workload === w.name && Math.abs(x.waiting - size) < size / 10);
      for (const inFlight of JOIN_IN_FLIGHT) {
        const o = c?.ours.get(inFlight);
        const b = c?.base.get(inFlight);
        const group = `join+claim ${w.name} ${compact(size)}, ${inFlight} in flight`;
        const baselineName = "GEOSEARCH radius";
        const headline = w.name === "clustered" && size === 100_000;
        out.push(
          row({
            group,
            metric: "joins/s vs GEOSEARCH radius",
            unit: "joins/s",
            ours: o?.joinsPerSec ?? null,
            baseline: b?.joinsPerSec ?? null,
            baselineName,
            higherIsBetter: true,
            ...(headline ? { target: { ratio: 5, op: ">=" as const } } : {}),
          }),
          row({
            group,
            metric: "p50 join latency vs GEOSEARCH radius",
            unit: "µs",
            ours: o?.p50Us ?? null,
            baseline: b?.p50Us ?? null,
            baselineName,
            higherIsBetter: false,
          }),
          row({
            group,
            metric: "p99 join latency vs GEOSEARCH radius",
            unit: "µs",
            ours: o?.p99Us ?? null,
            baseline: b?.p99Us ?? null,
            baselineName,
            higherIsBetter: false,
          }),
        );
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Cross-node relay

interface Cluster {
  kind: ClusterKind;
  nodes: Worker[];
  ports: [number, number];
}

interface Load {
  received: number;
  elapsedMs: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  loadCpu: number;
  /** Both nodes' CPU time per relayed message, microseconds. */
  cpuUsPerMsg: number;
  /** Redis's CPU time per relayed message, microseconds (the Redis is shared: indicative). */
  redisUsPerMsg: number;
  /** Commands Redis processed per relayed message (likewise). */
  redisCmdsPerMsg: number;
}

interface Code {
  node: string;
  load: string;
  nodeArgs: readonly string[];
}

async function startCluster(code: Code, kind: ClusterKind): Promise<Cluster> {
  const execArgv: string[] = [];
  if (profile && kind === "whisper") {
    mkdirSync(PROFILE_DIR, { recursive: true });
    execArgv.push("--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`);
  }
  const nodes = await Promise.all(
    [0, 1].map(() => spawnWorker(code.node, execArgv, undefined, code.nodeArgs)),
  );
  const ports = await Promise.all(
    nodes.map((n, i) =>
      n
        .call<{ port: number }>("start", { kind, prefix: `${prefix}${kind}:`, nodeId: `bench-${kind}-${i}` })
        .then((r) => r.port),
    ),
  );
  return { kind, nodes, ports: [ports[0]!, ports[1]!] };
}

async function stopCluster(c: Cluster): Promise<void> {
  await Promise.all(
    c.nodes.map(async (n) => {
      await n.call("stop").catch(() => undefined);
      await n.exit();
    }),
  );
}

async function cpuOf(c: Cluster): Promise<number> {
  const all = await Promise.all(c.nodes.map((n) => n.call<number>("cpu")));
  return all.reduce((a, b) => a + b, 0);
}

async function measureRelay(
  client: Redis,
  load: Worker,
  c: Cluster,
  pairs: number,
  warmupMs = WARMUP_MS,
): Promise<Load> {
  await load.call("connectPairs", { kind: c.kind, ports: c.ports, pairs });
  await load.call("start", { window: WINDOW });
  await sleep(warmupMs);
  const [cpu0, redis0] = await Promise.all([cpuOf(c), redisCounters(client)]);
  await load.call("mark");
  await sleep(MEASURE_MS);
  const w = await load.call<Omit<Load, "cpuUsPerMsg" | "redisUsPerMsg" | "redisCmdsPerMsg">>("stop");
  const [cpu1, redis1] = await Promise.all([cpuOf(c), redisCounters(client)]);
  await load.call("closeAll");
  return {
    ...w,
    cpuUsPerMsg: (cpu1 - cpu0) / w.received,
    redisUsPerMsg: ((redis1.cpuSeconds - redis0.cpuSeconds) * 1e6) / w.received,
    // Less the two INFO calls of this measurement.
    redisCmdsPerMsg: (redis1.commands - redis0.commands - 1) / w.received,
  };
}

async function relayFigures(client: Redis): Promise<Map<string, Load>> {
  const code: Code = fromSource
    ? { node: NODE, load: LOAD, nodeArgs: NODE_ARGS }
    : {
        ...(await Promise.all([bundle(NODE), bundle(LOAD)]).then(([node, load]) => ({ node, load }))),
        nodeArgs: ["--expose-gc"],
      };
  const best = new Map<string, Load>();
  const clusters: Cluster[] = [];
  let load: Worker | undefined;
  try {
    load = await spawnWorker(code.load, [], undefined, code.nodeArgs);
    for (const kind of KINDS) clusters.push(await startCluster(code, kind));
    for (const c of clusters) await measureRelay(client, load, c, 10, SERVER_WARMUP_MS);
    for (let round = 0; round < RELAY_ROUNDS; round++) {
      for (const pairs of PAIRS) {
        for (const c of clusters) {
          const r = await measureRelay(client, load, c, pairs);
          const key = `${c.kind}:${pairs}`;
          const previous = best.get(key);
          if (previous === undefined || r.perSec > previous.perSec) best.set(key, r);
          log(
            `${NAMES[c.kind]}, ${pairs} pair(s) across 2 nodes: ${fmt(r.perSec)} msg/s, p50 ${r.p50Ms.toFixed(3)} ms, ` +
              `p99 ${r.p99Ms.toFixed(3)} ms, nodes ${r.cpuUsPerMsg.toFixed(1)} µs CPU/msg, Redis ${r.redisUsPerMsg.toFixed(1)} µs CPU/msg and ${r.redisCmdsPerMsg.toFixed(2)} commands/msg, ` +
              `load ${(r.loadCpu * 100).toFixed(0)}% core`,
          );
        }
      }
    }
  } finally {
    await load?.exit();
    await Promise.all(clusters.map(stopCluster));
    if (!fromSource && !profile) for (const f of [code.node, code.load]) rmSync(f, { force: true });
  }
  return best;
}

function relayRows(loads: Map<string, Load> | undefined): ResultRow[] {
  const out: ResultRow[] = [];
  for (const pairs of PAIRS) {
    const o = loads?.get(`whisper:${pairs}`);
    const b = loads?.get(`socketio:${pairs}`);
    const group = `cross-node relay ${pairs} pair${pairs === 1 ? "" : "s"}`;
    const baselineName = NAMES.socketio;
    const figure = (
      metric: string,
      unit: string,
      pick: (l: Load) => number,
      higherIsBetter: boolean,
      target?: ResultRow["target"],
    ) =>
      row({
        group,
        metric: `${metric} vs ${baselineName}`,
        unit,
        ours: o === undefined ? null : pick(o),
        baseline: b === undefined ? null : pick(b),
        baselineName,
        higherIsBetter,
        ...(target === undefined ? {} : { target }),
      });
    out.push(
      figure("msg/s", "msg/s", (l) => l.perSec, true, { ratio: 1, op: ">=" }),
      figure("p50 latency", "ms", (l) => l.p50Ms, false),
      figure("p99 latency", "ms", (l) => l.p99Ms, false),
      figure("server CPU per message (both nodes)", "µs", (l) => l.cpuUsPerMsg, false),
      figure("Redis CPU per message", "µs", (l) => l.redisUsPerMsg, false),
      figure("Redis commands per message", "commands", (l) => l.redisCmdsPerMsg, false),
    );
  }
  return out;
}

// ------------------------------------------------------------------------------------------------

const client = await connectRedis({}, (reason) => log(`Redis not reachable at ${REDIS_URL} (${reason})`));
let joinCases: JoinCase[] | undefined;
let relay: Map<string, Load> | undefined;
if (client === undefined) {
  notes.push(`Redis was not reachable (${REDIS_URL}): nothing measured.`);
} else {
  client.defineCommand("benchClaimPair", { numberOfKeys: 1, lua: BASE_CLAIM });
  const cleanup = () => {
    deleteKeys(client, prefix).finally(() => process.exit(130));
  };
  process.once("SIGINT", cleanup);
  process.once("SIGTERM", cleanup);
  try {
    if (part !== "relay") {
      joinCases = [];
      let caseNo = 0;
      for (const w of WORKLOADS)
        for (const size of SIZES) joinCases.push(await joinCase(client, w, size, caseNo++));
      log(`join+claim done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    if (part !== "join") relay = await relayFigures(client);
  } finally {
    const deleted = await deleteKeys(client, prefix);
    log(`deleted ${deleted} Redis keys`);
    client.disconnect();
  }
}
log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

if (part !== "relay") rows.push(...joinRows(joinCases));
if (part !== "join") rows.push(...relayRows(relay));
for (const c of joinCases ?? []) {
  const searched = [...c.base.entries()]
    .map(([k, t]) => `${fmt(t.searchedPerJoin)} at ${k} in flight`)
    .join(", ");
  notes.push(
    `${c.workload} ${compact(c.waiting)}: ${fmt(c.waiting)} waiting after ${fmt(c.fill.added)} joins through the matcher ` +
      `(${fmt(c.fill.claimedPairs)} pairs claimed while filling); the baseline's GEOSEARCH returned ${searched} members per join.`,
  );
}
notes.push(
  `Join+claim: pool.add + searchAndClaim (+ pool.remove when unmatched) on @whisperchat/store-redis, against a plain GEO set ` +
    "(member `sessionId|userId|rangeKm|since`) searched with GEOSEARCH FROMLONLAT BYRADIUS <newcomer's range> km ASC WITHDIST, " +
    "the mutual rule checked in JS on Redis's distances, exclusions checked like ours, the claim a 5-line Lua script. " +
    `A matched waiting user is put back untimed. ${fmt(JOIN_WARMUP_MS)} ms warm-up and ${fmt(JOIN_MEASURE_MS)} ms window per figure, ` +
    `best of ${JOIN_ROUNDS} round(s), the same newcomers for both sides; one ioredis client; latitudes beyond ±85° are clamped for the baseline's GEO set.`,
  `Workloads (lib/matching-workloads.ts): uniform: ${uniform.description}; clustered: ${clustered.description}.`,
  `Cross-node relay: 2 nodes per server kind, each in its own process, one Redis; each pair has a client on each node; ` +
    `${PAYLOAD_BYTES}-byte texts, ${WINDOW} in flight per client, ${WARMUP_MS} ms warm-up, ${MEASURE_MS} ms window, best of ${RELAY_ROUNDS} round(s), ` +
    "the servers taking turns. WhisperChat acks each message (after its rate-limit checks, the room's history append and the publish); " +
    "Socket.IO relays with io.to(partnerSocketId).emit through @socket.io/redis-adapter (classic pub/sub). " +
    "Both use ioredis clients with enableAutoPipelining. Redis CPU and commands per message are read from INFO on a Redis others may share: indicative.",
  howRun(fromSource, "Server and load processes"),
);
const path = writeResults("redis", rows, { quick, notes });
log(`wrote ${path}`);
if (profile) log(`CPU profiles of the WhisperChat nodes in ${PROFILE_DIR}`);
