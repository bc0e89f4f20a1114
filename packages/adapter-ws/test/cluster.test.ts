import { clusterConformance } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, beforeEach, describe, it } from "vitest";
import { startWsClusterNode } from "./harness.js";

// Several hubs in one process on one memory store behave as several nodes.
clusterConformance(
  { describe, it, beforeEach, afterEach },
  { makeStore: async () => createMemoryStore(), startNode: startWsClusterNode },
  { name: "adapter-ws on a shared memory store: cluster conformance" },
);
