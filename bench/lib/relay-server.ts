/**
 * The server side of the relay benchmark, in a process of its own so that its CPU time and
 * memory are its own. Driven over IPC by `bench/relay.ts`:
 *
 * - `start({ kind })` starts one of the three servers on a loopback port and resolves `{ port }`;
 * - `cpu()` resolves this process's CPU time so far (user + system, microseconds);
 * - `mem()` runs a full GC and resolves `process.memoryUsage()`.
 *
 * The three servers relay a message from a client to its partner:
 * - `whisper`: WhisperChat (memory store) through `@whisperchat/adapter-ws`, limits raised out of
 *   the way; clients pair by joining nearby points;
 * - `whisper-metrics`: the same with `prometheusMetrics(hub)` attached;
 * - `whisper-demo`: the configuration `npm start` runs (examples/demo): metrics, the JWT
 *   authentication hook (clients connect as guests, the demo's default), the role policy, and
 *   both transports mounted on the server; the same limits raised out of the way;
 * - `ws`: a bare `ws` server; each client names its pair and side in the URL and every message
 *   is forwarded unchanged to the other side;
 * - `socketio`: a bare Socket.IO server with the same pairing; `m` events are re-emitted to the
 *   partner.
 */
import { createServer, type Server as HttpServer } from "node:http";
import { writeHeapSnapshot } from "node:v8";
import { attachSocketIo } from "@whisperchat/adapter-socketio";
import { attachWebSocket } from "@whisperchat/adapter-ws";
import type { WhisperHub } from "@whisperchat/core";
import { prometheusMetrics } from "@whisperchat/core/prometheus";
import { Server as IoServer, type Socket } from "socket.io";
import { type WebSocket, WebSocketServer } from "ws";
import { cpuMicros, fullGc, listenLoopback, serve } from "./ipc.js";
import { benchHub } from "./no-limits.js";
import { isWhisper, type ServerKind } from "./relay-config.js";

let http: HttpServer | undefined;
let hub: WhisperHub | undefined;

function pairOf(url: string | undefined): { pair: number; side: 0 | 1 } {
  const q = new URL(url ?? "/", "http://localhost").searchParams;
  return { pair: Number(q.get("pair")), side: q.get("side") === "1" ? 1 : 0 };
}

function startWhisper(server: HttpServer, kind: ServerKind): void {
  const demo = kind === "whisper-demo";
  hub = benchHub(demo);
  attachWebSocket(hub, { server });
  if (kind !== "whisper") prometheusMetrics(hub);
  if (demo) attachSocketIo(hub, { server });
}

function startWs(server: HttpServer): void {
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const pairs = new Map<number, [WebSocket | undefined, WebSocket | undefined]>();
  wss.on("connection", (ws, req) => {
    const { pair, side } = pairOf(req.url);
    let slots = pairs.get(pair);
    if (slots === undefined) {
      slots = [undefined, undefined];
      pairs.set(pair, slots);
    }
    slots[side] = ws;
    const mine = slots;
    const other = side === 0 ? 1 : 0;
    ws.on("message", (data, isBinary) => {
      mine[other]?.send(data, { binary: isBinary });
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      if (mine[side] === ws) mine[side] = undefined;
      if (mine[0] === undefined && mine[1] === undefined) pairs.delete(pair);
    });
  });
}

function startSocketIo(server: HttpServer): void {
  const io = new IoServer(server, { serveClient: false });
  const pairs = new Map<number, [Socket | undefined, Socket | undefined]>();
  io.on("connection", (socket) => {
    const q = socket.handshake.query;
    const pair = Number(q.pair);
    const side = q.side === "1" ? 1 : 0;
    let slots = pairs.get(pair);
    if (slots === undefined) {
      slots = [undefined, undefined];
      pairs.set(pair, slots);
    }
    slots[side] = socket;
    const mine = slots;
    const other = side === 0 ? 1 : 0;
    socket.on("m", (payload: unknown) => {
      mine[other]?.emit("m", payload);
    });
    socket.on("disconnect", () => {
      if (mine[side] === socket) mine[side] = undefined;
      if (mine[0] === undefined && mine[1] === undefined) pairs.delete(pair);
    });
  });
}

serve({
  async start(arg) {
    const { kind } = arg as { kind: ServerKind };
    if (http !== undefined) throw new Error("already started");
    const server = createServer((_req, res) => {
      res.writeHead(404).end();
    });
    // Thousands of connections arrive at once in the memory measurement.
    server.maxConnections = 100_000;
    if (isWhisper(kind)) startWhisper(server, kind);
    else if (kind === "ws") startWs(server);
    else startSocketIo(server);
    const port = await listenLoopback(server);
    http = server;
    return { port };
  },
  cpu: cpuMicros,
  mem() {
    fullGc();
    return process.memoryUsage();
  },
  /** Writes a heap snapshot to `path` after a full GC (for looking into memory, not part of the results). */
  snapshot(arg) {
    fullGc();
    return writeHeapSnapshot((arg as { path: string }).path);
  },
  async stats() {
    return hub === undefined ? null : await hub.stats();
  },
});
