import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { attachSocketIo, type SocketIoAdapter } from "@whisperchat/adapter-socketio";
import { attachWebSocket, type WebSocketAdapter } from "@whisperchat/adapter-ws";
import {
  CloseCode,
  createWhisper,
  rolePolicy,
  type Store,
  WhisperError,
  type WhisperHub,
  withStoreClose,
} from "@whisperchat/core";
import {
  type Accounts,
  createAccounts,
  createJwtAuth,
  isAccountError,
  type JwtAuth,
} from "@whisperchat/core/auth";
import { type PrometheusMetrics, prometheusMetrics } from "@whisperchat/core/prometheus";
import { createMemoryStore } from "@whisperchat/store-memory";
import { createRedisStore } from "@whisperchat/store-redis";
import { build } from "esbuild";
import { Cluster, Redis } from "ioredis";
import { ConfigError, type DemoConfig } from "./config.js";

/** A running demo server. */
export interface Demo {
  server: Server;
  hub: WhisperHub;
  store: Store;
  adapter: WebSocketAdapter;
  socketIo: SocketIoAdapter;
  jwt: JwtAuth;
  accounts: Accounts;
  metrics: PrometheusMetrics;
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

/**
 * Bundles `@whisperchat/client` (from its TypeScript source) into one browser ES module, served
 * as `/client.js`: no CDN, and no build step before `npm start`.
 */
async function buildClientBundle(): Promise<Uint8Array> {
  const result = await build({
    stdin: {
      contents: 'export * from "@whisperchat/client";',
      resolveDir: fileURLToPath(new URL(".", import.meta.url)),
      loader: "js",
      sourcefile: "client-entry.js",
    },
    conditions: ["@whisperchat/source"],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error("esbuild produced no client bundle");
  return file.contents;
}

/** The page, with the settings it shows filled in (see the `meta` tags of public/index.html). */
async function pageHtml(config: DemoConfig): Promise<string> {
  const html = await readFile(`${PUBLIC}index.html`, "utf8");
  return html.replace(
    /(<meta name="whisper-next-cooldown-ms" content=)""/,
    `$1"${Math.trunc(config.nextCooldownMs)}"`,
  );
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
  res.end(text);
}

/**
 * The store the settings ask for. With Redis (one server, or a Redis Cluster from its seed
 * nodes), the demo owns the client: closing the store quits it too. A Redis that cannot be
 * reached at start stops the demo with a clear message.
 */
async function openStore(config: DemoConfig, log: (line: string) => void): Promise<Store> {
  if (config.store === "memory") return createMemoryStore();
  // A call fails after one reconnect attempt, and never waits longer than 2 s for a reply
  // (the settings packages/store-redis/README.md recommends).
  const callOptions = { maxRetriesPerRequest: 1, commandTimeout: 2000 };
  const seeds = config.redisCluster;
  const client =
    seeds === undefined
      ? new Redis(config.redisUrl, { ...callOptions, lazyConnect: true })
      : // No ioredis `keyPrefix` here: the store prefixes its keys itself (WHISPER_KEY_PREFIX).
        new Cluster(
          seeds.map(({ host, port }) => ({ host, port })),
          { redisOptions: callOptions, lazyConnect: true },
        );
  const where =
    seeds === undefined
      ? `Redis at ${config.redisUrl}`
      : `Redis Cluster at ${seeds.map(({ host, port }) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)).join(",")}`;
  client.on("error", (error: Error) => log(`whisperchat demo: Redis: ${error.message}`));
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new ConfigError(
      `cannot reach ${where} (${error instanceof Error ? error.message : String(error)}); start it or set ${seeds === undefined ? "REDIS_URL" : "REDIS_CLUSTER"}`,
    );
  }
  // The store as it is (its optional relay included), but closing it quits the client too.
  return withStoreClose(createRedisStore({ client, keyPrefix: config.keyPrefix }), async (closeStore) => {
    await closeStore();
    await client.quit().catch(() => undefined);
  });
}

/** The most a JSON request body may hold, in bytes. */
const MAX_BODY = 4096;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type))
    throw new HttpError(415, "send a JSON body (Content-Type: application/json)");
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) throw new HttpError(413, `the body must be at most ${MAX_BODY} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    // The client went away or was cut off (requestTimeout) mid-body: nothing to log; the
    // answer goes nowhere unless the socket is still open.
    throw new HttpError(400, "the request body was cut off");
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * The path of a request target, or `undefined` (answered 400) when it is not a usable one.
 * `new URL` reads a target that starts with `//` as scheme-relative: it throws on `//` and
 * `//x:y`, and would take `//host/healthz` for `/healthz`; all such targets are refused.
 */
function pathOf(target: string | undefined): string | undefined {
  if (target === undefined || target.startsWith("//")) return undefined;
  try {
    return new URL(target, "http://localhost").pathname;
  } catch {
    return undefined;
  }
}

function bearerOf(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  return m?.[1];
}

/** Starts the demo: the page, /healthz, /auth, /admin/stats, /metrics and the WebSocket endpoint. */
export async function startDemo(
  config: DemoConfig,
  log: (line: string) => void = console.warn,
): Promise<Demo> {
  let secret = config.jwtSecret;
  if (secret === undefined) {
    secret = randomBytes(32).toString("base64url");
    log("whisperchat demo: JWT_SECRET is not set; using a random secret, so tokens end with this process");
  } else if (Buffer.byteLength(secret) < 32) {
    throw new ConfigError("JWT_SECRET must be at least 32 bytes long (HS256)");
  }
  const clientBundle = await buildClientBundle();
  const jwt = createJwtAuth({ secret });
  const store = await openStore(config, log);
  const policy = rolePolicy({});
  const hub = createWhisper({
    store,
    messageRate: { capacity: config.msgBurst, ratePerSec: config.msgPerSec },
    // Every limit a message passes comes from the settings: a user's sessions together (say,
    // two tabs) may send twice what one session may.
    userMessageRate: { capacity: config.msgBurst * 2, ratePerSec: config.msgPerSec * 2 },
    // Messages sent at once are requests in flight together: a burst the settings allow must
    // fit (the hub's default is 32).
    maxPendingRequests: Math.max(32, Math.ceil(config.msgBurst)),
    connectRate: { capacity: config.connectBurst, ratePerSec: config.connectPerSec },
    allowGuests: config.auth === "guest",
    authenticate: jwt.authenticate,
    reauthenticate: jwt.reauthenticate,
    authorize: policy,
    resumeGraceMs: config.resumeGraceMs,
    nextCooldownMs: config.nextCooldownMs,
  });
  hub.on("error", ({ error }) => console.error("[whisperchat]", error));
  const accounts = createAccounts({ store, jwt });
  const metrics = prometheusMetrics(hub);
  let draining = false;

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>> = {
    "POST /auth/register": async (req, res) => {
      const body = await readJson(req);
      const ip = hub.clientAddress(req.socket.remoteAddress ?? "", req.headers);
      const account = await accounts.register({
        name: body.name as string,
        password: body.password as string,
        ip,
      });
      json(res, 201, { userId: account.userId, name: account.name });
    },
    "POST /auth/login": async (req, res) => {
      const body = await readJson(req);
      const ip = hub.clientAddress(req.socket.remoteAddress ?? "", req.headers);
      const result = await accounts.login({
        name: body.name as string,
        password: body.password as string,
        ip,
      });
      json(res, 200, {
        token: result.token,
        expiresAt: result.expiresAt,
        userId: result.userId,
        name: result.name,
      });
    },
    "GET /admin/stats": async (req, res) => {
      const token = bearerOf(req);
      if (token === undefined) throw new HttpError(401, "send an admin token: Authorization: Bearer <token>");
      let identity: Awaited<ReturnType<JwtAuth["verify"]>>["identity"];
      try {
        identity = (await jwt.verify(token)).identity;
      } catch (error) {
        throw new HttpError(401, error instanceof Error ? error.message : "invalid token");
      }
      const stats = await hub.stats({ by: identity });
      json(res, 200, {
        sessions: stats.sessions,
        waiting: stats.waiting,
        rooms: stats.rooms,
        messages: stats.messages,
        byState: stats.byState,
      });
    },
    "GET /metrics": async (_req, res) => {
      res.writeHead(200, { "Content-Type": metrics.contentType, "Cache-Control": "no-store" });
      res.end(await metrics.metrics());
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = pathOf(req.url);
    if (path === undefined) return json(res, 400, { error: "bad request target" });
    if (path === "/healthz") {
      if (draining) return json(res, 503, { ok: false, reason: "draining" });
      try {
        // One cheap read of the store (not `pool.size()`, which reads every cell of a sharded pool).
        await store.pool.get("healthz");
        return json(res, 200, { ok: true });
      } catch {
        return json(res, 503, { ok: false, reason: "store unreachable" });
      }
    }
    const route = routes[`${req.method} ${path}`];
    if (route !== undefined) {
      try {
        await route(req, res);
      } catch (error) {
        if (error instanceof HttpError) {
          res.writeHead(error.status, {
            "Content-Type": "application/json; charset=utf-8",
            ...error.headers,
          });
          res.end(JSON.stringify({ error: error.message }));
        } else if (isAccountError(error)) {
          const headers: Record<string, string> = { "Content-Type": "application/json; charset=utf-8" };
          if (error.retryAfterMs !== undefined)
            headers["Retry-After"] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
          res.writeHead(error.status, headers);
          res.end(JSON.stringify({ error: error.message, code: error.code }));
        } else if (error instanceof WhisperError && error.code === "forbidden") {
          json(res, 403, { error: "this needs the admin role" });
        } else throw error;
      }
      return;
    }
    if (path === "/client.js" && (req.method === "GET" || req.method === "HEAD")) {
      res.writeHead(200, {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "no-cache",
        ...SECURITY_HEADERS,
      });
      res.end(req.method === "HEAD" ? undefined : clientBundle);
      return;
    }
    const asset = STATIC[path];
    if (asset !== undefined && (req.method === "GET" || req.method === "HEAD")) {
      const body = asset.file === "index.html" ? await pageHtml(config) : await readFile(PUBLIC + asset.file);
      res.writeHead(200, { "Content-Type": asset.type, "Cache-Control": "no-cache", ...SECURITY_HEADERS });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    json(res, 404, { error: "not found" });
  };

  const server = createServer(
    {
      headersTimeout: config.httpHeadersTimeoutMs,
      requestTimeout: config.httpRequestTimeoutMs,
      // Node checks the two timeouts above every this many ms (30 s by default, which would
      // stretch a 10 s timeout to 40).
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(1000, Math.floor(Math.min(config.httpHeadersTimeoutMs, config.httpRequestTimeoutMs) / 2)),
      ),
    },
    (req, res) => {
      handle(req, res).catch((error) => {
        console.error("[demo]", error);
        if (!res.headersSent) json(res, 500, { error: "internal" });
        else res.destroy();
      });
    },
  );
  server.keepAliveTimeout = config.httpKeepAliveTimeoutMs;
  // The demo's HTTP server has no other upgrade handler: any upgrade that is not WhisperChat's
  // is answered 404 at once, so that unanswered upgrades cannot pile up open sockets.
  const adapter = attachWebSocket(hub, { server, refuseOtherUpgrades: true });
  // Socket.IO at /socket.io/ on the same server and hub: ws and Socket.IO clients can be matched.
  const socketIo = attachSocketIo(hub, { server, refuseOtherUpgrades: true });
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
    socketIo,
    jwt,
    accounts,
    metrics,
    url: `http://${host}:${port}`,
    async close() {
      draining = true;
      server.close();
      await hub.close({ code: CloseCode.Restart, reason: "server restarting: reconnect" });
      await socketIo.close();
      await adapter.close();
      server.closeAllConnections();
      metrics.close();
      await store.close();
    },
  };
}
