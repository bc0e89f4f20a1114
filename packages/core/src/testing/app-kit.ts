import type { Clock } from "../clock.js";
import { createWhisper, type WhisperHub } from "../hub.js";
import type { WhisperOptions } from "../settings.js";
import type { Store } from "../store.js";
import type { TestChatClient } from "./client.js";
import { type ManualClock, manualClock } from "./clock.js";
import { type InProcessConnectOptions, openInProcess } from "./in-process.js";

/**
 * Makes a store on the kit's clock, e.g. `createMemoryStore` from `@whisperchat/store-memory`
 * (which reads the time and runs its sweep on it). A store that only reads the time can take
 * `clock.now()`.
 */
export type StoreFactory = (options: { clock: Clock }) => Store;

/** Options of {@link createTestHub}: every hub option but `store`, `clock` and `now`, and these. */
export interface TestHubOptions<C extends Clock = ManualClock>
  extends Omit<WhisperOptions, "store" | "clock" | "now"> {
  /**
   * The store, or a function the kit calls with `{ clock }` to make one on its clock:
   * `createMemoryStore` from `@whisperchat/store-memory` fits as it is. A store made by the kit
   * is closed by `close()`; one passed ready-made is the caller's. Required.
   */
  store: Store | StoreFactory;
  /**
   * The clock of the hub (every timer: grace periods, cooldowns, token expiry, heartbeats) and
   * of a store the kit makes (limiter buckets, exclusions, expiries). `systemClock` from
   * `@whisperchat/core` runs them on the global timers instead, which vitest's fake timers
   * (`vi.useFakeTimers()`, then `vi.advanceTimersByTimeAsync`) then drive.
   * @default manualClock(): time moves only with `clock.advance(ms)`
   */
  clock?: C;
}

/** A hub for an app's tests, with in-process clients. */
export interface TestHub<C extends Clock = ManualClock> {
  /** The hub: attach the app's event handlers to it, call its admin methods. */
  readonly hub: WhisperHub;
  /** The hub's store. */
  readonly store: Store;
  /** The clock of the hub and the store: with the default manual clock, `await clock.advance(ms)`. */
  readonly clock: C;
  /**
   * Connects an in-process client (see `connectInProcess`): resolves once it has its
   * `welcome`; rejects with a `ConnectionRefusedError` when the app's hooks refuse it.
   */
  connect(options?: InProcessConnectOptions): Promise<TestChatClient>;
  /** Closes the hub (its clients see 1001) and a store the kit made. */
  close(): Promise<void>;
}

const MANUAL_HINT =
  "the hub runs on a manual clock: its timers (grace periods, cooldowns, token expiry) fire only on clock.advance(ms)";

/**
 * A hub on the app's options and a controllable clock, with clients that connect in the same
 * process, without sockets or real timers: tests of an app's hooks, match filter and event
 * handlers that run in milliseconds, under any test runner.
 *
 * ```ts
 * // createMemoryStore: from @whisperchat/store-memory
 * const kit = createTestHub({ store: createMemoryStore, authorize, matchFilter });
 * const ana = await kit.connect({ token: "ana" });
 * await ana.join({ location: { lat: 48.85, lng: 2.35 }, rangeKm: 5 });
 * await kit.clock.advance(30_000);
 * await kit.close();
 * ```
 */
export function createTestHub<C extends Clock = ManualClock>(options: TestHubOptions<C>): TestHub<C> {
  const { store: given, clock: chosen, ...hubOptions } = (options ?? {}) as Partial<TestHubOptions<C>>;
  if (given === undefined || given === null || (typeof given !== "function" && typeof given !== "object")) {
    throw new TypeError(
      "createTestHub: `store` is required: a store, or a function making one, e.g. createTestHub({ store: createMemoryStore }) with createMemoryStore from @whisperchat/store-memory",
    );
  }
  const clock = (chosen ?? manualClock()) as C;
  const ownStore = typeof given === "function";
  const store = ownStore ? given({ clock }) : given;
  const hub = createWhisper({ ...hubOptions, store, clock });
  const hint = typeof (clock as Partial<ManualClock>).advance === "function" ? MANUAL_HINT : undefined;
  let closing: Promise<void> | undefined;
  return {
    hub,
    store,
    clock,
    connect: (connectOptions = {}) => openInProcess(hub, connectOptions, hint),
    close() {
      closing ??= (async () => {
        await hub.close();
        if (ownStore) await store.close();
      })();
      return closing;
    },
  };
}
