import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { startBalancer } from "./balancer.js";

/**
 * Starts NODES demo nodes (default 2) on one Redis (REDIS_URL) or one Redis Cluster
 * (REDIS_CLUSTER, its seed nodes), and a round-robin load balancer without sticky sessions in
 * front of them at PORT (default 3000). Every other setting of the demo (WHISPER_KEY_PREFIX,
 * WHISPER_RESUME_GRACE_MS, ...) is passed to each node.
 */
const count = Number(process.env.NODES ?? 2);
if (!Number.isInteger(count) || count < 1 || count > 16) {
  console.error(`NODES must be a whole number from 1 to 16, got ${JSON.stringify(process.env.NODES)}`);
  process.exit(1);
}
const host = process.env.HOST ?? "127.0.0.1";
const demoMain = fileURLToPath(new URL("../../demo/src/main.ts", import.meta.url));
const nodes: { child: ChildProcess; port: number | undefined }[] = [];
// One secret for every node, so a token issued by one node opens a socket on any other.
const jwtSecret = process.env.JWT_SECRET ?? randomBytes(32).toString("base64url");

function startNode(i: number): Promise<number> {
  const child = spawn(process.execPath, ["--conditions=@whisperchat/source", "--import", "tsx", demoMain], {
    env: { ...process.env, WHISPER_STORE: "redis", PORT: "0", HOST: host, JWT_SECRET: jwtSecret },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const node = { child, port: undefined as number | undefined };
  nodes[i] = node;
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
      if (m?.[1] && node.port === undefined) {
        node.port = Number(m[1]);
        console.log(`node ${i + 1}: pid ${child.pid}, http://${host}:${node.port}`);
        resolve(node.port);
      }
    });
    child.once("exit", (code, signal) => {
      if (node.port === undefined)
        reject(new Error(`node ${i + 1} exited (${code ?? signal}) before listening`));
      else console.log(`node ${i + 1} (pid ${child.pid}) stopped: ${code ?? signal}`);
      node.port = undefined;
    });
  });
}

try {
  await Promise.all(Array.from({ length: count }, (_, i) => startNode(i)));
} catch (error) {
  console.error(`whisperchat cluster: ${error instanceof Error ? error.message : String(error)}`);
  for (const n of nodes) n?.child.kill("SIGTERM");
  process.exit(1);
}
const live = () => nodes.filter((n) => n.port !== undefined).map((n) => ({ host, port: n.port as number }));
const balancer = await startBalancer(live, Number(process.env.PORT ?? 3000), host);
const { port } = balancer.address() as AddressInfo;
console.log(
  `WhisperChat cluster of ${count} nodes behind http://${host}:${port}  (round robin, no sticky sessions)`,
);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  balancer.close();
  let left = nodes.filter((n) => n.child.exitCode === null).length;
  if (left === 0) process.exit(0);
  for (const n of nodes) {
    if (n.child.exitCode !== null) continue;
    n.child.once("exit", () => {
      left--;
      if (left === 0) process.exit(0);
    });
    n.child.kill("SIGTERM");
  }
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
