import type { Store } from "../store.js";
import { accountsConformance } from "./store/accounts.js";
import { bansConformance } from "./store/bans.js";
import { busConformance } from "./store/bus.js";
import { exclusionsConformance } from "./store/exclusions.js";
import { limiterConformance } from "./store/limiter.js";
import { mailboxConformance } from "./store/mailbox.js";
import { nodesConformance } from "./store/nodes.js";
import { poolConformance } from "./store/pool.js";
import { relayConformance } from "./store/relay.js";
import { roomsConformance } from "./store/rooms.js";
import { sessionsConformance } from "./store/sessions.js";
import type { TestApi } from "./test-api.js";

/** Options of {@link storeConformance}. */
export interface StoreConformanceOptions {
  /**
   * Name of the `describe` block, e.g. the store's package name.
   * @default "Store conformance"
   */
  name?: string;
  /**
   * Whether the store has the optional {@link Store.relay} fast path. Its section of the suite
   * runs when `true`; either way the suite checks that the store has a relay exactly then.
   * @default false
   */
  relay?: boolean;
}

/**
 * Registers the conformance tests of the {@link Store} seam: every store implementation runs
 * them, so that core can rely on the contract written in `store.ts` whatever the store.
 *
 * It runs every capability suite, each in a `describe` block named after its member of the
 * store: `poolConformance` ("pool"), `roomsConformance` ("rooms"), `exclusionsConformance`,
 * `busConformance`, `relayConformance` (only checks that there is no relay unless
 * `options.relay`), `limiterConformance`, `sessionsConformance`, `mailboxConformance`,
 * `accountsConformance`, `bansConformance` and `nodesConformance`. A store still being written
 * can run just the suites of what it implements.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards. Ids are random per
 * test, so a store that shares a backend between instances (a Redis database) does not need to
 * be flushed between tests. Assertions use `node:assert/strict`, so any runner with
 * `describe`/`it`/`beforeEach`/`afterEach` works.
 *
 * @example
 * ```ts
 * import { afterEach, beforeEach, describe, it } from "vitest";
 * import { storeConformance } from "@whisperchat/core/testing";
 * storeConformance({ describe, it, beforeEach, afterEach }, () => createMemoryStore());
 * ```
 */
export function storeConformance(
  t: TestApi,
  makeStore: () => Store | Promise<Store>,
  options?: StoreConformanceOptions,
): void {
  t.describe(options?.name ?? "Store conformance", () => {
    poolConformance(t, makeStore, { name: "pool" });
    roomsConformance(t, makeStore, { name: "rooms" });
    exclusionsConformance(t, makeStore, { name: "exclusions" });
    busConformance(t, makeStore, { name: "bus" });
    relayConformance(t, makeStore, { name: "relay", present: options?.relay === true });
    limiterConformance(t, makeStore, { name: "limiter" });
    sessionsConformance(t, makeStore, { name: "sessions" });
    mailboxConformance(t, makeStore, { name: "mailbox" });
    accountsConformance(t, makeStore, { name: "accounts" });
    bansConformance(t, makeStore, { name: "bans" });
    nodesConformance(t, makeStore, { name: "nodes" });
  });
}
