import assert from "node:assert/strict";
import type { TestApi } from "../test-api.js";
import {
  describeStoreSuite,
  type MakeStore,
  type StoreCapabilityOptions,
  type StorePart,
  sleep,
} from "./shared.js";

/**
 * The conformance tests of `SessionStore`: records kept whole (optional fields too), ttls
 * restarted by each `put`, and `takeover`, a compare-and-set on the token hash that succeeds
 * once per token (exactly one of concurrent takeovers wins), never for a missing, deleted or
 * expired record, and gives the record a new ttl. Needs `store.sessions`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function sessionsConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"sessions">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "sessions", options, ({ s, id, session }) => {
    it("put then get returns the record whole; a minimal record too", async () => {
      const full = session("a", {
        state: "room",
        roomId: id("room"),
        partner: { sessionId: id("b"), userId: id("user-b"), nodeId: id("node-2"), name: "Bob" },
        lastJoin: { lat: 48.8566, lng: 2.3522, rangeKm: 12.5 },
      });
      const waiting = session("w", {
        state: "waiting",
        since: 1_700_000_000_123,
        lastJoin: { lat: -33.8688, lng: 151.2093, rangeKm: 0.5 },
        roles: [],
        guest: true,
      });
      const minimal = session("m");
      for (const record of [full, waiting, minimal]) await s().sessions.put(record, 60_000);
      assert.deepEqual(await s().sessions.get(full.sessionId), full);
      assert.deepEqual(await s().sessions.get(waiting.sessionId), waiting);
      assert.deepEqual(await s().sessions.get(minimal.sessionId), minimal);
      assert.equal(await s().sessions.get(id("missing")), undefined);
    });

    it("put replaces the record", async () => {
      const a = session("a");
      await s().sessions.put(a, 60_000);
      const moved = session("a", {
        state: "waiting",
        since: 1_700_000_000_001,
        lastJoin: { lat: 1, lng: 2, rangeKm: 3 },
        updatedAt: 1_700_000_000_999,
      });
      await s().sessions.put(moved, 60_000);
      assert.deepEqual(await s().sessions.get(a.sessionId), moved);
    });

    it("delete resolves true once, then false; the record is gone", async () => {
      const a = session("a");
      await s().sessions.put(a, 60_000);
      assert.equal(await s().sessions.delete(a.sessionId), true);
      assert.equal(await s().sessions.get(a.sessionId), undefined);
      assert.equal(await s().sessions.delete(a.sessionId), false);
      assert.equal(await s().sessions.delete(id("never")), false);
    });

    it("a record expires ttlMs after put; a later put restarts its life", async () => {
      await s().sessions.put(session("short"), 60);
      await s().sessions.put(session("renewed"), 60);
      await s().sessions.put(session("renewed"), 60_000);
      await s().sessions.put(session("shortened"), 60_000);
      await s().sessions.put(session("shortened"), 60);
      await sleep(150);
      assert.equal(await s().sessions.get(id("short")), undefined);
      assert.equal(await s().sessions.get(id("shortened")), undefined);
      assert.deepEqual(await s().sessions.get(id("renewed")), session("renewed"));
      assert.equal(await s().sessions.delete(id("short")), false, "an expired record is not deleted");
    });

    it("takeover with the right token hash sets the new hash and node and returns the old record", async () => {
      const a = session("a", {
        state: "room",
        roomId: id("room"),
        lastJoin: { lat: 1, lng: 2, rangeKm: 3 },
      });
      await s().sessions.put(a, 60_000);
      const before = await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-2"), "hash-2", 60_000);
      assert.deepEqual(before, a, "resolves the record as it was before");
      assert.deepEqual(await s().sessions.get(a.sessionId), {
        ...a,
        tokenHash: "hash-2",
        nodeId: id("node-2"),
      });
      // The new hash is the token now, and it is single-use too.
      const second = await s().sessions.takeover(a.sessionId, "hash-2", id("node-3"), "hash-3", 60_000);
      assert.deepEqual(second, { ...a, tokenHash: "hash-2", nodeId: id("node-2") });
      assert.equal(
        await s().sessions.takeover(a.sessionId, "hash-2", id("node-4"), "hash-4", 60_000),
        undefined,
      );
      assert.deepEqual(await s().sessions.get(a.sessionId), {
        ...a,
        tokenHash: "hash-3",
        nodeId: id("node-3"),
      });
    });

    it("takeover with a wrong or already-used hash changes nothing and resolves undefined", async () => {
      const a = session("a");
      await s().sessions.put(a, 60_000);
      assert.equal(
        await s().sessions.takeover(a.sessionId, "wrong", id("node-2"), "hash-2", 60_000),
        undefined,
      );
      assert.equal(await s().sessions.takeover(a.sessionId, "", id("node-2"), "hash-2", 60_000), undefined);
      assert.deepEqual(await s().sessions.get(a.sessionId), a);
      assert.ok(await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-2"), "hash-2", 60_000));
      assert.equal(
        await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-3"), "hash-3", 60_000),
        undefined,
        "a token is single-use",
      );
      assert.deepEqual(await s().sessions.get(a.sessionId), {
        ...a,
        tokenHash: "hash-2",
        nodeId: id("node-2"),
      });
    });

    it("concurrent takeovers with one token: exactly one succeeds", async () => {
      for (let round = 0; round < 10; round++) {
        const a = session(`a${round}`);
        await s().sessions.put(a, 60_000);
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, n) =>
            s().sessions.takeover(a.sessionId, a.tokenHash, id(`node-${n}`), `hash-${n}`, 60_000),
          ),
        );
        const winners = results.flatMap((r, n) => (r === undefined ? [] : [n]));
        assert.equal(winners.length, 1, `round ${round}: winners ${winners}`);
        const n = winners[0] as number;
        assert.deepEqual(results[n], a);
        assert.deepEqual(await s().sessions.get(a.sessionId), {
          ...a,
          tokenHash: `hash-${n}`,
          nodeId: id(`node-${n}`),
        });
      }
    });

    it("takeover of a missing, deleted or expired record resolves undefined", async () => {
      assert.equal(
        await s().sessions.takeover(id("missing"), "hash", id("node"), "hash-2", 60_000),
        undefined,
      );
      const d = session("deleted");
      await s().sessions.put(d, 60_000);
      await s().sessions.delete(d.sessionId);
      assert.equal(
        await s().sessions.takeover(d.sessionId, d.tokenHash, id("node"), "hash-2", 60_000),
        undefined,
      );
      const e = session("expired");
      await s().sessions.put(e, 50);
      await sleep(150);
      assert.equal(
        await s().sessions.takeover(e.sessionId, e.tokenHash, id("node"), "hash-2", 60_000),
        undefined,
      );
      assert.equal(await s().sessions.get(e.sessionId), undefined, "a failed takeover does not revive");
    });

    it("takeover gives the record a new life of ttlMs", async () => {
      const a = session("a");
      await s().sessions.put(a, 80);
      assert.ok(await s().sessions.takeover(a.sessionId, a.tokenHash, id("node-2"), "hash-2", 60_000));
      await sleep(150);
      assert.deepEqual(await s().sessions.get(a.sessionId), {
        ...a,
        tokenHash: "hash-2",
        nodeId: id("node-2"),
      });
    });
  });
}
