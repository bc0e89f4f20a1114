// The per-address buckets (connection attempts, guests' joins) count an IPv6 client by its /64:
// one subscriber usually holds a whole /64, and a bucket per full address would let one client
// probe from as many addresses as it likes (docs/protocol.md section 6, "Limits").
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, describe, expect, it } from "vitest";
import { WhisperError } from "../src/index.js";
import {
  ConnectionRefusedError,
  createTestHub,
  type ManualClock,
  type TestHub,
  type TestHubOptions,
} from "../src/testing/index.js";

const HERE = { lat: 48.85, lng: 2.35 };
const OPEN = { capacity: 1e6, ratePerSec: 1e6 };

let kit: TestHub<ManualClock> | undefined;
afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

function start(options: Omit<TestHubOptions, "store">): TestHub<ManualClock> {
  const k = createTestHub({ store: createMemoryStore, connectRate: OPEN, churnRate: OPEN, ...options });
  kit = k;
  return k;
}

/** What a guest connecting from `address` is answered to a `join`: `waiting` or an error code. */
async function joinFrom(k: TestHub<ManualClock>, address: string): Promise<string> {
  const c = await k.connect({ remoteAddress: address });
  try {
    return (await c.join({ location: HERE, rangeKm: 5 })).type;
  } catch (error) {
    if (error instanceof WhisperError) return error.code;
    throw error;
  }
}

describe("per-address buckets and IPv6", () => {
  it("guests' joins from many addresses of one /64 share one bucket; another /64 has its own", async () => {
    const k = start({ guestChurnPerAddress: { capacity: 3, ratePerSec: 0.001 } });
    const answers: string[] = [];
    for (const address of [
      "2001:db8:1:2::1",
      "2001:db8:1:2::2",
      "2001:db8:1:2:ffff::9",
      "2001:0db8:0001:0002:a:b:c:d",
    ])
      answers.push(await joinFrom(k, address));
    expect(answers).toEqual(["waiting", "waiting", "waiting", "rate_limited"]);
    expect(await joinFrom(k, "2001:db8:1:3::1")).toBe("waiting");
    // IPv4 addresses (mapped ones too) keep a bucket each.
    expect(await joinFrom(k, "192.0.2.1")).toBe("waiting");
    expect(await joinFrom(k, "::ffff:192.0.2.2")).toBe("waiting");
  });

  it("connection attempts from many addresses of one /64 share one bucket", async () => {
    const k = start({ connectRate: { capacity: 2, ratePerSec: 0.001 } });
    await k.connect({ remoteAddress: "2001:db8:5:6::1" });
    await k.connect({ remoteAddress: "2001:db8:5:6::2" });
    const refused = await k.connect({ remoteAddress: "2001:db8:5:6:1:2:3:4" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConnectionRefusedError);
    expect((refused as ConnectionRefusedError).status).toBe(429);
    await k.connect({ remoteAddress: "2001:db8:5:7::1" });
  });
});
