import { haversineKm } from "./geo.js";
import type { PoolEntry, Store } from "./store.js";

/**
 * A host-app rule on top of the protocol's: return `false` to keep two waiting sessions apart
 * (different languages, no shared interest...). Called with the newcomer first; it must be
 * symmetric and fast (it runs for every candidate of every search).
 */
export type MatchFilter = (newcomer: PoolEntry, candidate: PoolEntry) => boolean;

/** A claimed pair, from the newcomer's side. */
export interface Claimed {
  partner: PoolEntry;
  /** Exact great-circle distance in km (never sent to clients as is). */
  distanceKm: number;
}

/**
 * Searches the pool for the newcomer's partner and claims the pair atomically.
 *
 * The newcomer must already be in the pool ("insert, then search"): of two sessions joining at
 * the same time on any nodes, at least one sees the other, so an eligible pair is never left
 * waiting. Candidates come from the store's range index (every waiting session whose range
 * contains the newcomer's point), then the mutual rule is checked exactly, exclusions and the
 * host filter are applied, and the longest-waiting candidate is claimed first (ties: nearest).
 * `prune` may drop candidates that can never answer (e.g. owned by a dead node).
 * Resolves `undefined` when nobody is eligible, or when the newcomer itself was claimed (or
 * left) meanwhile.
 */
export async function searchAndClaim(
  store: Store,
  me: PoolEntry,
  filter: MatchFilter | undefined,
  prune?: (entries: PoolEntry[]) => Promise<PoolEntry[]>,
): Promise<Claimed | undefined> {
  const found = await store.pool.candidates(me.lat, me.lng, me.rangeKm, me.sessionId);
  const eligible: Claimed[] = [];
  for (const c of found) {
    if (c.sessionId === me.sessionId || c.userId === me.userId) continue;
    const d = haversineKm(me.lat, me.lng, c.lat, c.lng);
    if (d > me.rangeKm || d > c.rangeKm) continue;
    eligible.push({ partner: c, distanceKm: d });
  }
  if (eligible.length === 0) return undefined;
  if (prune !== undefined) {
    const live = new Set(await prune(eligible.map((e) => e.partner)));
    for (let i = eligible.length - 1; i >= 0; i--) {
      if (!live.has((eligible[i] as Claimed).partner)) eligible.splice(i, 1);
    }
    if (eligible.length === 0) return undefined;
  }
  const excluded = await store.exclusions.excluded(
    me.userId,
    eligible.map((e) => e.partner.userId),
  );
  const ranked = eligible.filter(
    (e) => !excluded.has(e.partner.userId) && (filter === undefined || filter(me, e.partner)),
  );
  ranked.sort(
    (a, b) =>
      a.partner.since - b.partner.since ||
      a.distanceKm - b.distanceKm ||
      (a.partner.sessionId < b.partner.sessionId ? -1 : 1),
  );
  for (const cand of ranked) {
    if (await store.pool.claim(me.sessionId, cand.partner.sessionId)) return cand;
    // The claim failed: either the candidate is gone, or we were claimed by someone else.
    if ((await store.pool.get(me.sessionId)) === undefined) return undefined;
  }
  return undefined;
}
