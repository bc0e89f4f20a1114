import { createMemoryStore } from "@whisperchat/store-memory";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { RelayStore, Store } from "./store.js";
import { withStoreClose } from "./store-wrap.js";

/** A store built the way class-based stores are: members on a prototype, state in private fields. */
class LayeredStore {
  #closed = 0;
  readonly #relay: RelayStore = {
    send: async () => ({ allowed: 0, retryAfterMs: 0, stored: false, routed: false }),
  };
  readonly extra = "own";
  constructor(readonly inner: Store) {}
  get pool() {
    return this.inner.pool;
  }
  get rooms() {
    return this.inner.rooms;
  }
  get exclusions() {
    return this.inner.exclusions;
  }
  get bus() {
    return this.inner.bus;
  }
  get limiter() {
    return this.inner.limiter;
  }
  get sessions() {
    return this.inner.sessions;
  }
  get mailbox() {
    return this.inner.mailbox;
  }
  get accounts() {
    return this.inner.accounts;
  }
  get bans() {
    return this.inner.bans;
  }
  get nodes() {
    return this.inner.nodes;
  }
  /** Inherited, optional, read from a private field: a plain copy of the sub-stores drops it. */
  get relay(): RelayStore | undefined {
    return this.inner.relay ?? this.#relay;
  }
  closedTimes(): number {
    return this.#closed;
  }
  async close(): Promise<void> {
    this.#closed++;
    await this.inner.close();
  }
}

describe("withStoreClose", () => {
  it("keeps every member of the store, own and inherited, optional ones included", async () => {
    const memory = createMemoryStore();
    const layered = new LayeredStore(memory);
    const store = withStoreClose(layered, (closeStore) => closeStore());
    expectTypeOf(store).toEqualTypeOf<LayeredStore>();
    for (const key of [
      "pool",
      "rooms",
      "exclusions",
      "bus",
      "limiter",
      "sessions",
      "mailbox",
      "nodes",
    ] as const) {
      expect(store[key], key).toBe(memory[key]);
    }
    expect(store.relay).toBeDefined();
    expect(store.relay).toBe(layered.relay);
    expect(store.extra).toBe("own");
    expect("relay" in store).toBe(true);
    // A method that uses private fields works, and is the same function each time.
    expect(store.closedTimes()).toBe(0);
    expect(store.closedTimes).toBe(store.closedTimes);
    // The sub-stores work through the result.
    await store.exclusions.add("a", "b");
    expect(await memory.exclusions.excluded("a", ["b"])).toEqual(new Set(["b"]));
    await store.close();
    expect(layered.closedTimes()).toBe(1);
  });

  it("runs the given close, which decides when the store's own close runs", async () => {
    const layered = new LayeredStore(createMemoryStore());
    const steps: string[] = [];
    const store = withStoreClose(layered, async (closeStore) => {
      steps.push("before");
      await closeStore();
      steps.push(`store closed ${layered.closedTimes()} time(s)`);
    });
    await store.close();
    expect(steps).toEqual(["before", "store closed 1 time(s)"]);
    // The store itself is untouched: its own close is still its own.
    await layered.close();
    expect(layered.closedTimes()).toBe(2);
  });

  it("refuses a close that is not a function", () => {
    const store = createMemoryStore();
    expect(() => withStoreClose(store, "quit" as unknown as () => Promise<void>)).toThrow(
      /close must be a function/,
    );
  });
});
