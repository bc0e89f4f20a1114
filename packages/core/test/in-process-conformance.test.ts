// The in-process transport of the app test kit behaves like a transport: it passes the suite
// every adapter passes (docs/protocol.md), on the system clock as adapters run.
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, beforeEach, describe, it } from "vitest";
import { systemClock } from "../src/index.js";
import {
  ConnectionRefusedError,
  createTestHub,
  type TestChatClient,
  type TestClient,
  transportConformance,
} from "../src/testing/index.js";

/** The conformance suite's client over a kit client; `welcome` comes first, as on a real socket. */
function asTestClient(client: TestChatClient): TestClient & { kit: TestChatClient } {
  let welcomed = false;
  const closed = client.closed.then((info) => info.code);
  return {
    kit: client,
    send: (frame) => client.sendFrame(frame),
    next(timeoutMs) {
      if (!welcomed) {
        welcomed = true;
        return Promise.resolve(client.welcome);
      }
      return client.nextFrame(timeoutMs === undefined ? {} : { timeoutMs });
    },
    pending: () => (welcomed ? client.pending() : [client.welcome, ...client.pending()]),
    closed,
    async close() {
      await client.close();
    },
    drop: () => client.drop(),
  };
}

transportConformance(
  { describe, it, beforeEach, afterEach },
  async (overrides) => {
    const kit = createTestHub({ store: createMemoryStore, clock: systemClock, ...overrides });
    return {
      async connect(params) {
        return asTestClient(await kit.connect({ ...params, timeoutMs: 3000 }));
      },
      async connectRefused(params) {
        const { headers, ...rest } = params ?? {};
        try {
          await kit.connect(headers === undefined ? rest : { ...rest, headers });
        } catch (error) {
          if (!(error instanceof ConnectionRefusedError) || error.status === undefined) throw error;
          return error.retryAfterSec === undefined
            ? { status: error.status }
            : { status: error.status, retryAfterSec: error.retryAfterSec };
        }
        throw new Error("the connection was accepted");
      },
      sendRaw(client, data) {
        const { kit: c } = client as ReturnType<typeof asTestClient>;
        if (typeof data === "string") c.sendText(data);
        else c.sendBinary(data);
      },
      close: () => kit.close(),
    };
  },
  {
    name: "in-process transport: transport conformance",
    limits: { maxMessageChars: 1000, maxRangeKm: 20000, messageBurst: 10 },
  },
);
