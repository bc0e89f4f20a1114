/**
 * The server of the soak benchmark (`bench/soak.ts`): one WhisperChat node on the memory store
 * through `@whisperchat/adapter-ws`, in a process of its own so that its memory is its own.
 * Driven over IPC:
 *
 * - `start()` starts the node on a loopback port and resolves `{ port, maxBufferedBytes }`. The
 *   message, churn and connection limits are raised out of the way (the load is the
 *   benchmark's, and every client comes from 127.0.0.1); everything else, resume included,
 *   keeps its default;
 * - `mem({ gc })` resolves `process.memoryUsage()`, after a full GC unless `gc` is false;
 * - `cpu()` resolves this process's CPU time so far (user + system, microseconds);
 * - `watch({ everyMs })` samples memory every `everyMs` until `unwatch()`, which resolves the
 *   peak RSS and peak JS heap + external seen, and the last sample;
 * - `stats()` resolves `hub.stats()` and what the hub's events counted: sessions opened and
 *   closed (by close code), connections dropped (away), resumes that succeeded and failed;
 * - `snapshot({ path })` writes a heap snapshot after a full GC (to look into memory; not used
 *   by the benchmark itself).
 */
import { createServer, type Server as HttpServer } from "node:http";
import { writeHeapSnapshot } from "node:v8";
import { attachWebSocket, type WebSocketAdapter } from "@whisperchat/adapter-ws";
import { createWhisper, type WhisperHub } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";
import { cpuMicros, fullGc, listenLoopback, serve } from "./ipc.js";
import { NO_LIMITS } from "./no-limits.js";

let http: HttpServer | undefined;
let hub: WhisperHub | undefined;
let adapter: WebSocketAdapter | undefined;

const counts = {
  opened: 0,
  closedByCode: {} as Record<string, number>,
  away: 0,
  resumeOk: 0,
  resumeFailed: 0,
};

interface Watch {
  timer: NodeJS.Timeout;
  peakRss: number;
  peakHeap: number;
  last: NodeJS.MemoryUsage;
  samples: number;
}
let watch: Watch | undefined;

serve({
  async start() {
    if (http !== undefined) throw new Error("already started");
    const server = createServer((_req, res) => {
      res.writeHead(404).end();
    });
    server.maxConnections = 100_000;
    hub = createWhisper({
      store: createMemoryStore(),
      ...NO_LIMITS,
    });
    hub.on("sessionOpened", () => {
      counts.opened++;
    });
    hub.on("sessionClosed", ({ code }) => {
      const key = String(code ?? "none");
      counts.closedByCode[key] = (counts.closedByCode[key] ?? 0) + 1;
    });
    hub.on("sessionAway", () => {
      counts.away++;
    });
    hub.on("resume", ({ ok }) => {
      if (ok) counts.resumeOk++;
      else counts.resumeFailed++;
    });
    adapter = attachWebSocket(hub, { server });
    const port = await listenLoopback(server);
    http = server;
    return { port, maxBufferedBytes: hub.settings.maxBufferedBytes };
  },
  mem(arg) {
    if ((arg as { gc?: boolean } | undefined)?.gc !== false) fullGc();
    return process.memoryUsage();
  },
  cpu: cpuMicros,
  watch(arg) {
    const { everyMs } = arg as { everyMs: number };
    if (watch !== undefined) clearInterval(watch.timer);
    const first = process.memoryUsage();
    const w: Watch = {
      peakRss: first.rss,
      peakHeap: first.heapUsed + first.external,
      last: first,
      samples: 1,
      timer: setInterval(() => {
        const m = process.memoryUsage();
        w.last = m;
        w.samples++;
        if (m.rss > w.peakRss) w.peakRss = m.rss;
        if (m.heapUsed + m.external > w.peakHeap) w.peakHeap = m.heapUsed + m.external;
      }, everyMs),
    };
    watch = w;
    return null;
  },
  unwatch() {
    const w = watch;
    if (w === undefined) throw new Error("not watching");
    clearInterval(w.timer);
    watch = undefined;
    return { peakRss: w.peakRss, peakHeap: w.peakHeap, last: w.last, samples: w.samples };
  },
  /** Writes a heap snapshot to `path` after a full GC (for looking into memory, not part of the results). */
  snapshot(arg) {
    fullGc();
    return writeHeapSnapshot((arg as { path: string }).path);
  },
  async stats() {
    if (hub === undefined) return null;
    return { hub: await hub.stats(), events: counts };
  },
  async stop() {
    await adapter?.close();
    await hub?.close();
    const server = http;
    http = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    return null;
  },
});
