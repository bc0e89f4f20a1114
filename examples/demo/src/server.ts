import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { attachWebSocket, type WebSocketAdapter } from "@whisperchat/adapter-ws";
import { CloseCode, createWhisper, type Store, type WhisperHub } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";
import { ConfigError, type DemoConfig } from "./config.js";

/** A running demo server. */
export interface Demo {
  server: Server;
  hub: WhisperHub;
  store: Store;
  adapter: WebSocketAdapter;
  /** The base URL, e.g. `http://127.0.0.1:3000`. */
  url: string;
  /** Drains: stops accepting, closes sessions with 1012 (reconnect and resume), then closes. */
  close(): Promise<void>;
}

const PUBLIC = fileURLToPath(new URL("../public/", import.meta.url));
const STATIC: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
};
const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
  res.end(text);
}

/** Starts the demo: the page, /healthz and the WebSocket endpoint at /whisper. */
export async function startDemo(config: DemoConfig): Promise<Demo> {
  if (config.store !== "memory") {
    throw new ConfigError("WHISPER_STORE=redis is not available in this version of the demo; use memory");
  }
  const store = createMemoryStore();
  const hub = createWhisper({
    store,
    messageRate: { capacity: config.msgBurst, ratePerSec: config.msgPerSec },
    connectRate: { capacity: config.connectBurst, ratePerSec: config.connectPerSec },
    allowGuests: config.auth === "guest",
    resumeGraceMs: config.resumeGraceMs,
  });
  hub.on("error", ({ error }) => console.error("[whisperchat]", error));
  let draining = false;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === "/healthz") {
      if (draining) return json(res, 503, { ok: false, reason: "draining" });
      try {
        await store.pool.size();
        return json(res, 200, { ok: true });
      } catch {
        return json(res, 503, { ok: false, reason: "store unreachable" });
      }
    }
    const asset = STATIC[path];
    if (asset !== undefined && (req.method === "GET" || req.method === "HEAD")) {
      const body = await readFile(PUBLIC + asset.file);
      res.writeHead(200, { "Content-Type": asset.type, "Cache-Control": "no-cache", ...SECURITY_HEADERS });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    json(res, 404, { error: "not found" });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      console.error("[demo]", error);
      if (!res.headersSent) json(res, 500, { error: "internal" });
      else res.destroy();
    });
  });
  const adapter = attachWebSocket(hub, { server });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  return {
    server,
    hub,
    store,
    adapter,
    url: `http://${host}:${port}`,
    async close() {
      draining = true;
      server.close();
      await hub.close({ code: CloseCode.Restart, reason: "server restarting: reconnect" });
      await adapter.close();
      server.closeAllConnections();
      await store.close();
    },
  };
}
