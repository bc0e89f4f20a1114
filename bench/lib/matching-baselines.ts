import {
  type Claimed,
  type ExclusionStore,
  haversineKm,
  type PoolEntry,
  rangeBoxes,
} from "@whisperchat/core";
import RBush from "rbush";

/**
 * The two baselines of the matching benchmark. Each keeps the waiting users its own way and
 * implements the same policy as the matcher: the mutual rule checked exactly, the same user
 * and exclusions skipped, longest-waiting first, ties nearest, then the claim.
 */
export interface BaselinePool {
  add(entry: PoolEntry): void;
  remove(sessionId: string): boolean;
  /** Candidates examined by the last search (for the report). */
  readonly examined: number;
  searchAndClaim(me: PoolEntry, exclusions: ExclusionStore): Promise<Claimed | undefined>;
  readonly size: number;
}

/** Ranks eligible candidates like the matcher and claims the first not excluded. */
async function pick(
  me: PoolEntry,
  eligible: Claimed[],
  exclusions: ExclusionStore,
  claim: (a: string, b: string) => boolean,
): Promise<Claimed | undefined> {
  if (eligible.length === 0) return undefined;
  const excluded = await exclusions.excluded(
    me.userId,
    eligible.map((e) => e.partner.userId),
  );
  const ranked = eligible.filter((e) => !excluded.has(e.partner.userId));
  ranked.sort(
    (a, b) =>
      a.partner.since - b.partner.since ||
      a.distanceKm - b.distanceKm ||
      (a.partner.sessionId < b.partner.sessionId ? -1 : 1),
  );
  for (const cand of ranked) if (claim(me.sessionId, cand.partner.sessionId)) return cand;
  return undefined;
}

function eligibleFrom(me: PoolEntry, c: PoolEntry, out: Claimed[]): void {
  if (c.sessionId === me.sessionId || c.userId === me.userId) return;
  const d = haversineKm(me.lat, me.lng, c.lat, c.lng);
  if (d > me.rangeKm || d > c.rangeKm) return;
  out.push({ partner: c, distanceKm: d });
}

/** (a) A naive scan: an array of every waiting entry, each checked on every search. */
export class NaiveScanPool implements BaselinePool {
  readonly #entries: PoolEntry[] = [];
  readonly #index = new Map<string, number>();
  examined = 0;

  add(entry: PoolEntry): void {
    this.remove(entry.sessionId);
    this.#index.set(entry.sessionId, this.#entries.length);
    this.#entries.push(entry);
  }

  remove(sessionId: string): boolean {
    const i = this.#index.get(sessionId);
    if (i === undefined) return false;
    const last = this.#entries.pop()!;
    if (i < this.#entries.length) {
      this.#entries[i] = last;
      this.#index.set(last.sessionId, i);
    }
    this.#index.delete(sessionId);
    return true;
  }

  get size(): number {
    return this.#entries.length;
  }

  searchAndClaim(me: PoolEntry, exclusions: ExclusionStore): Promise<Claimed | undefined> {
    const eligible: Claimed[] = [];
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i++) eligibleFrom(me, entries[i]!, eligible);
    this.examined = entries.length;
    return pick(me, eligible, exclusions, (a, b) => this.#claim(a, b));
  }

  #claim(a: string, b: string): boolean {
    if (a === b || !this.#index.has(a) || !this.#index.has(b)) return false;
    this.remove(a);
    this.remove(b);
    return true;
  }
}

interface PointItem {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  entry: PoolEntry;
}

/**
 * (b) A radius query: an rbush of the waiting users' points, searched with the newcomer's range
 * boxes (split at the antimeridian, widened at the poles), then filtered by exact mutual
 * distance. This is what a "who is near me" index does.
 */
export class RadiusQueryPool implements BaselinePool {
  readonly #tree = new RBush<PointItem>();
  readonly #items = new Map<string, PointItem>();
  examined = 0;

  /** Fills an empty pool in one go (rbush bulk load). */
  load(entries: readonly PoolEntry[]): void {
    const items = entries.map((entry) => this.#item(entry));
    for (const item of items) this.#items.set(item.entry.sessionId, item);
    this.#tree.load(items);
  }

  add(entry: PoolEntry): void {
    this.remove(entry.sessionId);
    const item = this.#item(entry);
    this.#items.set(entry.sessionId, item);
    this.#tree.insert(item);
  }

  remove(sessionId: string): boolean {
    const item = this.#items.get(sessionId);
    if (item === undefined) return false;
    this.#items.delete(sessionId);
    this.#tree.remove(item);
    return true;
  }

  get size(): number {
    return this.#items.size;
  }

  searchAndClaim(me: PoolEntry, exclusions: ExclusionStore): Promise<Claimed | undefined> {
    const eligible: Claimed[] = [];
    let examined = 0;
    for (const box of rangeBoxes(me.lat, me.lng, me.rangeKm)) {
      const hits = this.#tree.search(box);
      examined += hits.length;
      for (const hit of hits) eligibleFrom(me, hit.entry, eligible);
    }
    this.examined = examined;
    return pick(me, eligible, exclusions, (a, b) => this.#claim(a, b));
  }

  #item(entry: PoolEntry): PointItem {
    return { minX: entry.lng, minY: entry.lat, maxX: entry.lng, maxY: entry.lat, entry };
  }

  #claim(a: string, b: string): boolean {
    if (a === b || !this.#items.has(a) || !this.#items.has(b)) return false;
    this.remove(a);
    this.remove(b);
    return true;
  }
}
