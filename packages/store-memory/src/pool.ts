import { type GeoBox, type PoolEntry, type PoolStore, rangeBoxes } from "@whisperchat/core";
import RBush from "rbush";

/**
 * One rbush item: a range box pointing at its entry. A range that crosses the antimeridian has
 * two boxes; they point at each other through `twin` so that `candidates` can deduplicate them
 * without a set for the common, single-box case.
 */
interface PoolItem extends GeoBox {
  readonly entry: PoolEntry;
  twin: PoolItem | undefined;
}

/**
 * The waiting pool: an rbush index of what each waiting entry can accept (its range boxes),
 * so that a query with a newcomer's point returns only the entries whose range may hold it.
 * Every method does its work synchronously before returning its promise, so `claim` is atomic
 * within the process.
 */
export class MemoryPool implements PoolStore {
  readonly #tree = new RBush<PoolItem>();
  /** sessionId → the entry's first item (the second, if any, is its `twin`). */
  readonly #bySession = new Map<string, PoolItem>();

  async add(entry: PoolEntry): Promise<void> {
    const { lat, lng, rangeKm } = entry;
    // Core validates client input; this guards the index itself, which NaN boxes would corrupt.
    if (!(Math.abs(lat) <= 90 && Math.abs(lng) <= 180 && rangeKm >= 0)) {
      throw new RangeError(
        `pool.add: lat must be within ±90, lng within ±180 and rangeKm >= 0; got (${lat}, ${lng}) and ${rangeKm}`,
      );
    }
    this.#unindex(entry.sessionId);
    const boxes = rangeBoxes(lat, lng, rangeKm);
    let first: PoolItem | undefined;
    for (const box of boxes) {
      const item: PoolItem = {
        minX: box.minX,
        minY: box.minY,
        maxX: box.maxX,
        maxY: box.maxY,
        entry,
        twin: undefined,
      };
      if (first === undefined) first = item;
      else {
        first.twin = item;
        item.twin = first;
      }
      this.#tree.insert(item);
    }
    if (first !== undefined) this.#bySession.set(entry.sessionId, first);
  }

  async remove(sessionId: string): Promise<boolean> {
    return this.#unindex(sessionId);
  }

  async get(sessionId: string): Promise<PoolEntry | undefined> {
    return this.#bySession.get(sessionId)?.entry;
  }

  async candidates(lat: number, lng: number, _rangeKm?: number): Promise<PoolEntry[]> {
    const hits = this.#tree.search({ minX: lng, minY: lat, maxX: lng, maxY: lat });
    const out: PoolEntry[] = [];
    let seen: Set<PoolEntry> | undefined;
    for (const hit of hits) {
      if (hit.twin !== undefined) {
        seen ??= new Set();
        if (seen.has(hit.entry)) continue;
        seen.add(hit.entry);
      }
      out.push(hit.entry);
    }
    return out;
  }

  async claim(sessionA: string, sessionB: string): Promise<boolean> {
    if (sessionA === sessionB) return false;
    if (!this.#bySession.has(sessionA) || !this.#bySession.has(sessionB)) return false;
    this.#unindex(sessionA);
    this.#unindex(sessionB);
    return true;
  }

  async size(): Promise<number> {
    return this.#bySession.size;
  }

  /** How many sessions are waiting, synchronously. */
  get count(): number {
    return this.#bySession.size;
  }

  /** Drops every entry. */
  clear(): void {
    this.#tree.clear();
    this.#bySession.clear();
  }

  /** Removes a session's items from the index (by identity). Returns whether it was waiting. */
  #unindex(sessionId: string): boolean {
    const first = this.#bySession.get(sessionId);
    if (first === undefined) return false;
    this.#bySession.delete(sessionId);
    this.#tree.remove(first);
    if (first.twin !== undefined) this.#tree.remove(first.twin);
    return true;
  }
}
