import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { expectFrame, type TestClient } from "@whisperchat/core/testing";
import { afterEach, expect, it } from "vitest";
import { connect, deleteUnder, describeRedis, REDIS_URL } from "../../../packages/store-redis/test/redis.js";
import {
  chatThenResumeOnTheOtherNode,
  connectClient,
  frozenNodeThaws,
  killedMidStream,
  killedNodeEndsAtGrace,
  MID_STREAM,
  pairThrough,
  type RunningExample,
  runExample,
} from "./run-example.js";

const children: Pick<ChildProcess, "kill">[] = [];
const clients: TestClient[] = [];
let prefix = "";

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  for (const c of children.splice(0)) c.kill("SIGKILL");
  if (prefix !== "") {
    const client = connect();
    await deleteUnder(client, prefix);
    await client.quit();
  }
});

/** Runs `examples/cluster` on this test's key prefix (a fresh one each time). */
async function startCluster(env: Record<string, string>): Promise<RunningExample> {
  prefix = `test:${randomUUID()}:`;
  return runExample({ WHISPER_KEY_PREFIX: prefix, REDIS_URL, ...env }, children);
}

const _client = (url: string, resume?: string) => connectClient(clients, url, resume);
const pair = (url: string) => pairThrough(clients, url);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describeRedis("examples/cluster: demo nodes in separate processes on one Redis", () => {
  it("clients on different nodes match and chat, and one resumes through the balancer on the other node", async () => {
    const cluster = await startCluster({});
    expect(cluster.pids).toHaveLength(2);
    await chatThenResumeOnTheOtherNode(clients, cluster.url);
  }, 60_000);

  it("a node killed with SIGKILL: its partners are told away, then left after the grace", async () => {
    await killedNodeEndsAtGrace(clients, await startCluster({ WHISPER_RESUME_GRACE_MS: "1500" }));
  }, 60_000);

  it("a node frozen (SIGSTOP) past its heartbeat: partners are told; when it thaws, its sessions learn it and carry on", async () => {
    await frozenNodeThaws(clients, await startCluster({ WHISPER_RESUME_GRACE_MS: "1500" }));
  }, 60_000);

  it("SIGKILL mid-stream, messages in flight both ways: after a resume nothing acked is lost, duplicated or reordered", async () => {
    await killedMidStream(await startCluster(MID_STREAM));
  }, 60_000);

  it("Redis restarted mid-chat: no crash, no acked message lost, service resumes by itself", async () => {
    const port = await freePort();
    const redisArgs = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    let redis = spawn("redis-server", redisArgs, { stdio: "ignore" });
    children.push(redis);
    const url = `redis://127.0.0.1:${port}`;
    for (let i = 0; i < 50; i++) {
      const probe = connect({ port, lazyConnect: true, retryStrategy: () => null });
      const ok = await probe.connect().then(
        () => true,
        () => false,
      );
      probe.disconnect();
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const cluster = await startCluster({ REDIS_URL: url });
    const { a, b } = await pair(cluster.url);
    const acked: string[] = [];
    a.c.send({ type: "message", id: "before", text: "before" });
    acked.push((await expectFrame(a.c, "ack")).id as string);
    redis.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    // While Redis is down: requests fail with `internal`, /healthz says 503, nothing crashes.
    a.c.send({ type: "message", id: "during", text: "during" });
    const during = await a.c.next(10_000);
    expect(during).toMatchObject({ type: "error", code: "internal", id: "during" });
    expect((await fetch(`${cluster.url}/healthz`)).status).toBe(503);
    redis = spawn("redis-server", redisArgs, { stdio: "ignore" });
    children.push(redis);
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      await new Promise((r) => setTimeout(r, 100));
      healthy = (await fetch(`${cluster.url}/healthz`).catch(() => undefined))?.status === 200;
    }
    expect(healthy).toBe(true);
    expect(cluster.process.exitCode).toBe(null);
    // Every acked message reached the partner.
    expect((await expectFrame(b.c, "message")).text).toBe("before");
    expect(acked).toEqual(["before"]);
    // A fresh Redis knows no rooms: new pairs match and chat again.
    const { a: c, b: d } = await pair(cluster.url);
    c.c.send({ type: "message", id: "after", text: "after" });
    await expectFrame(c.c, "ack", 5000);
    expect((await expectFrame(d.c, "message")).text).toBe("after");
  }, 90_000);
});
