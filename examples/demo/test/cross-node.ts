// Two clients of two demo nodes sharing a store, matched with each other across the nodes.
import { expectFrame, type TestClient } from "@whisperchat/core/testing";
import { expect } from "vitest";
import { WebSocket } from "ws";
import { wrapClient } from "../../../packages/adapter-ws/test/harness.js";
import type { Demo } from "../src/server.js";

/** Ada on `n1` and Bo on `n2` join in Stockholm and are matched with each other. */
export async function pairAcrossNodes(n1: Demo, n2: Demo): Promise<{ a: TestClient; b: TestClient }> {
  const a = wrapClient(new WebSocket(`${n1.url.replace("http", "ws")}/whisper`));
  const b = wrapClient(new WebSocket(`${n2.url.replace("http", "ws")}/whisper`));
  await expectFrame(a, "welcome");
  await expectFrame(b, "welcome");
  a.send({ type: "join", location: { lat: 59.33, lng: 18.07 }, rangeKm: 5, name: "Ada" });
  await expectFrame(a, "waiting");
  b.send({ type: "join", location: { lat: 59.34, lng: 18.06 }, rangeKm: 5, name: "Bo" });
  await expectFrame(b, "waiting");
  expect((await expectFrame(b, "matched")).partner.name).toBe("Ada");
  expect((await expectFrame(a, "matched")).partner.name).toBe("Bo");
  return { a, b };
}
