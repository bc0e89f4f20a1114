import { EARTH_RADIUS_KM, type PoolEntry, type PoolStore } from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, parse, type RedisClient, run, script } from "./redis.js";

/** The Earth radius Redis GEO measures with, in metres (geohash_helper.c). */
const REDIS_EARTH_RADIUS_M = 6372797.560856;
/** Redis distance / core distance for the same two points: Redis's sphere is a little larger. */
const SCALE = REDIS_EARTH_RADIUS_M / (EARTH_RADIUS_KM * 1000);
/**
 * Metres added to every search radius: GEO stores points as 52-bit geohashes (about 0.3 m off
 * at worst), and a boundary point must never fall out by rounding.
 */
const PAD_M = 2;
/** Redis metres per core kilometre, with room for rounding. */
const M_PER_KM = 1000 * SCALE * (1 + 1e-12);
/**
 * Entries and queries beyond this latitude are "polar". Redis GEO accepts up to ±85.05112878°,
 * but a point at that very limit gets a broken geohash, so the pool stays clear of it.
 */
export const GEO_MAX_LAT = 85;
/** Redis's constant for estimating the geohash step of a search (geohash_helper.c). */
const MERCATOR_MAX = 20037726.37;
/**
 * 99.9% of half the Earth's circumference in Redis's metric: a search radius this large is
 * served as the whole Earth.
 */
const WHOLE_EARTH_NEAR_M = 0.999 * Math.PI * REDIS_EARTH_RADIUS_M;
/** A search radius that holds every point of the Earth, whatever the centre. */
const WHOLE_SEARCH_M = 2 * Math.PI * REDIS_EARTH_RADIUS_M;
/** A search circle that reaches within this many degrees of a pole needs the safe path. */
const POLE_MARGIN_DEG = 0.5;
const DEG = 180 / Math.PI;
const RAD = Math.PI / 180;

/** How one tier is searched. */
export interface TierSearch {
  /**
   * `all`: the radius covers the Earth; `radius`: GEOSEARCH BYRADIUS `searchM`; `filtered`:
   * GEOSEARCH with the larger `searchM`, keeping members within `keepM`. In every mode a member
   * is also held to its own range.
   */
  mode: "all" | "radius" | "filtered";
  searchM: number;
  keepM: number;
}

/** The searches `candidates` runs: a GEO-valid centre and one search per tier. */
export interface SearchPlan {
  lat: number;
  lng: number;
  /** The newcomer's range as the member checks use it: "inf" when it spans the Earth. */
  rangeKm: number | "inf";
  /** How far the centre moved from the newcomer's point to be GEO-valid, in Redis metres. */
  movedM: number;
  tiers: TierSearch[];
  /**
   * Whether the polar entries (beyond ±{@link GEO_MAX_LAT}°) are checked: only when the
   * newcomer's circle reaches that far (a point within d of the newcomer lies within d of its
   * latitude), so that searches elsewhere never scan them.
   */
  polar: boolean;
}

/** Longitude as Redis GEO handles it well: 180 is spelt -180 (the same meridian). */
export function geoLng(lng: number): number {
  return lng === 180 ? -180 : lng;
}

/**
 * The smallest radius for which Redis searches at geohash step 1 (the four cells of the whole
 * map, no cell pruning) around a centre at `lat`. Mirrors geohashEstimateStepsByRadius, whose
 * step drops by one above 66° and again above 80°; the thresholds here are a hair higher so
 * that the estimate never lands on the wrong side.
 */
function stepOneRadiusM(lat: number): number {
  const a = Math.abs(lat);
  const adjust = a > 80.01 ? 2 : a > 66.01 ? 1 : 0;
  return (MERCATOR_MAX / 2 ** (2 + adjust)) * 1.01;
}

/**
 * Plans the search for a newcomer at (`lat`, `lng`) with range `rangeKm`.
 *
 * An entry of a tier whose ranges are at most `bound` can accept the newcomer only if it lies
 * within min(rangeKm, bound) of it, so each tier is searched with that radius (converted to
 * Redis's metric and padded); in the search, each member is also held to its own range (it is
 * stored in the member's name), so what comes back is the eligible entries and hardly more. A
 * radius that reaches 99.9% of the way to the antipode is taken as the whole Earth: the tier is
 * searched whole, and the members' own ranges decide. Redis GEO has two blind spots this works
 * around:
 *
 * - a centre beyond ±85°: the search moves to the 85° parallel on the same meridian and grows
 *   by the distance moved (the triangle inequality keeps every entry that was in range);
 * - a circle that reaches over a pole: Redis's bounding box turns inside out there and it
 *   prunes cells it needs, so such a circle is searched with a radius large enough for Redis
 *   to scan the whole map at step 1, and the members are filtered by the real radius in Lua.
 *   Few people live near the poles, so this costs little.
 */
export function searchPlan(
  lat: number,
  lng: number,
  rangeKm: number,
  tierBoundsKm: readonly number[],
): SearchPlan {
  const centreLat = Math.max(-GEO_MAX_LAT, Math.min(GEO_MAX_LAT, lat));
  const movedM = Math.abs(lat - centreLat) * RAD * REDIS_EARTH_RADIUS_M;
  const tiers = [...tierBoundsKm, Number.POSITIVE_INFINITY].map((bound): TierSearch => {
    const km = Math.min(rangeKm, bound);
    const keepM = km * M_PER_KM + PAD_M + movedM;
    if (!(keepM < WHOLE_EARTH_NEAR_M)) {
      return { mode: "all", searchM: WHOLE_SEARCH_M, keepM: Number.POSITIVE_INFINITY };
    }
    const reachDeg = Math.abs(centreLat) + (keepM / REDIS_EARTH_RADIUS_M) * DEG;
    if (reachDeg >= 90 - POLE_MARGIN_DEG) {
      return { mode: "filtered", searchM: Math.max(keepM, stepOneRadiusM(centreLat)), keepM };
    }
    return { mode: "radius", searchM: keepM, keepM };
  });
  const earthWide = !(rangeKm * 1000 * SCALE < WHOLE_EARTH_NEAR_M);
  // With slack: the polar check allows a hair over the range (see CANDIDATES).
  const reachDeg = Math.abs(lat) + ((rangeKm * (1 + 1e-6) + 1) / EARTH_RADIUS_KM) * DEG;
  const polar = earthWide || !(reachDeg < GEO_MAX_LAT);
  return { lat: centreLat, lng: geoLng(lng), rangeKm: earthWide ? "inf" : rangeKm, movedM, tiers, polar };
}

/** The tier of a range: 1-based index of the first bound >= rangeKm (the last tier is open). */
export function tierOf(rangeKm: number, tierBoundsKm: readonly number[]): number {
  for (let i = 0; i < tierBoundsKm.length; i++) {
    if (rangeKm <= (tierBoundsKm[i] as number)) return i + 1;
  }
  return tierBoundsKm.length + 1;
}

// Every pool script gets KEYS = [entries hash, polar hash, tier 1 GEO set, ..., last GEO set].
// An entry's value in the entries hash is "<tier> <range> <JSON>" (tier 0: polar). In its GEO
// set, an entry is the member "<range>:<sessionId>", so that a search can check each member's
// own range without another lookup. A polar entry is "<lat> <lng> <range>" in the polar hash.
export const UNINDEX = `
local function unindex(value, id)
  local t, r = string.match(value, '^(%d+) (%S+) ')
  t = tonumber(t)
  if t == 0 then
    redis.call('HDEL', KEYS[2], id)
  elseif KEYS[2 + t] then
    redis.call('ZREM', KEYS[2 + t], r .. ':' .. id)
  end
end
`;

// Stores (or replaces) an entry: ARGV = sessionId, tier, lng (GEO spelling), lat, range, entry JSON.
export const PUT = `
local function put()
  local id, tier, range = ARGV[1], tonumber(ARGV[2]), ARGV[5]
  local old = redis.call('HGET', KEYS[1], id)
  if old then unindex(old, id) end
  redis.call('HSET', KEYS[1], id, ARGV[2] .. ' ' .. range .. ' ' .. ARGV[6])
  if tier == 0 then
    redis.call('HSET', KEYS[2], id, ARGV[4] .. ' ' .. ARGV[3] .. ' ' .. range)
  else
    redis.call('GEOADD', KEYS[2 + tier], ARGV[3], ARGV[4], range .. ':' .. id)
  end
end
`;

const ADD = script(
  "pool.add",
  `${UNINDEX}${PUT}
put()
return 1
`,
);

/**
 * Lua (after {@link UNINDEX}): removes entry ARGV[1] of the hash KEYS[1] and its index entries;
 * returns 1, or 0 when there was none.
 */
export const REMOVE_ENTRY = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
unindex(old, ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

const REMOVE = script("pool.remove", `${UNINDEX}${REMOVE_ENTRY}`);

const CLAIM = script(
  "pool.claim",
  `${UNINDEX}
local a = redis.call('HGET', KEYS[1], ARGV[1])
if not a then return 0 end
local b = redis.call('HGET', KEYS[1], ARGV[2])
if not b then return 0 end
unindex(a, ARGV[1])
unindex(b, ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1], ARGV[2])
return 1
`,
);

// Lua: search(A, lastGeo) searches the GEO sets KEYS[3..lastGeo] and the polar hash KEYS[2] and
// returns the values of the entries found. A: the newcomer's point (lat, lng) and range (km or
// 'inf'), the GEO-valid centre (lng, lat), how far the centre moved (m), then per tier: search
// radius (m), kept radius (m or 'inf'), and last '1' to check the polar entries or '0' to skip
// them. A member found at distance d (Redis's metric, from the centre) is kept when d <= min(its
// range, the newcomer's range) converted like the plan's radii: only the extras that
// quantisation and the pole detour let through remain.
export const SEARCH = `
local function search(A, lastGeo)
local function num(text)
  if text == 'inf' then return math.huge end
  return tonumber(text)
end
local q, moved = num(A[3]), tonumber(A[6])
local lng, lat = A[4], A[5]
local ids, n = {}, 0
for i = 3, lastGeo do
  local a = 7 + (i - 3) * 2
  local keep = num(A[a + 1])
  local rows = redis.call('GEOSEARCH', KEYS[i], 'FROMLONLAT', lng, lat, 'BYRADIUS', A[a], 'm', 'WITHDIST')
  -- A search over large cells can list a member twice.
  local seen = {}
  for _, row in ipairs(rows) do
    local member, d = row[1], tonumber(row[2])
    if d <= keep and not seen[member] then
      seen[member] = true
      local sep = string.find(member, ':', 1, true)
      local own = math.min(num(string.sub(member, 1, sep - 1)), q) * ${M_PER_KM} + ${PAD_M} + moved
      if d <= own or own >= ${WHOLE_EARTH_NEAR_M} then
        n = n + 1
        ids[n] = string.sub(member, sep + 1)
      end
    end
  end
end
-- Polar entries: few, checked one by one with core's haversine (and a hair of slack).
local plat, plng = math.rad(tonumber(A[1])), math.rad(tonumber(A[2]))
local polar = {}
if A[#A] == '1' then polar = redis.call('HGETALL', KEYS[2]) end
for i = 1, #polar, 2 do
  local elat, elng, erange = string.match(polar[i + 1], '^(%S+) (%S+) (%S+)$')
  elat, elng = math.rad(tonumber(elat)), math.rad(tonumber(elng))
  local s1, s2 = math.sin((elat - plat) / 2), math.sin((elng - plng) / 2)
  local h = s1 * s1 + math.cos(plat) * math.cos(elat) * s2 * s2
  local d = 2 * ${EARTH_RADIUS_KM} * math.asin(math.min(1, math.sqrt(h)))
  local limit = math.min(num(erange), q)
  if d <= limit * (1 + 1e-9) + 1e-6 or limit * ${M_PER_KM} >= ${WHOLE_EARTH_NEAR_M} then
    n = n + 1
    ids[n] = polar[i]
  end
end
local out, m = {}, 0
for s = 1, n, 1000 do
  local values = redis.call('HMGET', KEYS[1], unpack(ids, s, math.min(s + 999, n)))
  for _, v in ipairs(values) do
    if v then
      m = m + 1
      out[m] = v
    end
  end
end
return out
end
`;

// ARGV: the search's arguments (A above).
export const CANDIDATES = script(
  "pool.candidates",
  `${SEARCH}
return search(ARGV, #KEYS)
`,
);

/** A number as the scripts read it (Lua's tonumber, or 'inf'). */
export function numArg(value: number): number | "inf" {
  return Number.isFinite(value) ? value : "inf";
}

export function entryOf(value: string): PoolEntry {
  return parse<PoolEntry>(value.slice(value.indexOf(" ", value.indexOf(" ") + 1) + 1));
}

/**
 * The waiting pool in Redis: a hash of entries, one GEO set per range tier, and a small hash of
 * polar entries. See {@link searchPlan} for how a search stays exact and cheap.
 */
export class RedisPool implements PoolStore {
  readonly #client: RedisClient;
  readonly #keys: readonly string[];
  readonly #entries: string;
  readonly #tiers: readonly number[];

  constructor(client: RedisClient, keys: Keys, tierBoundsKm: readonly number[]) {
    this.#client = client;
    this.#keys = [keys.poolEntries, keys.poolPolar, ...keys.poolTiers];
    this.#entries = keys.poolEntries;
    this.#tiers = tierBoundsKm;
  }

  async add(entry: PoolEntry): Promise<void> {
    const { lat, lng, rangeKm } = entry;
    if (!(Math.abs(lat) <= 90 && Math.abs(lng) <= 180 && rangeKm >= 0)) {
      throw new RangeError(
        `pool.add: lat must be within ±90, lng within ±180 and rangeKm >= 0; got (${lat}, ${lng}) and ${rangeKm}`,
      );
    }
    const tier = Math.abs(lat) > GEO_MAX_LAT ? 0 : tierOf(rangeKm, this.#tiers);
    const args = [entry.sessionId, tier, geoLng(lng), lat, numArg(rangeKm), JSON.stringify(entry)];
    await attempt("pool.add", () => run(this.#client, ADD, this.#keys, args));
  }

  async remove(sessionId: string): Promise<boolean> {
    const removed = await attempt("pool.remove", () => run(this.#client, REMOVE, this.#keys, [sessionId]));
    return removed === 1;
  }

  async get(sessionId: string): Promise<PoolEntry | undefined> {
    const value = await attempt("pool.get", () => this.#client.hget(this.#entries, sessionId));
    return value === null ? undefined : entryOf(value);
  }

  async candidates(lat: number, lng: number, rangeKm: number): Promise<PoolEntry[]> {
    if (!(Math.abs(lat) <= 90 && Math.abs(lng) <= 180 && rangeKm >= 0)) {
      throw new RangeError(
        `pool.candidates: lat must be within ±90, lng within ±180 and rangeKm >= 0; got (${lat}, ${lng}) and ${rangeKm}`,
      );
    }
    const plan = searchPlan(lat, lng, rangeKm, this.#tiers);
    const args: (string | number)[] = [lat, lng, plan.rangeKm, plan.lng, plan.lat, plan.movedM];
    for (const t of plan.tiers) args.push(t.searchM, numArg(t.keepM));
    args.push(plan.polar ? "1" : "0");
    const values = (await attempt("pool.candidates", () =>
      run(this.#client, CANDIDATES, this.#keys, args),
    )) as string[];
    return values.map(entryOf);
  }

  async claim(sessionA: string, sessionB: string): Promise<boolean> {
    if (sessionA === sessionB) return false;
    const claimed = await attempt("pool.claim", () =>
      run(this.#client, CLAIM, this.#keys, [sessionA, sessionB]),
    );
    return claimed === 1;
  }

  async size(): Promise<number> {
    return attempt("pool.size", () => this.#client.hlen(this.#entries));
  }
}
