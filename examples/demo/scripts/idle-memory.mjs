// Idle memory per session of the demo server, run two ways: from the TypeScript sources through
// tsx (how `npm start` used to run it) and built (how it runs now), each against a bare `ws`
// server measured in the same round. Prints each server's RSS growth per idle session (welcomed,
// not joined) and its ratio to the bare server's.
//
//   node examples/demo/scripts/idle-memory.mjs [sessions=5000] [rounds=3]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { buildIfStale, demo } from "./built.mjs";

const SESSIONS = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 3);
if (!Number.isInteger(SESSIONS) || SESSIONS < 100 || !Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error("usage: idle-memory.mjs [sessions >= 100] [rounds >= 1]");
  process.exit(1);
}

const BARE_WS = `
import { WebSocketServer } from "ws";
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws) => ws.send("hello"));
wss.on("listening", () => console.log("listening on http://127.0.0.1:" + wss.address().port));
`;
const DEMO_ENV = {
  PORT: "0",
  JWT_SECRET: "an idle-memory measurement secret, 32+ bytes",
  WHISPER_CONNECT_PER_SEC: "1000000",
  WHISPER_CONNECT_BURST: "1000000",
};
const main = buildIfStale();
const SERVERS = {
  "bare ws": { args: ["--input-type=module", "-e", BARE_WS], env: {}, path: "/" },
  "demo, sources through tsx": {
    args: ["--conditions=@whisperchat/source", "--import", "tsx", join(demo, "src", "main.ts")],
    env: DEMO_ENV,
    path: "/whisper",
  },
  "demo, built (npm start)": { args: [main], env: DEMO_ENV, path: "/whisper" },
};

/** Resident set size of a process, in bytes. */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

function start({ args, env }) {
  const child = spawn(process.execPath, args, {
    cwd: demo,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1].replace(/^http/, "ws") });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`server exited (${code}) before listening: ${out}`)));
  });
}

/** Opens `count` connections, each done once the server's first frame arrived. */
async function connectIdle(url, count) {
  const sockets = [];
  for (let i = 0; i < count; i += 250) {
    const batch = Array.from(
      { length: Math.min(250, count - i) },
      () =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url, { perMessageDeflate: false });
          ws.once("message", () => resolve(ws));
          ws.once("error", reject);
        }),
    );
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

async function measure(server) {
  const { child, url } = await start(server);
  try {
    const target = url + server.path;
    // Warm the code paths, so that compiled code is not counted per session.
    for (const ws of await connectIdle(target, 50)) ws.terminate();
    await sleep(1000);
    const before = rss(child.pid);
    const sockets = await connectIdle(target, SESSIONS);
    await sleep(1500);
    const after = rss(child.pid);
    for (const ws of sockets) ws.terminate();
    return (after - before) / SESSIONS;
  } finally {
    child.kill("SIGKILL");
  }
}

const results = Object.fromEntries(Object.keys(SERVERS).map((name) => [name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  const names = Object.keys(SERVERS);
  if (round % 2 === 0) names.reverse(); // no server always first
  for (const name of names) results[name].push(await measure(SERVERS[name]));
  const line = names.map((n) => `${n}: ${(results[n].at(-1) / 1024).toFixed(1)} KB`).join(", ");
  console.log(`round ${round}: ${line}`);
}

console.log(`\nidle memory per session (${SESSIONS} sessions, server RSS), ${ROUNDS} round(s):`);
for (const [name, values] of Object.entries(results)) {
  const kb = values.map((v) => (v / 1024).toFixed(1)).join(" / ");
  const ratios = values.map((v, i) => (v / results["bare ws"][i]).toFixed(2)).join(" / ");
  console.log(`  ${name.padEnd(28)} ${kb} KB   ${ratios}x bare ws`);
}
