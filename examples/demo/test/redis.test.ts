import { randomUUID } from "node:crypto";
import { expectFrame } from "@whisperchat/core/testing";
import { afterEach, expect, it } from "vitest";
import { WebSocket } from "ws";
import { wrapClient } from "../../../packages/adapter-ws/test/harness.js";
import { connect, deleteUnder, describeRedis, REDIS_URL } from "../../../packages/store-redis/test/redis.js";
import { readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";

const demos: Demo[] = [];
const prefix = `test:${randomUUID()}:`;
afterEach(async () => {
  await Promise.allSettled(demos.splice(0).map((d) => d.close()));
  const client = connect();
  await deleteUnder(client, prefix);
  await client.quit();
});

async function node(): Promise<Demo> {
  const demo = await startDemo(
    readConfig({ PORT: "0", WHISPER_STORE: "redis", REDIS_URL, WHISPER_KEY_PREFIX: prefix }),
    () => undefined,
  );
  demos.push(demo);
  return demo;
}

describeRedis("demo with WHISPER_STORE=redis", () => {
  it("two demo nodes on one Redis match and relay between their clients", async () => {
    const [n1, n2] = [await node(), await node()];
    expect((await fetch(`${n1.url}/healthz`)).status).toBe(200);
    const a = wrapClient(new WebSocket(`${n1.url.replace("http", "ws")}/whisper`));
    const b = wrapClient(new WebSocket(`${n2.url.replace("http", "ws")}/whisper`));
    await expectFrame(a, "welcome");
    await expectFrame(b, "welcome");
    a.send({ type: "join", location: { lat: 59.33, lng: 18.07 }, rangeKm: 5, name: "Ada" });
    await expectFrame(a, "waiting");
    b.send({ type: "join", location: { lat: 59.34, lng: 18.06 }, rangeKm: 5, name: "Bo" });
    await expectFrame(b, "waiting");
    expect((await expectFrame(b, "matched")).partner.name).toBe("Ada");
    await expectFrame(a, "matched");
    a.send({ type: "message", id: "1", text: "hej" });
    await expectFrame(a, "ack");
    expect((await expectFrame(b, "message")).text).toBe("hej");
    await a.close();
    await b.close();
  });

  it("stops at start with a clear message when Redis cannot be reached", async () => {
    await expect(
      startDemo(
        readConfig({ PORT: "0", WHISPER_STORE: "redis", REDIS_URL: "redis://127.0.0.1:1" }),
        () => undefined,
      ),
    ).rejects.toThrow(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  });
});
