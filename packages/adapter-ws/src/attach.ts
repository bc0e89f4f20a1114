import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { Handshake, UpgradeGuardOptions, WhisperHub } from "@whisperchat/core";
import {
  admitHandshake,
  CloseCode,
  guardUpgrades,
  refusal,
  refuseUpgrade,
  SUBPROTOCOL,
} from "@whisperchat/core";
import { type WebSocket, WebSocketServer } from "ws";
import { wire } from "./connection.js";

/** Options of {@link attachWebSocket}. */
export interface WebSocketAdapterOptions {
  /** The HTTP server to mount on; its other routes and upgrade paths are left alone. */
  server: Server;
  /** The URL path of the endpoint. @default "/whisper" */
  path?: string;
  /** Largest frame accepted, in bytes; a larger one closes the connection with 1009. @default hub.limits.maxPayloadBytes */
  maxPayloadBytes?: number;
  /**
   * How often each connection is pinged, in ms. A connection that has not answered the
   * previous ping by the next one is terminated, so a dead peer is detected within two
   * intervals. @default 30000
   */
  heartbeatIntervalMs?: number;
  /** On `close()`, how long peers get to finish the closing handshake before they are cut off, in ms. @default 2000 */
  closeTimeoutMs?: number;
  /**
   * How long a handshake on the path may take to be admitted (the auth hook, the store), in ms.
   * Past it the client gets 503 and the socket is closed. @default 10000
   */
  handshakeTimeoutMs?: number;
  /**
   * Answer upgrade requests on paths that no WhisperChat adapter on this server serves with 404
   * at once, and close them. Turn it on when WhisperChat's adapters are the only upgrade
   * handlers of the server; an app with its own upgrade handler leaves it off, or registers its
   * paths with `guardUpgrades` from `@whisperchat/core`. @default false
   */
  refuseOtherUpgrades?: boolean;
  /**
   * With `refuseOtherUpgrades` off: an upgrade on another path that no handler has answered after
   * this many ms gets 404 and is closed, so that unanswered upgrades cannot pile up open sockets.
   * `0` leaves them alone. @default 10000
   */
  unclaimedUpgradeTimeoutMs?: number;
}

/** A mounted WebSocket endpoint. */
export interface WebSocketAdapter {
  /** The underlying `ws` server (escape hatch). */
  readonly wss: WebSocketServer;
  /** The path it serves. */
  readonly path: string;
  /**
   * Stops accepting upgrades on the path, stops the heartbeat and closes open connections with
   * 1001. Does not close the HTTP server or the hub.
   */
  close(): Promise<void>;
}

const KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * Mounts WhisperChat's WebSocket transport (docs/protocol.md section 2) on an existing HTTP server.
 *
 * ```ts
 * const server = http.createServer(app);
 * const hub = createWhisper({ store: createMemoryStore() });
 * attachWebSocket(hub, { server });            // ws://host/whisper
 * server.listen(3000);
 * ```
 */
export function attachWebSocket(hub: WhisperHub, options: WebSocketAdapterOptions): WebSocketAdapter {
  const path = options.path ?? "/whisper";
  if (!path.startsWith("/"))
    throw new TypeError(`attachWebSocket: path must start with "/", got ${JSON.stringify(path)}`);
  const heartbeatMs = options.heartbeatIntervalMs ?? 30_000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes ?? hub.limits.maxPayloadBytes,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  if (!Number.isFinite(handshakeTimeoutMs) || handshakeTimeoutMs <= 0)
    throw new RangeError(`attachWebSocket: handshakeTimeoutMs must be positive, got ${handshakeTimeoutMs}`);
  const alive = new WeakMap<WebSocket, boolean>();
  let closed = false;
  const guardOptions: UpgradeGuardOptions = { refuseUnclaimed: options.refuseOtherUpgrades === true };
  if (options.unclaimedUpgradeTimeoutMs !== undefined)
    guardOptions.unclaimedTimeoutMs = options.unclaimedUpgradeTimeoutMs;
  const guard = guardUpgrades(options.server, (req) => pathOf(req.url) === path, guardOptions);

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = parseUrl(req.url);
    if (url === undefined || url.pathname !== path) return; // the guard answers it
    // A shared function, not a closure: a closure here would keep the whole upgrade request
    // alive for as long as the socket lives.
    socket.on("error", destroyOnError);
    if (!isValidUpgrade(req)) {
      refuseUpgrade(socket, refusal(400, "bad_request", "not a valid WebSocket upgrade"));
      return;
    }
    const handshake: Handshake = {
      transport: "ws",
      headers: req.headers,
      params: queryParams(url.searchParams),
      remoteAddress: req.socket.remoteAddress ?? "",
    };
    // A handshake whose admission hangs (a slow hook, a store that does not answer) is answered
    // 503 in time; the admission, if it comes later, is given back.
    admitHandshake(hub, handshake, { closed: () => closed, timeoutMs: handshakeTimeoutMs }).then(
      (admission) => {
        if (!admission.ok) {
          refuseUpgrade(socket, admission);
          return;
        }
        let opened = false;
        if (!socket.destroyed) {
          // ws accepts synchronously, or destroys a socket that is no longer writable.
          wss.handleUpgrade(req, socket, head, (ws) => {
            opened = true;
            wire(hub, ws, admission, alive);
          });
        }
        // The socket died during the handshake: a resume it carried is given back.
        if (!opened) hub.cancel(admission);
      },
    );
  };

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();
  options.server.on("upgrade", onUpgrade);

  return {
    wss,
    path,
    close(): Promise<void> {
      closed = true;
      clearInterval(heartbeat);
      options.server.off("upgrade", onUpgrade);
      guard.release();
      for (const ws of wss.clients) ws.close(CloseCode.GoingAway, "server shutting down");
      // A peer that does not finish the closing handshake in time is cut off.
      const cutoff = setTimeout(() => {
        for (const ws of wss.clients) ws.terminate();
      }, closeTimeoutMs);
      return new Promise((resolve) =>
        wss.close(() => {
          clearTimeout(cutoff);
          resolve();
        }),
      );
    },
  };
}

function isValidUpgrade(req: IncomingMessage): boolean {
  if (req.method !== "GET") return false;
  if ((req.headers.upgrade ?? "").toLowerCase() !== "websocket") return false;
  const key = req.headers["sec-websocket-key"];
  if (typeof key !== "string" || !KEY.test(key)) return false;
  const version = req.headers["sec-websocket-version"];
  return version === "13" || version === "8";
}

function queryParams(search: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of search) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

function parseUrl(raw: string | undefined): URL | undefined {
  try {
    return new URL(raw ?? "/", "http://localhost");
  } catch {
    return undefined;
  }
}

function pathOf(raw: string | undefined): string | undefined {
  return parseUrl(raw)?.pathname;
}
