import { clusterConformance } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, beforeEach, describe, it } from "vitest";
import { startWsHarness } from "./harness.js";

// Several hubs in one process on one memory store behave as several nodes.
clusterConformance(
  { describe, it, beforeEach, afterEach },
  {
    makeStore: async () => createMemoryStore(),
    startNode: async (store, options) => {
      const h = await startWsHarness({ ...options, store }, {}, { closeStore: false });
      return {
        ...h,
        async crash() {
          await h.hub.halt();
          for (const ws of h.adapter.wss.clients) ws.terminate();
          await h.close();
        },
      };
    },
  },
  { name: "adapter-ws on a shared memory store: cluster conformance" },
);
