import { randomBytes } from "node:crypto";
import type { PoolEntry, PoolStore } from "@whisperchat/core";
import { cellOf, cellsWithin, type Level, levelsOf, type PoolCellLevel } from "./cells.js";
import {
  CANDIDATES,
  entryOf,
  GEO_MAX_LAT,
  geoLng,
  numArg,
  PUT,
  REMOVE_ENTRY,
  SEARCH,
  type SearchPlan,
  searchPlan,
  type TierSearch,
  tierOf,
  UNINDEX,
} from "./pool.js";
import { attempt, type RedisClient, run, script } from "./redis.js";

// The geo-sharded pool. docs/scaling.md ("The geo-sharded pool") states the protocol and the
// argument for its two invariants; this file is that protocol.
//
// Every cell is a hash tag with KEYS = [entries hash, polar hash, the GEO set of each tier of its
// level..., reservations hash] (the polar tag has no GEO set and keeps its entries in the polar
// hash, tier 0). An entry's value and GEO member are those of the one-tag pool (pool.ts), with
// the tier numbered within its level. A reservation is "<token> <lease end, ms of Redis's clock>".

const HELD = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- A live reservation of id: its ms left and token; a stale one is dropped.
local function held(id)
  local r = redis.call('HGET', KEYS[#KEYS], id)
  if not r then return nil end
  local tok, ends = string.match(r, '^(%S+) (%S+)$')
  local left = tonumber(ends) - nowMs()
  if left > 0 then return left, tok end
  redis.call('HDEL', KEYS[#KEYS], id)
  return nil
end
`;

// ARGV: id, tier (within the level; 0: polar), lng (GEO spelling), lat, range, entry JSON, then
// optionally the arguments of this cell's search for the newcomer (see SEARCH in pool.ts), run
// after the add in the same script. Returns {2 when the cell was empty before (so the cell list
// learns it) or 1, then the values the search found}.
const ADD = script(
  "pool.cell.add",
  `${UNINDEX}${PUT}${SEARCH}
local fresh = redis.call('HLEN', KEYS[1]) == 0
redis.call('HDEL', KEYS[#KEYS], ARGV[1])
put()
local out = {}
if #ARGV > 6 then out = search({unpack(ARGV, 7)}, #KEYS - 1) end
table.insert(out, 1, fresh and 2 or 1)
return out
`,
);

// ARGV: id. 1 removed, 0 absent, -ms: a claim holds it (look again within that time).
const REMOVE = script(
  "pool.cell.remove",
  `${UNINDEX}${HELD}
local left = held(ARGV[1])
if left then return -left end
${REMOVE_ENTRY}`,
);

// ARGV: id, token, lease ms. 1 reserved, 0 absent, -ms: another claim holds it.
const RESERVE = script(
  "pool.cell.reserve",
  `${HELD}
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local left, tok = held(ARGV[1])
if left and tok ~= ARGV[2] then return -left end
redis.call('HSET', KEYS[#KEYS], ARGV[1], ARGV[2] .. ' ' .. (nowMs() + tonumber(ARGV[3])))
return 1
`,
);

// ARGV: id. Removes an entry no live reservation holds and returns its value; 0 if absent, -ms
// if another claim holds it (the second step of a claim across cells: reserve, take, commit).
const TAKE = script(
  "pool.cell.take",
  `${UNINDEX}${HELD}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local left = held(ARGV[1])
if left then return -left end
unindex(old, ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return old
`,
);

// ARGV: id, token. Removes the entry if this token still holds it (even past its lease: nobody
// took it, or the token would differ) and returns the entry's value; false otherwise.
const COMMIT = script(
  "pool.cell.commit",
  `${UNINDEX}
local r = redis.call('HGET', KEYS[#KEYS], ARGV[1])
if not r or string.match(r, '^(%S+) ') ~= ARGV[2] then return false end
redis.call('HDEL', KEYS[#KEYS], ARGV[1])
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return false end
unindex(old, ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return old
`,
);

// ARGV: id, token. Drops the reservation if this token holds it.
const RELEASE = script(
  "pool.cell.release",
  `
local r = redis.call('HGET', KEYS[#KEYS], ARGV[1])
if r and string.match(r, '^(%S+) ') == ARGV[2] then redis.call('HDEL', KEYS[#KEYS], ARGV[1]) end
return 1
`,
);

// ARGV: a, b (one cell). 1 both removed, 0 one absent, -ms: a claim holds one of them.
const CLAIM_PAIR = script(
  "pool.cell.claim",
  `${UNINDEX}${HELD}
local a = redis.call('HGET', KEYS[1], ARGV[1])
if not a then return 0 end
local b = redis.call('HGET', KEYS[1], ARGV[2])
if not b then return 0 end
local left = held(ARGV[1]) or held(ARGV[2])
if left then return -left end
unindex(a, ARGV[1])
unindex(b, ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1], ARGV[2])
return 1
`,
);

/** Options of the geo-sharded pool. */
export interface PoolShardingOptions {
  /**
   * The levels of the grid: which range tiers live in cells of which size.
   * @default DEFAULT_POOL_LEVELS: tiers up to 10 km in 1° cells, up to 300 km in 10° cells, the rest in 45° cells
   */
  levels?: readonly PoolCellLevel[];
  /**
   * How long a claim's reservation of an entry holds, in ms, before another claim may take it:
   * the longest a node may stall between the steps of one claim (a claim normally takes a few
   * round trips). A claim that finds an entry held waits at most this long.
   * @default 5000
   */
  leaseMs?: number;
}

/** One cell: its hash tag's keys. */
interface Cell {
  readonly tag: string;
  /** [entries, polar, GEO sets of the level's tiers..., reservations]. */
  readonly keys: readonly string[];
  /** The level, or undefined for the polar tag. */
  readonly level: Level | undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Local memory of which cell holds a pool key: dropped whole past this many. */
const MAX_REMEMBERED = 100_000;
/** Directory keys outlive a crash that skipped their deletion by at most this long. */
const DIRECTORY_TTL_MS = 86_400_000;

/**
 * The waiting pool split by geography over many hash tags, for Redis Cluster: each cell of a
 * level's grid holds the entries of its tiers, so waiting users spread over the masters and a
 * join touches only the cells its range reaches. Two entries of one cell are claimed by one
 * script; two of different cells, in a fixed global order, by reserving the first, taking the
 * second and committing the first (docs/scaling.md, "The geo-sharded pool").
 */
export class ShardedRedisPool implements PoolStore {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #tiers: readonly number[];
  readonly #levels: readonly Level[];
  readonly #leaseMs: number;
  readonly #polar: Cell;
  /** Tier index (1-based, over all tiers) → its level and its index within it. */
  readonly #tierPlace = new Map<number, { level: Level; local: number }>();
  readonly #cells = new Map<string, Cell>();
  /** What the add script of an entry found in its own cell, for that entry's search. */
  readonly #found = new Map<
    string,
    { tag: string; lat: number; lng: number; rangeKm: number; values: string[] }
  >();
  /** Pool key → cell tag, for entries this node added or saw. */
  readonly #where = new Map<string, string>();
  readonly #cellList: string;

  constructor(
    client: RedisClient,
    prefix: string,
    tierBoundsKm: readonly number[],
    levels: readonly PoolCellLevel[],
    leaseMs: number,
  ) {
    this.#client = client;
    this.#prefix = prefix;
    this.#tiers = tierBoundsKm;
    this.#levels = levelsOf(tierBoundsKm, levels);
    this.#leaseMs = leaseMs;
    for (const level of this.#levels) {
      level.tiers.forEach((t, i) => {
        this.#tierPlace.set(t, { level, local: i + 1 });
      });
    }
    this.#polar = this.#cell(`${prefix}pool:polar`, undefined);
    this.#cellList = `${prefix}{${prefix}pool}:cells`;
  }

  /** The cell with this tag (built once). */
  #cell(tag: string, level: Level | undefined): Cell {
    let cell = this.#cells.get(tag);
    if (cell === undefined) {
      const base = `${this.#prefix}{${tag}}`;
      const geo =
        level === undefined ? [] : level.tiers.map((t) => `${base}:geo:${this.#tiers[t - 1] ?? "max"}`);
      cell = { tag, keys: [`${base}:entries`, `${base}:polar`, ...geo, `${base}:res`], level };
      this.#cells.set(tag, cell);
    }
    return cell;
  }

  #gridCell(level: Level, band: number, col: number): Cell {
    return this.#cell(`${this.#prefix}pool:${level.cellDeg}:${band}:${col}`, level);
  }

  /** The cell a tag names (read back from the directory or the cell list). */
  #cellOfTag(tag: string): Cell | undefined {
    const known = this.#cells.get(tag);
    if (known !== undefined) return known;
    if (tag === this.#polar.tag) return this.#polar;
    const m = /pool:([\d.]+):(\d+):(\d+)$/.exec(tag);
    const level = m && this.#levels.find((l) => String(l.cellDeg) === m[1]);
    return level ? this.#cell(tag, level) : undefined;
  }

  #directory(poolKey: string): string {
    return `${this.#prefix}pooldir:{${poolKey}}`;
  }

  #remember(poolKey: string, tag: string): void {
    if (this.#where.size >= MAX_REMEMBERED) this.#where.clear();
    this.#where.set(poolKey, tag);
  }

  /** Where an entry is: remembered here, else from the directory. */
  async #locate(poolKey: string, fresh = false): Promise<Cell | undefined> {
    const known = fresh ? undefined : this.#where.get(poolKey);
    if (known !== undefined) return this.#cellOfTag(known);
    const tag = await this.#client.get(this.#directory(poolKey));
    if (tag === null) return undefined;
    this.#remember(poolKey, tag);
    return this.#cellOfTag(tag);
  }

  /**
   * Runs a cell script that answers "held for n ms" as -n: waits (a little longer each time, never
   * past the lease) and runs it again until it answers otherwise.
   */
  async #untilFree(op: () => Promise<unknown>): Promise<unknown> {
    let pause = 1;
    for (;;) {
      const answer = await op();
      if (typeof answer !== "number" || answer >= 0) return answer;
      await sleep(Math.min(pause, -answer + 1));
      pause = Math.min(pause * 2, 50);
    }
  }

  add(entry: PoolEntry): Promise<void> {
    return this.#put(entry, true);
  }

  /**
   * Adds (or replaces) an entry in its cell; with `search`, the same script also searches that
   * cell for the entry, as `candidates` would, and the result is kept for the entry's own search.
   */
  async #put(entry: PoolEntry, search: boolean): Promise<void> {
    const { lat, lng, rangeKm } = entry;
    if (!(Math.abs(lat) <= 90 && Math.abs(lng) <= 180 && rangeKm >= 0)) {
      throw new RangeError(
        `pool.add: lat must be within ±90, lng within ±180 and rangeKm >= 0; got (${lat}, ${lng}) and ${rangeKm}`,
      );
    }
    let cell = this.#polar;
    let tier = 0;
    if (Math.abs(lat) <= GEO_MAX_LAT) {
      const place = this.#tierPlace.get(tierOf(rangeKm, this.#tiers)) as { level: Level; local: number };
      const [band, col] = cellOf(place.level, lat, lng);
      cell = this.#gridCell(place.level, band, col);
      tier = place.local;
    }
    const id = entry.sessionId;
    const args: (string | number)[] = [id, tier, geoLng(lng), lat, numArg(rangeKm), JSON.stringify(entry)];
    if (search)
      args.push(...this.#searchArgs(lat, lng, searchPlan(lat, lng, rangeKm, this.#tiers), cell.level));
    await attempt("pool.add", async () => {
      // The directory learns the new cell and says where a replaced entry was (SET ... GET), while
      // the cell takes the entry: one round trip.
      const [before, added] = (await Promise.all([
        this.#client.set(this.#directory(id), cell.tag, "PX", DIRECTORY_TTL_MS, "GET"),
        run(this.#client, ADD, cell.keys, args),
      ])) as [string | null, [number, ...string[]]];
      this.#remember(id, cell.tag);
      if (search) {
        if (this.#found.size >= MAX_REMEMBERED) this.#found.clear();
        this.#found.set(id, { tag: cell.tag, lat, lng, rangeKm, values: added.slice(1) as string[] });
      }
      if (added[0] === 2) await this.#client.sadd(this.#cellList, cell.tag);
      // A replaced entry in another cell: take it out there.
      const old = before === null ? undefined : this.#cellOfTag(before);
      if (old !== undefined && old.tag !== cell.tag) {
        await this.#untilFree(() => run(this.#client, REMOVE, old.keys, [id]));
      }
    });
  }

  /**
   * The arguments of the search script (SEARCH in pool.ts) for a newcomer at (`lat`, `lng`) in a
   * cell of `level`: that level's tiers; the polar tag (`level` undefined) checks its entries.
   */
  #searchArgs(lat: number, lng: number, plan: SearchPlan, level: Level | undefined): (string | number)[] {
    const args: (string | number)[] = [lat, lng, plan.rangeKm, plan.lng, plan.lat, plan.movedM];
    for (const t of level?.tiers ?? []) {
      const tier = plan.tiers[t - 1] as TierSearch;
      args.push(tier.searchM, numArg(tier.keepM));
    }
    args.push(level === undefined ? "1" : "0");
    return args;
  }

  async remove(sessionId: string): Promise<boolean> {
    return attempt("pool.remove", async () => {
      const remembered = this.#where.has(sessionId);
      let cell = await this.#locate(sessionId);
      let removed = cell
        ? await this.#untilFree(() => run(this.#client, REMOVE, (cell as Cell).keys, [sessionId]))
        : 0;
      if (removed !== 1 && remembered) {
        // What this node remembered may be stale (the entry moved): ask the directory.
        const now = await this.#locate(sessionId, true);
        if (now !== undefined && now.tag !== cell?.tag) {
          cell = now;
          removed = await this.#untilFree(() => run(this.#client, REMOVE, now.keys, [sessionId]));
        }
      }
      if (removed === 1) await this.#forget([sessionId]);
      return removed === 1;
    });
  }

  async #forget(poolKeys: readonly string[]): Promise<void> {
    for (const k of poolKeys) this.#where.delete(k);
    await Promise.all(poolKeys.map((k) => this.#client.del(this.#directory(k))));
  }

  async get(sessionId: string): Promise<PoolEntry | undefined> {
    return attempt("pool.get", async () => {
      const remembered = this.#where.has(sessionId);
      const cell = await this.#locate(sessionId);
      let value = cell ? await this.#client.hget(cell.keys[0] as string, sessionId) : null;
      if (value === null && remembered) {
        const now = await this.#locate(sessionId, true);
        if (now !== undefined && now.tag !== cell?.tag)
          value = await this.#client.hget(now.keys[0] as string, sessionId);
      }
      return value === null ? undefined : entryOf(value);
    });
  }

  async candidates(lat: number, lng: number, rangeKm: number, newcomer?: string): Promise<PoolEntry[]> {
    if (!(Math.abs(lat) <= 90 && Math.abs(lng) <= 180 && rangeKm >= 0)) {
      throw new RangeError(
        `pool.candidates: lat must be within ±90, lng within ±180 and rangeKm >= 0; got (${lat}, ${lng}) and ${rangeKm}`,
      );
    }
    // The newcomer's own cell was searched by its add script, after the add: use that (once).
    let found = newcomer === undefined ? undefined : this.#found.get(newcomer);
    if (found !== undefined) {
      this.#found.delete(newcomer as string);
      if (found.lat !== lat || found.lng !== lng || found.rangeKm !== rangeKm) found = undefined;
    }
    const plan = searchPlan(lat, lng, rangeKm, this.#tiers);
    const searches: Promise<unknown>[] = [];
    const tags: string[] = [];
    const searchIn = (cell: Cell, args: (string | number)[]) => {
      tags.push(cell.tag);
      if (cell.tag === found?.tag) searches.push(Promise.resolve(found.values));
      // The reservations key is not a GEO set: the search takes the keys before it.
      else searches.push(run(this.#client, CANDIDATES, cell.keys.slice(0, -1), args));
    };
    for (const level of this.#levels) {
      const args = this.#searchArgs(lat, lng, plan, level);
      for (const [band, col] of cellsWithin(level, lat, lng, Math.min(rangeKm, level.capKm))) {
        searchIn(this.#gridCell(level, band, col), args);
      }
    }
    if (plan.polar) searchIn(this.#polar, this.#searchArgs(lat, lng, plan, undefined));
    const results = (await attempt("pool.candidates", () => Promise.all(searches))) as string[][];
    const out: PoolEntry[] = [];
    results.forEach((values, i) => {
      for (const value of values) {
        const entry = entryOf(value);
        this.#remember(entry.sessionId, tags[i] as string);
        out.push(entry);
      }
    });
    return out;
  }

  async claim(sessionA: string, sessionB: string): Promise<boolean> {
    if (sessionA === sessionB) return false;
    return attempt("pool.claim", async () => {
      const [a, b] = await Promise.all([this.#locate(sessionA), this.#locate(sessionB)]);
      if (a === undefined || b === undefined) return false;
      if (a.tag === b.tag) {
        const claimed = await this.#untilFree(() =>
          run(this.#client, CLAIM_PAIR, a.keys, [sessionA, sessionB]),
        );
        if (claimed === 1) await this.#forget([sessionA, sessionB]);
        return claimed === 1;
      }
      // Reservations in one global order (cell tag, then id): two claims never each hold what
      // the other waits for.
      const steps: [string, Cell][] = [
        [sessionA, a],
        [sessionB, b],
      ];
      steps.sort(([ia, ca], [ib, cb]) => (ca.tag < cb.tag ? -1 : ca.tag > cb.tag ? 1 : ia < ib ? -1 : 1));
      const [[id1, c1], [id2, c2]] = steps as [[string, Cell], [string, Cell]];
      const token = randomBytes(9).toString("base64url");
      const reserve = (id: string, cell: Cell) =>
        this.#untilFree(() => run(this.#client, RESERVE, cell.keys, [id, token, this.#leaseMs]));
      if ((await reserve(id1, c1)) !== 1) return false;
      // The second needs no reservation of its own: taken at once if no other claim holds it.
      const v2 = await this.#untilFree(() => run(this.#client, TAKE, c2.keys, [id2]));
      if (typeof v2 !== "string") {
        await run(this.#client, RELEASE, c1.keys, [id1, token]);
        return false;
      }
      const v1 = await run(this.#client, COMMIT, c1.keys, [id1, token]);
      if (typeof v1 === "string") {
        await this.#forget([sessionA, sessionB]);
        return true;
      }
      // The first's lease ran out while this node stalled, and another claim or a remove took
      // it: put the second back as it was (same place in the queue), and report no claim.
      await this.#put(entryOf(v2), false);
      return false;
    });
  }

  async size(): Promise<number> {
    return attempt("pool.size", async () => {
      const tags = await this.#client.smembers(this.#cellList);
      const cells = tags.map((t) => this.#cellOfTag(t)).filter((c): c is Cell => c !== undefined);
      const counts = await Promise.all(cells.map((c) => this.#client.hlen(c.keys[0] as string)));
      return counts.reduce((sum, n) => sum + n, 0);
    });
  }
}
