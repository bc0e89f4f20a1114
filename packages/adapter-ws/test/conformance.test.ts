import { transportConformance } from "@whisperchat/core/testing";
import { afterEach, beforeEach, describe, it } from "vitest";
import { startWsHarness } from "./harness.js";

transportConformance({ describe, it, beforeEach, afterEach }, (overrides) => startWsHarness(overrides), {
  name: "adapter-ws: transport conformance",
  limits: { maxMessageChars: 1000, maxRangeKm: 20000, messageBurst: 10 },
});
