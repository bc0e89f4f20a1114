import type { ChildProcess } from "node:child_process";
import type { TestClient } from "@whisperchat/core/testing";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  freePort,
  hasRedisServer,
  startCluster,
  type TestCluster,
} from "../../../packages/store-redis/test/servers.js";
import {
  chatThenResumeOnTheOtherNode,
  frozenNodeThaws,
  killedMidStream,
  killedNodeEndsAtGrace,
  MID_STREAM,
  runExample,
} from "./run-example.js";

const children: Pick<ChildProcess, "kill">[] = [];
const clients: TestClient[] = [];

describe.skipIf(!hasRedisServer)(
  "examples/cluster: demo nodes in separate processes on a Redis Cluster",
  () => {
    // A throwaway three-master cluster on free ports: stopping it removes every key the tests wrote.
    let cluster: TestCluster | undefined;
    const seeds = () => (cluster?.ports ?? []).map((port) => `127.0.0.1:${port}`).join(",");

    beforeAll(async () => {
      cluster = await startCluster();
    }, 30_000);
    afterEach(async () => {
      await Promise.allSettled(clients.splice(0).map((c) => c.close()));
      for (const c of children.splice(0)) c.kill("SIGKILL");
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    it("clients on different nodes match and chat both ways, and one resumes through the balancer on the other node", async () => {
      const example = await runExample({ REDIS_CLUSTER: seeds(), REDIS_URL: "" }, children);
      expect(example.pids).toHaveLength(2);
      await chatThenResumeOnTheOtherNode(clients, example.url);

      // The nodes' keys (the default prefix) are on the cluster's masters, spread over them.
      const masters = (cluster?.ports ?? []).map((port) => new Redis({ host: "127.0.0.1", port }));
      try {
        const perMaster = await Promise.all(masters.map((m) => m.keys("whisper:*")));
        expect(perMaster.flat().some((k) => k.startsWith("whisper:room:"))).toBe(true);
        expect(perMaster.filter((keys) => keys.length > 0).length).toBeGreaterThan(1);
      } finally {
        await Promise.all(masters.map((m) => m.quit()));
      }
    }, 60_000);

    it("a node killed with SIGKILL: its partners are told away, then left after the grace", async () => {
      const env = { REDIS_CLUSTER: seeds(), REDIS_URL: "", WHISPER_RESUME_GRACE_MS: "1500" };
      await killedNodeEndsAtGrace(clients, await runExample(env, children));
    }, 60_000);

    it("SIGKILL mid-stream, messages in flight both ways: after a resume nothing acked is lost, duplicated or reordered", async () => {
      await killedMidStream(
        await runExample({ REDIS_CLUSTER: seeds(), REDIS_URL: "", ...MID_STREAM }, children),
      );
    }, 60_000);

    it("a node frozen (SIGSTOP) past its heartbeat: partners are told; when it thaws, its sessions learn it and carry on", async () => {
      const env = { REDIS_CLUSTER: seeds(), REDIS_URL: "", WHISPER_RESUME_GRACE_MS: "1500" };
      await frozenNodeThaws(clients, await runExample(env, children));
    }, 60_000);

    it("stops with the node's message when no seed node answers", async () => {
      const port = await freePort();
      await expect(
        runExample({ REDIS_CLUSTER: `127.0.0.1:${port}`, REDIS_URL: "" }, children),
      ).rejects.toThrow(
        new RegExp(`cluster exited 1:[\\s\\S]*cannot reach Redis Cluster at 127\\.0\\.0\\.1:${port} `),
      );
    }, 30_000);
  },
);
