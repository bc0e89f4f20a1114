import assert from "node:assert/strict";
import type { MessageFrame } from "../../protocol.js";
import type {
  AccountRecord,
  BusMessage,
  PoolEntry,
  RoomRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "../../store.js";
import type { TestApi } from "../test-api.js";

/**
 * The members of a {@link Store} that one capability suite uses, plus `close`. A full `Store`
 * is one, so the same `makeStore` serves every suite; a store still being written can hand a
 * suite just the parts it has.
 */
export type StorePart<K extends keyof Store> = Pick<Store, K | "close">;

/** Opens a fresh store for one test; the suite closes it after the test. */
export type MakeStore<S extends StorePart<never> = Store> = () => S | Promise<S>;

/** Options of every capability suite (`poolConformance`, `roomsConformance`, ...). */
export interface StoreCapabilityOptions {
  /**
   * Name of the suite's `describe` block.
   * @default "Store conformance: <capability>", e.g. "Store conformance: pool"
   */
  name?: string;
}

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same numbers, uniform in [0, 1), on
 * every run. Tests and benchmarks that need reproducible random inputs use this one.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check` holds, polling; fails after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Generated points, biased towards the places spatial indexes get wrong. */
export function pointGenerator(rand: () => number): () => [number, number] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const uniformLng = () => rand() * 360 - 180;
  // Uniform on the sphere.
  const uniformLat = () => (Math.asin(2 * rand() - 1) * 180) / Math.PI;
  const hotspots: [number, number][] = [
    [48.8566, 2.3522],
    [0, 180],
    [0, -180],
    [-16.5, 179.9],
    [65.5, -179.99],
  ];
  return () => {
    const kind = rand();
    if (kind < 0.3) return [uniformLat(), uniformLng()];
    if (kind < 0.45) {
      // Near the antimeridian, spelt on both sides.
      const side = pick([180, -180]);
      return [uniformLat() * 0.8, rand() < 0.2 ? side : side - Math.sign(side) * rand() * 2];
    }
    if (kind < 0.6) {
      // Near or at a pole.
      const pole = pick([90, -90]);
      const lat = rand() < 0.2 ? pole : pole - Math.sign(pole) * rand() * 1.5;
      return [lat, uniformLng()];
    }
    if (kind < 0.8) {
      // Identical points and tight clusters around a few places.
      const [lat, lng] = pick(hotspots);
      if (rand() < 0.3) return [lat, lng];
      const dLng = (rand() - 0.5) * 0.2;
      return [lat + (rand() - 0.5) * 0.2, Math.max(-180, Math.min(180, lng + dLng))];
    }
    return [uniformLat() * 0.5, uniformLng()];
  };
}

/** Ranges from 1 m to 20 000 km, spread evenly on a log scale, plus a few exact values. */
export function rangeGenerator(rand: () => number): () => number {
  return () => {
    if (rand() < 0.1) return [0.001, 1, 10_007.6, 20_000, 20_015.1][Math.floor(rand() * 5)] as number;
    return 10 ** (-3 + rand() * (Math.log10(20_000) + 3));
  };
}

/** The open store of the running test, and records whose ids are unique to that test. */
export interface StoreFixture<S> {
  /** The store of the running test. */
  s(): S;
  /** A store-unique id: the test's random prefix plus `name`. */
  id(name: string): string;
  entry(name: string, lat: number, lng: number, rangeKm: number, extra?: Partial<PoolEntry>): PoolEntry;
  room(name: string): RoomRecord;
  message(n: number): StoredMessage;
  busMessage(to: string, n: number): BusMessage;
  roomFrame(n: number): MessageFrame;
  /** An idle session record with no optional field, unless `extra` sets some. */
  session(name: string, extra?: Partial<SessionRecord>): SessionRecord;
  account(name: string, userId: string, extra?: Partial<AccountRecord>): AccountRecord;
}

/**
 * Registers a capability suite: a `describe` block named `options.name` (or
 * "Store conformance: `capability`") whose tests each get a fresh store from `makeStore`, closed
 * after the test, and ids under a random per-test prefix, so a store that shares a backend
 * between instances (a Redis database) does not need to be flushed between tests.
 */
export function describeStoreSuite<S extends StorePart<never>>(
  t: TestApi,
  makeStore: MakeStore<S>,
  capability: string,
  options: StoreCapabilityOptions | undefined,
  body: (fixture: StoreFixture<S>) => void,
): void {
  t.describe(options?.name ?? `Store conformance: ${capability}`, () => {
    let store: S | undefined;
    let prefix = "";
    let counter = 0;
    t.beforeEach(async () => {
      prefix = `t${Math.random().toString(36).slice(2, 10)}`;
      counter = 0;
      store = await makeStore();
    });
    t.afterEach(async () => {
      const open = store;
      store = undefined;
      await open?.close();
    });

    const id = (name: string): string => `${prefix}:${name}`;
    body({
      s: () => {
        if (store === undefined) {
          throw new Error(`${capability} conformance: the store is not open (beforeEach failed?)`);
        }
        return store;
      },
      id,
      entry: (name, lat, lng, rangeKm, extra) => ({
        sessionId: id(name),
        userId: id(`user-${name}`),
        nodeId: id("node"),
        name: `Name ${name}`,
        lat,
        lng,
        rangeKm,
        since: 1_700_000_000_000 + counter++,
        ...extra,
      }),
      room: (name) => ({
        roomId: id(name),
        members: [
          { sessionId: id(`${name}-a`), userId: id(`${name}-ua`), nodeId: id("node-1"), name: "Ann" },
          { sessionId: id(`${name}-b`), userId: id(`${name}-ub`), nodeId: id("node-2"), name: "Bob" },
        ],
        createdAt: 1_700_000_000_000,
      }),
      message: (n) => ({
        messageId: id(`m${n}`),
        from: id(n % 2 === 0 ? "a" : "b"),
        text: `message ${n}`,
        ts: 1_700_000_000_000 + n,
      }),
      busMessage: (to, n) => {
        const frame: MessageFrame = {
          type: "message",
          roomId: id("room"),
          messageId: id(`m${n}`),
          text: `hello ${n}`,
          ts: 1_700_000_000_000 + n,
        };
        return { to, roomId: id("room"), frame };
      },
      roomFrame: (n) => ({
        type: "message",
        roomId: id("room"),
        messageId: id(`m${n}`),
        text: `text ${n}`,
        ts: 1_700_000_000_000 + n,
      }),
      session: (name, extra) => ({
        sessionId: id(name),
        nodeId: id("node-1"),
        userId: id(`user-${name}`),
        name: `Name ${name}`,
        roles: ["user", "mod"],
        guest: false,
        tokenHash: `hash-of-${name}`,
        state: "idle",
        updatedAt: 1_700_000_000_000,
        ...extra,
      }),
      account: (name, userId, extra) => ({
        userId: id(userId),
        name: `${name[0]?.toUpperCase()}${name.slice(1)}`,
        nameKey: id(name),
        passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        roles: ["user"],
        createdAt: 1_700_000_000_000,
        ...extra,
      }),
    });
  });
}
