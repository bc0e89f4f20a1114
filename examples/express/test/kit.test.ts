// The Express example's chat, tested with the test kit: one test body, run in-process against
// the app's own hub (no port, no socket) and end to end over a real WebSocket.
import type { AddressInfo } from "node:net";
import {
  type ConnectOptions,
  connectInProcess,
  connectWs,
  type TestChatClient,
} from "@whisperchat/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type ChatApp, createChatApp } from "../src/app.js";

type Connect = (options?: ConnectOptions) => Promise<TestChatClient>;

const ways: Record<string, (app: ChatApp) => Promise<Connect>> = {
  "in-process": async (app) => (options) => connectInProcess(app.hub, options),
  "over a real WebSocket": async (app) => {
    await new Promise<void>((resolve) => app.server.listen(0, "127.0.0.1", resolve));
    const { port } = app.server.address() as AddressInfo;
    return (options) => connectWs(`ws://127.0.0.1:${port}/whisper`, { ...options, WebSocket });
  },
};

for (const [way, connector] of Object.entries(ways)) {
  describe(`examples/express with the test kit, ${way}`, () => {
    let app: ChatApp | undefined;
    const logged: string[] = [];
    afterEach(async () => {
      await app?.close();
      app = undefined;
      logged.length = 0;
    });

    async function start(): Promise<Connect> {
      app = createChatApp({ log: (line) => logged.push(line) });
      return connector(app);
    }

    it("logs each match once, relays both ways, and the stats count it", async () => {
      const connect = await start();
      const anna = await connect();
      const bruno = await connect();
      await anna.join({ location: { lat: 52.52, lng: 13.405 }, rangeKm: 5, name: "Anna" });
      await bruno.join({ location: { lat: 52.51, lng: 13.39 }, rangeKm: 5, name: "Bruno" });
      await anna.expectFrame("matched");
      await bruno.expectFrame("matched");
      expect(logged).toEqual([
        expect.stringMatching(/^(Bruno matched Anna|Anna matched Bruno), within \d+ km$/),
      ]);
      await anna.send("hallo Bruno");
      expect((await bruno.expectFrame("message")).text).toBe("hallo Bruno");
      await bruno.send("hallo Anna");
      expect((await anna.expectFrame("message")).text).toBe("hallo Anna");
      expect(await app?.hub.stats()).toMatchObject({ sessions: 2, waiting: 0, rooms: 1, messages: 2 });
    });

    it("closing the app drains: clients are told to reconnect and resume (1012)", async () => {
      const connect = await start();
      const anna = await connect();
      await anna.join({ location: { lat: 52.52, lng: 13.405 }, rangeKm: 5 });
      await app?.close();
      app = undefined;
      expect((await anna.expectClose()).code).toBe(1012);
    });
  });
}
