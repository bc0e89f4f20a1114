import { describe, expect, it } from "vitest";
import type { Store } from "../store.js";
import { poolConformance, relayConformance, storeConformance } from "./index.js";
import type { TestApi } from "./test-api.js";

/** A runner that records what a suite registers (tests as "block > block > test"), running none. */
function recorder() {
  const path: string[] = [];
  const tests: string[] = [];
  const hooks: string[] = [];
  const t: TestApi = {
    describe: (name, fn) => {
      path.push(name);
      fn();
      path.pop();
    },
    it: (name) => {
      tests.push([...path, name].join(" > "));
    },
    beforeEach: () => {
      hooks.push(`beforeEach in ${path.join(" > ")}`);
    },
    afterEach: () => {
      hooks.push(`afterEach in ${path.join(" > ")}`);
    },
  };
  const makeStore = (): Store => {
    throw new Error("no test runs while registering");
  };
  return { t, makeStore, tests, hooks };
}

const capabilities = [
  "pool",
  "rooms",
  "exclusions",
  "bus",
  "relay",
  "limiter",
  "sessions",
  "mailbox",
  "accounts",
  "bans",
  "nodes",
];

const blocksOf = (tests: string[]) => [...new Set(tests.map((name) => name.split(" > ")[1]))];
const under = (tests: string[], block: string) => tests.filter((name) => name.startsWith(`${block} > `));

describe("storeConformance", () => {
  it("runs every capability suite in its own block, each with its own fresh store", () => {
    const r = recorder();
    storeConformance(r.t, r.makeStore, { name: "my-store" });
    expect(r.tests.every((name) => name.startsWith("my-store > "))).toBe(true);
    expect(blocksOf(r.tests)).toEqual(capabilities);
    expect(r.hooks).toEqual(
      capabilities.flatMap((c) => [`beforeEach in my-store > ${c}`, `afterEach in my-store > ${c}`]),
    );
  });

  it("without relay, the relay block only checks that the store has none; the rest is the same", () => {
    const without = recorder();
    storeConformance(without.t, without.makeStore, { name: "s" });
    const withRelay = recorder();
    storeConformance(withRelay.t, withRelay.makeStore, { name: "s", relay: true });
    expect(under(without.tests, "s > relay")).toEqual(["s > relay > the store has no relay"]);
    const relayTests = under(withRelay.tests, "s > relay");
    expect(relayTests[0]).toBe("s > relay > the store has a relay");
    expect(relayTests.length).toBeGreaterThan(5);
    const notRelay = (tests: string[]) => tests.filter((name) => !name.startsWith("s > relay > "));
    expect(notRelay(withRelay.tests)).toEqual(notRelay(without.tests));
  });
});

describe("a capability suite alone", () => {
  it("registers the same tests as in storeConformance, under its own name and setup", () => {
    const all = recorder();
    storeConformance(all.t, all.makeStore, { name: "s", relay: true });
    for (const [run, capability] of [
      [poolConformance, "pool"],
      [relayConformance, "relay"],
    ] as const) {
      const alone = recorder();
      run(alone.t, alone.makeStore);
      const block = `Store conformance: ${capability}`;
      expect(alone.hooks).toEqual([`beforeEach in ${block}`, `afterEach in ${block}`]);
      expect(alone.tests.map((name) => name.replace(block, `s > ${capability}`))).toEqual(
        under(all.tests, `s > ${capability}`),
      );
    }
  });
});
