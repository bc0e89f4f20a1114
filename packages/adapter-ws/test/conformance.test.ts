import { transportConformance } from "@whisperchat/core/testing";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { coordinateLeaks, startWsHarness } from "./harness.js";

transportConformance({ describe, it, beforeEach, afterEach }, (overrides) => startWsHarness(overrides), {
  name: "adapter-ws: transport conformance",
  limits: { maxMessageChars: 1000, maxRangeKm: 20000, messageBurst: 10 },
});

afterAll(() => {
  // Every frame any client received in the whole suite: none may carry coordinates.
  expect(coordinateLeaks).toEqual([]);
});
