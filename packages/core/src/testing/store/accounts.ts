import assert from "node:assert/strict";
import type { TestApi } from "../test-api.js";
import { describeStoreSuite, type MakeStore, type StoreCapabilityOptions, type StorePart } from "./shared.js";

/**
 * The conformance tests of `AccountStore`: accounts kept whole, `create` that succeeds
 * once per name (exactly one of concurrent creates wins), and `update` that never creates.
 * Needs `store.accounts`.
 *
 * Each test gets a fresh store from `makeStore` and closes it afterwards; see
 * `storeConformance`, which runs every capability suite.
 */
export function accountsConformance(
  t: TestApi,
  makeStore: MakeStore<StorePart<"accounts">>,
  options?: StoreCapabilityOptions,
): void {
  const { it } = t;
  describeStoreSuite(t, makeStore, "accounts", options, ({ s, id, account }) => {
    it("create then get returns the account whole", async () => {
      const a = account("ann", "u1");
      assert.equal(await s().accounts.create(a), true);
      assert.deepEqual(await s().accounts.get(a.nameKey), a);
      const b = account("bob", "u2", { roles: [] });
      assert.equal(await s().accounts.create(b), true);
      assert.deepEqual(await s().accounts.get(b.nameKey), b);
      assert.equal(await s().accounts.get(id("nobody")), undefined);
    });

    it("a second create of a name resolves false and changes nothing", async () => {
      const a = account("ann", "u1");
      assert.equal(await s().accounts.create(a), true);
      const again = account("ann", "u2", { name: "ANN", passwordHash: "$argon2id$other", roles: [] });
      assert.equal(await s().accounts.create(again), false);
      assert.deepEqual(await s().accounts.get(a.nameKey), a);
    });

    it("concurrent creates of one name: exactly one succeeds", async () => {
      for (let round = 0; round < 10; round++) {
        const candidates = Array.from({ length: 5 }, (_, n) => account(`name${round}`, `u${n}`));
        const results = await Promise.all(candidates.map((c) => s().accounts.create(c)));
        const winners = results.flatMap((r, n) => (r ? [n] : []));
        assert.equal(winners.length, 1, `round ${round}: winners ${winners}`);
        assert.deepEqual(
          await s().accounts.get(id(`name${round}`)),
          candidates[winners[0] as number],
          "the winner's account is the one stored",
        );
      }
    });

    it("update replaces an existing account and resolves true; a missing one resolves false", async () => {
      const a = account("ann", "u1");
      await s().accounts.create(a);
      const rehashed = { ...a, passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$new", roles: ["admin"] };
      assert.equal(await s().accounts.update(rehashed), true);
      assert.deepEqual(await s().accounts.get(a.nameKey), rehashed);
      const ghost = account("ghost", "u9");
      assert.equal(await s().accounts.update(ghost), false);
      assert.equal(await s().accounts.get(ghost.nameKey), undefined, "update does not create");
      assert.equal(await s().accounts.create(ghost), true);
    });
  });
}
