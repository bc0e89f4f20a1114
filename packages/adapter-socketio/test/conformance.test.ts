import { transportConformance } from "@whisperchat/core/testing";
import { afterEach, beforeEach, describe, it } from "vitest";
import { startSocketIoHarness } from "./harness.js";

const limits = { maxMessageChars: 1000, maxRangeKm: 20000, messageBurst: 10 };
const t = { describe, it, beforeEach, afterEach };

transportConformance(t, (overrides) => startSocketIoHarness(overrides), {
  name: "adapter-socketio: transport conformance (ack callbacks)",
  limits,
});

transportConformance(t, (overrides) => startSocketIoHarness(overrides, { mode: { acks: false } }), {
  name: "adapter-socketio: transport conformance (events only)",
  limits,
});

transportConformance(
  t,
  (overrides) =>
    startSocketIoHarness(overrides, { namespace: "/whisper", mode: { transports: ["polling"] } }),
  {
    name: "adapter-socketio: transport conformance (HTTP long-polling, namespace /whisper)",
    limits,
  },
);
