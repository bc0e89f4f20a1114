import { randomUUID } from "node:crypto";
import { expectFrame } from "@whisperchat/core/testing";
import { afterEach, expect, it } from "vitest";
import { WebSocket } from "ws";
import { wrapClient } from "../../../packages/adapter-ws/test/harness.js";
import { pair } from "../../../packages/adapter-ws/test/resume-attacks.js";
import { connect, deleteUnder, describeRedis, REDIS_URL } from "../../../packages/store-redis/test/redis.js";
import { readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";
import { pairAcrossNodes } from "./cross-node.js";

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
    const { a, b } = await pairAcrossNodes(n1, n2);
    a.send({ type: "message", id: "1", text: "hej" });
    await expectFrame(a, "ack");
    expect((await expectFrame(b, "message")).text).toBe("hej");
    await a.close();
    await b.close();
  });

  it("passes the Redis store through whole: a message to another node is one command (the relay)", async () => {
    const [n1, n2] = [await node(), await node()];
    // The store the hub uses has the Redis store's relay, the batched path for messages.
    expect(n1.store.relay).toBeDefined();
    // One user on n1, the other on n2, in one room.
    const urls = [n1, n2].map((n) => `${n.url.replace("http", "ws")}/whisper`);
    const { a, b } = await pair({ connect: async () => wrapClient(new WebSocket(urls.shift() ?? "")) });
    // Every command a client sends Redis for this demo's keys while one message goes from n1 to
    // n2 (the commands a script runs are reported too, from "lua": they are not round trips).
    const monitor = await connect().monitor();
    const seen: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source !== "lua" && args.some((arg) => arg.includes(prefix))) seen.push(args);
    });
    const text = `hei ${randomUUID()}`;
    a.send({ type: "message", id: "1", text });
    await expectFrame(a, "ack");
    expect((await expectFrame(b, "message")).text).toBe(text);
    monitor.disconnect();
    // One round trip took the limit, stored the message and published it to n2: without the
    // relay these are three commands, two of which carry the text.
    const carrying = seen.filter((args) => args.some((arg) => arg.includes(text)));
    expect(carrying).toHaveLength(1);
    expect(carrying[0]?.[0]?.toLowerCase()).toMatch(/^eval(sha)?$/);
    expect(carrying[0]?.some((arg) => arg.includes(`${prefix}room:`))).toBe(true);
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
