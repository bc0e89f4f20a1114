/**
 * One server node of the cross-node relay benchmark (`bench/redis.ts`), in a process of its own
 * so that its CPU time is its own. Two of them run on one Redis. Driven over IPC:
 *
 * - `start({ kind, prefix, nodeId, port })` starts the node on a loopback port (`port`, or a free
 *   one when it is not given) and resolves `{ port }`:
 *   - `whisper`: WhisperChat through `@whisperchat/adapter-ws` on `@whisperchat/store-redis`
 *     (key prefix `prefix`), message, churn and connection limits raised out of the way;
 *   - `socketio`: a Socket.IO server with `@socket.io/redis-adapter` (channels under `prefix`).
 *     A client names its partner's socket id with `partner`; each `m` event is relayed with
 *     `io.to(partnerId).emit("m", payload)`, which the adapter routes through Redis when the
 *     partner is on the other node;
 * - `settings()` resolves the WhisperChat node's `{ nodeHeartbeatMs, resumeGraceMs }`;
 * - `cpu()` resolves this process's CPU time so far (user + system, microseconds);
 * - `mem()` runs a full GC and resolves `process.memoryUsage()`;
 * - `stop()` closes the node and its Redis connections (keys are the coordinator's to delete).
 */
import { createServer, type Server as HttpServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { attachWebSocket, type WebSocketAdapter } from "@whisperchat/adapter-ws";
import { createWhisper, type WhisperHub } from "@whisperchat/core";
import { createRedisStore, type RedisStore } from "@whisperchat/store-redis";
import { Redis } from "ioredis";
import { Server as IoServer } from "socket.io";
import { cpuMicros, fullGc, listenLoopback, serve } from "./ipc.js";
import { NO_LIMITS } from "./no-limits.js";
import { REDIS_URL } from "./redis-util.js";

/** The servers compared. */
export type ClusterKind = "whisper" | "socketio";

/**
 * Both servers' Redis clients: autopipelining sends the commands of one tick in one write (the
 * store's README recommends it for throughput between nodes); one retry, like a production app.
 */
const CLIENT_OPTIONS = { enableAutoPipelining: true, maxRetriesPerRequest: 1 };

let http: HttpServer | undefined;
let stopNode: (() => Promise<void>) | undefined;
let whisper: WhisperHub | undefined;

function startWhisper(server: HttpServer, prefix: string, nodeId: string): () => Promise<void> {
  const client = new Redis(REDIS_URL, CLIENT_OPTIONS);
  const store: RedisStore = createRedisStore({ client, keyPrefix: prefix });
  const hub: WhisperHub = createWhisper({
    store,
    nodeId,
    ...NO_LIMITS,
  });
  const ws: WebSocketAdapter = attachWebSocket(hub, { server });
  whisper = hub;
  return async () => {
    await ws.close();
    await hub.close();
    await store.close();
    await client.quit();
  };
}

function startSocketIo(server: HttpServer, prefix: string): () => Promise<void> {
  const pub = new Redis(REDIS_URL, CLIENT_OPTIONS);
  const sub = pub.duplicate();
  const io = new IoServer(server, {
    serveClient: false,
    adapter: createAdapter(pub, sub, { key: `${prefix}socket.io` }),
  });
  io.on("connection", (socket) => {
    let partner = "";
    socket.on("partner", (id: unknown, ack?: () => void) => {
      partner = String(id);
      if (typeof ack === "function") ack();
    });
    socket.on("m", (payload: unknown) => {
      io.to(partner).emit("m", payload);
    });
  });
  return async () => {
    await new Promise<void>((resolve) => io.close(() => resolve()));
    // The adapter unsubscribes without waiting for the reply: let it land before quitting, or
    // its promise rejects with nobody to catch it.
    await sub.ping().catch(() => undefined);
    await Promise.all([pub.quit(), sub.quit()]);
  };
}

serve({
  async start(arg) {
    const { kind, prefix, nodeId, port } = arg as {
      kind: ClusterKind;
      prefix: string;
      nodeId: string;
      port?: number;
    };
    if (http !== undefined) throw new Error("already started");
    const server = createServer((_req, res) => {
      res.writeHead(404).end();
    });
    server.maxConnections = 100_000;
    stopNode = kind === "whisper" ? startWhisper(server, prefix, nodeId) : startSocketIo(server, prefix);
    const listening = await listenLoopback(server, port);
    http = server;
    return { port: listening };
  },
  settings() {
    if (whisper === undefined) throw new Error("not a WhisperChat node");
    const { nodeHeartbeatMs, limits } = whisper.settings;
    return { nodeHeartbeatMs, resumeGraceMs: limits.resumeGraceMs };
  },
  cpu: cpuMicros,
  mem() {
    fullGc();
    return process.memoryUsage();
  },
  async stop() {
    const stop = stopNode;
    stopNode = undefined;
    await stop?.();
    const server = http;
    http = undefined;
    server?.closeAllConnections();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    return null;
  },
});
