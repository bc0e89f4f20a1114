import { randomUUID } from "node:crypto";
import { expectFrame } from "@whisperchat/core/testing";
import type { RedisStore } from "@whisperchat/store-redis";
import { Cluster, Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  freePort,
  hasRedisServer,
  startCluster,
  type TestCluster,
} from "../../../packages/store-redis/test/servers.js";
import { ConfigError, readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";
import { pairAcrossNodes } from "./cross-node.js";

describe("REDIS_CLUSTER", () => {
  it("reads seed nodes as host:port separated by commas, IPv6 hosts in brackets", () => {
    const config = readConfig({
      WHISPER_STORE: "redis",
      REDIS_CLUSTER: " 10.0.0.1:7000, redis-b.internal:7001,[::1]:7002 ",
    });
    expect(config.redisCluster).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b.internal", port: 7001 },
      { host: "::1", port: 7002 },
    ]);
    expect(readConfig({ WHISPER_STORE: "redis" }).redisCluster).toBeUndefined();
    expect(readConfig({ WHISPER_STORE: "redis", REDIS_CLUSTER: " " }).redisCluster).toBeUndefined();
  });

  it.each([
    "10.0.0.1",
    "10.0.0.1:",
    "10.0.0.1:0",
    "10.0.0.1:65536",
    "10.0.0.1:70x",
    "redis://10.0.0.1:7000",
    "10.0.0.1:7000,",
    "::1:7000",
    "a:1 b:2",
  ])("refuses %j with a message naming the setting", (value) => {
    expect(() => readConfig({ WHISPER_STORE: "redis", REDIS_CLUSTER: value })).toThrow(ConfigError);
    expect(() => readConfig({ WHISPER_STORE: "redis", REDIS_CLUSTER: value })).toThrow(
      /^REDIS_CLUSTER must be seed nodes as host:port/,
    );
  });

  it("needs WHISPER_STORE=redis, and is not set together with REDIS_URL", () => {
    expect(() => readConfig({ REDIS_CLUSTER: "127.0.0.1:7000" })).toThrow(/only with WHISPER_STORE=redis/);
    expect(() =>
      readConfig({ WHISPER_STORE: "redis", REDIS_CLUSTER: "127.0.0.1:7000", REDIS_URL: "redis://h:1" }),
    ).toThrow(/REDIS_URL .* or REDIS_CLUSTER .*, not both/);
  });

  it("refuses a key prefix with braces (it would be a hash tag of its own)", () => {
    expect(() => readConfig({ WHISPER_KEY_PREFIX: "app{1}:" })).toThrow(
      /WHISPER_KEY_PREFIX must not contain "\{" or "\}"/,
    );
  });
});

describe.skipIf(!hasRedisServer)("demo with WHISPER_STORE=redis on a three-master Redis Cluster", () => {
  let cluster: TestCluster | undefined;
  const demos: Demo[] = [];
  const prefix = `test:${randomUUID()}:`;
  const seeds = () => (cluster?.ports ?? []).map((port) => `127.0.0.1:${port}`).join(",");

  beforeAll(async () => {
    // A throwaway cluster on free ports: stopping it removes every key the tests wrote.
    cluster = await startCluster();
  }, 30_000);
  afterEach(async () => {
    await Promise.allSettled(demos.splice(0).map((d) => d.close()));
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  async function node(): Promise<Demo> {
    const demo = await startDemo(
      readConfig({ PORT: "0", WHISPER_STORE: "redis", REDIS_CLUSTER: seeds(), WHISPER_KEY_PREFIX: prefix }),
      () => undefined,
    );
    demos.push(demo);
    return demo;
  }

  it("two demo nodes match clients across nodes, who chat both ways; the data spreads over the masters", async () => {
    const [n1, n2] = [await node(), await node()];
    expect((await fetch(`${n1.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${n2.url}/healthz`)).status).toBe(200);
    // The store is the Redis store on a cluster client, passed through whole.
    expect((n1.store as RedisStore).client).toBeInstanceOf(Cluster);
    expect(await (n1.store as RedisStore).pubsubMode()).toBe("sharded");

    const { a, b } = await pairAcrossNodes(n1, n2);
    for (let i = 0; i < 3; i++) {
      a.send({ type: "message", id: `a${i}`, text: `hej ${i}` });
      await expectFrame(a, "ack");
      expect((await expectFrame(b, "message")).text).toBe(`hej ${i}`);
      b.send({ type: "message", id: `b${i}`, text: `hallå ${i}` });
      await expectFrame(b, "ack");
      expect((await expectFrame(a, "message")).text).toBe(`hallå ${i}`);
    }

    // The demo's keys are on the cluster's three masters, more than one of them holding some.
    const masters = (cluster?.ports ?? []).map((port) => new Redis({ host: "127.0.0.1", port }));
    try {
      const perMaster = await Promise.all(masters.map((m) => m.keys(`${prefix}*`)));
      expect(perMaster.flat().some((k) => k.startsWith(`${prefix}room:`))).toBe(true);
      expect(perMaster.filter((keys) => keys.length > 0).length).toBeGreaterThan(1);
    } finally {
      await Promise.all(masters.map((m) => m.quit()));
    }
    await a.close();
    await b.close();
  }, 30_000);

  it("stops at start with a clear message when no seed node answers", async () => {
    const port = await freePort();
    await expect(
      startDemo(
        readConfig({ PORT: "0", WHISPER_STORE: "redis", REDIS_CLUSTER: `127.0.0.1:${port}` }),
        () => undefined,
      ),
    ).rejects.toThrow(
      new RegExp(`cannot reach Redis Cluster at 127\\.0\\.0\\.1:${port} .*set REDIS_CLUSTER`),
    );
  });
});
