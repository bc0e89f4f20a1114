import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expectFrame, type TestClient } from "@whisperchat/core/testing";
import { expect } from "vitest";
import { WebSocket } from "ws";
import { Chatter, deliveryProblems } from "../../../packages/adapter-ws/test/chatter.js";
import { wrapClient } from "../../../packages/adapter-ws/test/harness.js";

const startFile = fileURLToPath(new URL("../src/start.ts", import.meta.url));

/** `examples/cluster` running: the balancer's URL, the nodes' pids in node order, the process. */
export interface RunningExample {
  url: string;
  pids: number[];
  process: ChildProcess;
}

/**
 * Runs `examples/cluster` as a user would (`NODES=2`, `PORT=0`, and `env`), and reads what it
 * prints. Everything it starts (the process and each node's pid) is pushed on `children`, for the
 * caller to kill.
 */
export async function runExample(
  env: Record<string, string>,
  children: Pick<ChildProcess, "kill">[],
): Promise<RunningExample> {
  const child = spawn(process.execPath, ["--conditions=@whisperchat/source", "--import", "tsx", startFile], {
    env: { ...process.env, NODES: "2", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cluster did not start: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /behind (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        // In node order (they may print in any order): node i is the balancer's backend i.
        const pids = [...out.matchAll(/node (\d+): pid (\d+), http/g)]
          .sort((x, y) => Number(x[1]) - Number(y[1]))
          .map((x) => Number(x[2]));
        for (const pid of pids) {
          const kill = (signal?: NodeJS.Signals | number) => {
            try {
              return process.kill(pid, signal);
            } catch {
              return false; // already gone
            }
          };
          children.push({ kill });
        }
        resolve({ url: m[1], pids, process: child });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`cluster exited ${code}: ${out}`));
    });
  });
}

/** A WebSocket client through the balancer (resuming when given a token), and its welcome. */
export async function connectClient(clients: TestClient[], url: string, resume?: string) {
  const c = wrapClient(
    new WebSocket(`${url.replace("http", "ws")}/whisper${resume ? `?resume=${resume}` : ""}`),
  );
  clients.push(c);
  return { c, welcome: await expectFrame(c, "welcome", 10_000) };
}

/** Two clients through the balancer (round robin: on different nodes), matched in Milan. */
export async function pairThrough(clients: TestClient[], url: string) {
  const a = await connectClient(clients, url);
  const b = await connectClient(clients, url);
  a.c.send({ type: "join", location: { lat: 45.46, lng: 9.19 }, rangeKm: 5, name: "Ada" });
  await expectFrame(a.c, "waiting");
  b.c.send({ type: "join", location: { lat: 45.47, lng: 9.18 }, rangeKm: 5, name: "Bo" });
  await expectFrame(b.c, "waiting");
  await expectFrame(b.c, "matched", 5000);
  await expectFrame(a.c, "matched", 5000);
  return { a, b };
}

/**
 * Two clients through the balancer (on different nodes) match and chat both ways; one drops,
 * misses a message, and resumes through the balancer on the other node, where the message
 * waits for it.
 */
export async function chatThenResumeOnTheOtherNode(clients: TestClient[], url: string): Promise<void> {
  const { a, b } = await pairThrough(clients, url);
  a.c.send({ type: "message", id: "1", text: "ciao" });
  await expectFrame(a.c, "ack");
  expect((await expectFrame(b.c, "message")).text).toBe("ciao");
  b.c.send({ type: "message", id: "2", text: "ciao ciao" });
  await expectFrame(b.c, "ack");
  expect((await expectFrame(a.c, "message")).text).toBe("ciao ciao");
  await b.c.drop();
  await expectFrame(a.c, "partner_away", 5000);
  a.c.send({ type: "message", id: "3", text: "missed this?" });
  await expectFrame(a.c, "ack");
  const b2 = await connectClient(clients, url, b.welcome.resumeToken);
  expect(b2.welcome.resumed).toBe(true);
  expect((await expectFrame(b2.c, "message")).text).toBe("missed this?");
  await expectFrame(a.c, "partner_back", 5000);
}

/**
 * The second node is frozen (SIGSTOP) past its heartbeat: the partner on the first node is told
 * `partner_away` within the documented bound, then `partner_left` at the grace (the example
 * must run with a short `WHISPER_RESUME_GRACE_MS`). Thawed, the frozen node's session learns
 * that its room is gone without sending anything, and both chat again.
 */
export async function frozenNodeThaws(clients: TestClient[], example: RunningExample): Promise<void> {
  const { a, b } = await pairThrough(clients, example.url); // a on node 0, b on node 1
  const frozenAt = Date.now();
  process.kill(example.pids[1] as number, "SIGSTOP");
  try {
    await expectFrame(a.c, "partner_away", 12_000);
    // The documented bound (protocol doc section 6): five heartbeat intervals, 10 s by default.
    expect(Date.now() - frozenAt).toBeLessThanOrEqual(10_000 + 500);
    expect((await expectFrame(a.c, "partner_left", 5000)).reason).toBe("disconnected");
  } finally {
    process.kill(example.pids[1] as number, "SIGCONT");
  }
  // Thawed: b's connection is still open, and its room is gone. b is told within seconds,
  // without having to send anything, and both can chat again.
  expect((await expectFrame(b.c, "partner_left", 10_000)).reason).toBe("lost");
  b.c.send({ type: "join", location: { lat: 45.47, lng: 9.18 }, rangeKm: 5 });
  await expectFrame(b.c, "waiting");
  a.c.send({ type: "join", location: { lat: 45.46, lng: 9.19 }, rangeKm: 5 });
  await expectFrame(a.c, "waiting");
  await expectFrame(a.c, "matched", 5000);
  await expectFrame(b.c, "matched", 5000);
  a.c.send({ type: "message", id: "back", text: "welcome back" });
  await expectFrame(a.c, "ack");
  expect((await expectFrame(b.c, "message", 5000)).text).toBe("welcome back");
}

/**
 * The second node is killed (SIGKILL): the partner on the first node is told `partner_away`
 * within the documented bound, then `partner_left` at the grace (run the example with a short
 * `WHISPER_RESUME_GRACE_MS`); a resume after the grace gets a fresh session.
 */
export async function killedNodeEndsAtGrace(clients: TestClient[], example: RunningExample): Promise<void> {
  const { a, b } = await pairThrough(clients, example.url);
  // Round robin put a and b on different nodes: kill b's (the second).
  const killedAt = Date.now();
  process.kill(example.pids[1] as number, "SIGKILL");
  expect(await b.c.closed).toBe(1006);
  await expectFrame(a.c, "partner_away", 12_000);
  // The documented bound (protocol doc section 6): five heartbeat intervals, 10 s by default.
  expect(Date.now() - killedAt).toBeLessThanOrEqual(10_000 + 500);
  expect((await expectFrame(a.c, "partner_left", 5000)).reason).toBe("disconnected");
  // After the grace the dead node's session is over: a late resume gets a fresh session.
  const late = await connectClient(clients, example.url, b.welcome.resumeToken);
  expect(late.welcome.resumed).toBe(false);
  late.c.send({ type: "message", id: "x", text: "still there?" });
  expect((await expectFrame(late.c, "error")).code).toBe("not_in_room");
}

/** The settings {@link killedMidStream} needs: a long grace, a fast message rate. */
export const MID_STREAM = {
  WHISPER_RESUME_GRACE_MS: "20000",
  WHISPER_MSG_PER_SEC: "500",
  WHISPER_MSG_BURST: "500",
};

/**
 * Two clients stream messages both ways; the second node is killed mid-stream and its client
 * resumes with its cursor on the first: every acked message reaches the other side once, in
 * order. Run the example with {@link MID_STREAM}.
 */
export async function killedMidStream(example: RunningExample): Promise<void> {
  const ws = example.url.replace("http", "ws");
  const a = new Chatter(`${ws}/whisper`, "a");
  const b = new Chatter(`${ws}/whisper`, "b"); // round robin: a on node 0, b on node 1
  await Promise.all([a.welcomed, b.welcomed]);
  a.send({ type: "join", location: { lat: 45.46, lng: 9.19 }, rangeKm: 5 });
  await a.waitFor((f) => f.type === "waiting");
  b.send({ type: "join", location: { lat: 45.47, lng: 9.18 }, rangeKm: 5 });
  const roomId = (await b.waitFor((f) => f.type === "matched")).roomId as string;
  await a.waitFor((f) => f.type === "matched");
  a.streaming = true;
  b.streaming = true;
  await new Promise((r) => setTimeout(r, 300));
  const killedAt = Date.now();
  process.kill(example.pids[1] as number, "SIGKILL");
  await b.closed;
  b.streaming = false;
  await new Promise((r) => setTimeout(r, 400)); // a goes on sending to a dead node
  // b comes back through the balancer (which skips the dead node) with its cursor.
  const last = b.cursor();
  expect(last.startsWith(`${roomId}:`)).toBe(true);
  const b2 = new Chatter(`${ws}/whisper?resume=${b.resumeToken}&last=${encodeURIComponent(last)}`, "b", b);
  expect((await b2.welcomed).resumed).toBe(true);
  b2.resendUnacked();
  b2.streaming = true;
  await new Promise((r) => setTimeout(r, 600));
  a.streaming = false;
  b2.streaming = false;
  await new Promise((r) => setTimeout(r, 1500));
  const away = a.frames.find((f) => f.type === "partner_away");
  if (away !== undefined) expect((away.at as number) - killedAt).toBeLessThanOrEqual(10_000);
  // Every acked message reached the other side once, in order.
  expect(deliveryProblems(a, b2)).toEqual([]);
  expect(deliveryProblems(b2, a)).toEqual([]);
  a.close();
  b2.close();
}
