import { EARTH_RADIUS_KM, type GeoBox, type PoolEntry, type PoolStore, rangeBoxes } from "@whisperchat/core";
import RBush from "rbush";

/** Slots allocated at first; the columns grow by half whenever they are full. */
const INITIAL_SLOTS = 64;
/**
 * rbush node size. Larger nodes mean fewer node objects per entry: 32 costs about 25 to 35 bytes
 * of tree per entry at 1M entries (16: 40 to 55) for the same search time.
 */
const NODE_SIZE = 32;
/**
 * Added to a half-width before rounding it up to float32, so that the float64 rounding of
 * `lng - half` and friends can never leave the exact box of `rangeBoxes` sticking out.
 */
const MARGIN_DEG = 1e-11;
/**
 * An entry's half-height in degrees is derived from its range (latitude degrees are the same
 * length everywhere): `rangeKm * LAT_DEG_PER_KM + LAT_PAD_DEG`, a little more than the
 * `rangeBoxes` box. `add` checks that it does hold that box, and keeps the box explicitly when not.
 */
const LAT_DEG_PER_KM = (180 / Math.PI / EARTH_RADIUS_KM) * (1 + 1e-12);
const LAT_PAD_DEG = 2e-9;

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** The smallest float32 that is >= `x` (for a finite `x >= 0`). */
function roundUpF32(x: number): number {
  f32[0] = x;
  if (f32[0]! < x) f32Bits[0]!++;
  return f32[0]!;
}

/** FNV-1a over the UTF-16 code units: the hash of the sessionId table. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function holds(box: GeoBox, lat: number, lng: number): boolean {
  return box.minX <= lng && lng <= box.maxX && box.minY <= lat && lat <= box.maxY;
}

/** An rbush node, in the format rbush documents for `toJSON`. */
interface TreeNode {
  children: TreeNode[] | number[];
  leaf: boolean;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/**
 * The waiting pool: an rbush index of what each waiting entry can accept (its range boxes),
 * so that a query with a newcomer's point returns only the entries whose range may hold it.
 * Every method does its work synchronously before returning its promise, so `claim` is atomic
 * within the process.
 *
 * Laid out for memory, since a pool may hold a million sessions (about 110 bytes per entry
 * besides the entry's strings, against about 385 with an object per entry and per box):
 * - an entry is not kept as an object but in a numbered slot of parallel columns: a 32-byte
 *   record (typed arrays) with what a box check reads, `since`, arrays for the strings, the
 *   node id interned;
 * - the rbush items are the slot numbers themselves (small integers, stored unboxed in rbush's
 *   arrays), and their boxes are computed from the columns: the entry's point, plus a
 *   half-height derived from the range and a float32 half-width, both rounded up so that the
 *   box always holds the exact box of `rangeBoxes`;
 * - a range whose box cannot be put that way (it crosses the antimeridian, reaches a pole, or
 *   is huge) keeps its boxes from `rangeBoxes` in a side map; its second box's item is the
 *   negated slot;
 * - sessionId → slot is an open-addressing hash table in an `Int32Array`.
 * Slot 0 is never used (rbush ignores falsy items), and 0 marks an empty table cell.
 *
 * `get` and `candidates` return fresh entry objects equal to the ones added. The columns keep
 * the size of the largest pool seen; `clear` releases them.
 */
export class MemoryPool implements PoolStore {
  readonly #tree: RBush<number>;
  #capacity = 0;
  /** The next never-used slot. */
  #fresh = 1;
  /** The last freed slot (0: none), reused first; a free slot's `#since` holds the next one. */
  #freeHead = 0;
  #count = 0;

  /**
   * What a box check reads, one 32-byte record per slot so that it costs one cache line: as
   * float64 `[lng, lat, rangeKm, -]`, the last 8 bytes holding the box's half-width (float32,
   * in degrees; `-1`: the boxes are in `#explicit`) and the entry's node id (uint32, an index into
   * `#nodes`). Three views of one buffer.
   */
  #rec: Float64Array = new Float64Array(0);
  #rec32: Float32Array = new Float32Array(0);
  #recU32: Uint32Array = new Uint32Array(0);
  #since: Float64Array = new Float64Array(0);
  /** Sized like the typed columns (a pushed array keeps up to half its length spare). */
  #sessionIds: (string | undefined)[] = [];
  #userIds: (string | undefined)[] = [];
  #names: (string | undefined)[] = [];
  readonly #nodes = new NodeIds();
  /** The boxes of the entries that are not a point plus half-widths (one or two), by slot. */
  readonly #explicit = new Map<number, readonly GeoBox[]>();
  /** sessionId → slot, open addressing with linear probing; a power-of-two size, at most half full. */
  #table: Int32Array = new Int32Array(2 * INITIAL_SLOTS);

  constructor() {
    this.#tree = new RBush<number>(NODE_SIZE);
    // rbush calls these unbound (`const toBBox = this.toBBox`): closures, not methods.
    this.#tree.toBBox = (item) => this.#box(item);
    this.#tree.compareMinX = (a, b) => this.#minX(a) - this.#minX(b);
    this.#tree.compareMinY = (a, b) => this.#minY(a) - this.#minY(b);
    this.#grow(INITIAL_SLOTS);
  }

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
    const slot = this.#allocate();
    const r = slot * 4;
    this.#rec[r] = lng;
    this.#rec[r + 1] = lat;
    this.#rec[r + 2] = rangeKm;
    this.#since[slot] = entry.since;
    this.#sessionIds[slot] = entry.sessionId;
    this.#userIds[slot] = entry.userId;
    this.#names[slot] = entry.name;
    this.#recU32[2 * r + 7] = this.#nodes.acquire(entry.nodeId);

    const box = boxes.length === 1 ? boxes[0]! : undefined;
    const halfLat = rangeKm * LAT_DEG_PER_KM + LAT_PAD_DEG;
    const halfLng = box && roundUpF32(Math.max(lng - box.minX, box.maxX - lng) + MARGIN_DEG);
    if (
      box !== undefined &&
      halfLng !== undefined &&
      halfLng < 180 &&
      lat - halfLat <= box.minY &&
      box.maxY <= lat + halfLat
    ) {
      this.#rec32[2 * r + 6] = halfLng;
      this.#tree.insert(slot);
    } else {
      this.#rec32[2 * r + 6] = -1;
      this.#explicit.set(slot, boxes);
      this.#tree.insert(slot);
      if (boxes.length > 1) this.#tree.insert(-slot);
    }
    this.#tableInsert(slot);
    this.#count++;
  }

  async remove(sessionId: string): Promise<boolean> {
    return this.#unindex(sessionId);
  }

  async get(sessionId: string): Promise<PoolEntry | undefined> {
    const slot = this.#find(sessionId);
    return slot === 0 ? undefined : this.#entry(slot);
  }

  async candidates(lat: number, lng: number, _rangeKm?: number): Promise<PoolEntry[]> {
    const out: PoolEntry[] = [];
    let node: TreeNode | undefined = this.#tree.toJSON() as TreeNode;
    if (!holds(node, lat, lng)) return out;
    const rec = this.#rec;
    const rec32 = this.#rec32;
    const stack: TreeNode[] = [];
    let seen: Set<number> | undefined;
    while (node !== undefined) {
      if (node.leaf) {
        for (const item of node.children as number[]) {
          const hx = item > 0 ? rec32[8 * item + 6]! : -1;
          if (hx >= 0) {
            // The same arithmetic as `#box`, so that a leaf agrees with its node's bounds.
            const x = rec[4 * item]!;
            const y = rec[4 * item + 1]!;
            const hy = rec[4 * item + 2]! * LAT_DEG_PER_KM + LAT_PAD_DEG;
            if (x - hx <= lng && lng <= x + hx && y - hy <= lat && lat <= y + hy) out.push(this.#entry(item));
          } else if (holds(this.#explicitBox(item), lat, lng)) {
            // The two boxes of one range never overlap, but a set costs little on this rare path.
            const slot = Math.abs(item);
            seen ??= new Set();
            if (seen.has(slot)) continue;
            seen.add(slot);
            out.push(this.#entry(slot));
          }
        }
      } else {
        for (const child of node.children as TreeNode[]) if (holds(child, lat, lng)) stack.push(child);
      }
      node = stack.pop();
    }
    return out;
  }

  async claim(sessionA: string, sessionB: string): Promise<boolean> {
    if (sessionA === sessionB) return false;
    if (this.#find(sessionA) === 0 || this.#find(sessionB) === 0) return false;
    this.#unindex(sessionA);
    this.#unindex(sessionB);
    return true;
  }

  async size(): Promise<number> {
    return this.#count;
  }

  /** How many sessions are waiting, synchronously. */
  get count(): number {
    return this.#count;
  }

  /** Drops every entry and releases the columns. */
  clear(): void {
    this.#tree.clear();
    this.#explicit.clear();
    this.#nodes.clear();
    this.#fresh = 1;
    this.#freeHead = 0;
    this.#count = 0;
    this.#table = new Int32Array(2 * INITIAL_SLOTS);
    this.#capacity = 0;
    this.#rec = new Float64Array(0);
    this.#rec32 = new Float32Array(0);
    this.#recU32 = new Uint32Array(0);
    this.#since = new Float64Array(0);
    this.#sessionIds = [];
    this.#userIds = [];
    this.#names = [];
    this.#grow(INITIAL_SLOTS);
  }

  // ------------------------------------------------------------------------------------------
  // Slots

  #entry(slot: number): PoolEntry {
    return {
      sessionId: this.#sessionIds[slot]!,
      userId: this.#userIds[slot]!,
      nodeId: this.#nodes.name(this.#recU32[8 * slot + 7]!),
      name: this.#names[slot]!,
      lat: this.#rec[4 * slot + 1]!,
      lng: this.#rec[4 * slot]!,
      rangeKm: this.#rec[4 * slot + 2]!,
      since: this.#since[slot]!,
    };
  }

  #allocate(): number {
    const slot = this.#freeHead;
    if (slot !== 0) {
      this.#freeHead = this.#since[slot]!;
      return slot;
    }
    if (this.#fresh === this.#capacity) this.#grow(Math.ceil(this.#capacity * 1.5));
    return this.#fresh++;
  }

  #release(slot: number): void {
    this.#sessionIds[slot] = undefined;
    this.#userIds[slot] = undefined;
    this.#names[slot] = undefined;
    this.#nodes.release(this.#recU32[8 * slot + 7]!);
    this.#since[slot] = this.#freeHead;
    this.#freeHead = slot;
  }

  /** Resizes every column to `capacity` slots. */
  #grow(capacity: number): void {
    const strings = (old: (string | undefined)[]): (string | undefined)[] => {
      const next = new Array<string | undefined>(capacity).fill(undefined);
      for (let i = 0; i < old.length; i++) next[i] = old[i];
      return next;
    };
    const rec = new Float64Array(4 * capacity);
    rec.set(this.#rec);
    this.#rec = rec;
    this.#rec32 = new Float32Array(rec.buffer);
    this.#recU32 = new Uint32Array(rec.buffer);
    const since = new Float64Array(capacity);
    since.set(this.#since);
    this.#since = since;
    this.#sessionIds = strings(this.#sessionIds);
    this.#userIds = strings(this.#userIds);
    this.#names = strings(this.#names);
    this.#capacity = capacity;
  }

  /** Removes a session's items from the index. Returns whether it was waiting. */
  #unindex(sessionId: string): boolean {
    const slot = this.#find(sessionId);
    if (slot === 0) return false;
    // The boxes are read from the columns: take the items out before clearing the slot.
    this.#tree.remove(slot);
    if (this.#rec32[8 * slot + 6]! < 0) {
      if (this.#explicit.get(slot)!.length > 1) this.#tree.remove(-slot);
      this.#explicit.delete(slot);
    }
    this.#tableDelete(slot);
    this.#release(slot);
    this.#count--;
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Boxes (rbush items are slots; a negative item is the second box of an explicit pair)

  #box(item: number): GeoBox {
    const hx = item > 0 ? this.#rec32[8 * item + 6]! : -1;
    if (hx < 0) return this.#explicitBox(item);
    const x = this.#rec[4 * item]!;
    const y = this.#rec[4 * item + 1]!;
    const hy = this.#rec[4 * item + 2]! * LAT_DEG_PER_KM + LAT_PAD_DEG;
    return { minX: x - hx, minY: y - hy, maxX: x + hx, maxY: y + hy };
  }

  #minX(item: number): number {
    const hx = item > 0 ? this.#rec32[8 * item + 6]! : -1;
    return hx < 0 ? this.#explicitBox(item).minX : this.#rec[4 * item]! - hx;
  }

  #minY(item: number): number {
    const hx = item > 0 ? this.#rec32[8 * item + 6]! : -1;
    return hx < 0
      ? this.#explicitBox(item).minY
      : this.#rec[4 * item + 1]! - (this.#rec[4 * item + 2]! * LAT_DEG_PER_KM + LAT_PAD_DEG);
  }

  #explicitBox(item: number): GeoBox {
    const boxes = this.#explicit.get(Math.abs(item))!;
    return boxes[item > 0 ? 0 : 1]!;
  }

  // ------------------------------------------------------------------------------------------
  // sessionId → slot

  /** The slot of a waiting session, or 0. */
  #find(sessionId: string): number {
    const table = this.#table;
    const mask = table.length - 1;
    for (let i = hashString(sessionId) & mask; ; i = (i + 1) & mask) {
      const slot = table[i]!;
      if (slot === 0 || this.#sessionIds[slot] === sessionId) return slot;
    }
  }

  #tableInsert(slot: number): void {
    if (2 * (this.#count + 1) > this.#table.length) {
      const old = this.#table;
      this.#table = new Int32Array(old.length * 2);
      for (const s of old) if (s !== 0) this.#place(s);
    }
    this.#place(slot);
  }

  #place(slot: number): void {
    const table = this.#table;
    const mask = table.length - 1;
    let i = hashString(this.#sessionIds[slot]!) & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot;
  }

  /** Deletes a slot's cell, shifting later cells of its cluster back (no tombstones). */
  #tableDelete(slot: number): void {
    const table = this.#table;
    const mask = table.length - 1;
    let hole = hashString(this.#sessionIds[slot]!) & mask;
    while (table[hole] !== slot) hole = (hole + 1) & mask;
    table[hole] = 0;
    for (let j = (hole + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const s = table[j]!;
      const home = hashString(this.#sessionIds[s]!) & mask;
      // `s` may move into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (!stays) {
        table[hole] = s;
        table[j] = 0;
        hole = j;
      }
    }
  }
}

/** Interned node ids with reference counts: an entry holds a small index instead of a pointer. */
class NodeIds {
  #names: (string | undefined)[] = [];
  #refs: number[] = [];
  readonly #index = new Map<string, number>();
  #unused: number[] = [];

  acquire(nodeId: string): number {
    let i = this.#index.get(nodeId);
    if (i === undefined) {
      i = this.#unused.pop() ?? this.#names.length;
      this.#names[i] = nodeId;
      this.#refs[i] = 0;
      this.#index.set(nodeId, i);
    }
    this.#refs[i]!++;
    return i;
  }

  release(i: number): void {
    if (--this.#refs[i]! > 0) return;
    this.#index.delete(this.#names[i]!);
    this.#names[i] = undefined;
    this.#unused.push(i);
  }

  name(i: number): string {
    return this.#names[i]!;
  }

  clear(): void {
    this.#names = [];
    this.#refs = [];
    this.#index.clear();
    this.#unused = [];
  }
}
