import type { Admission, Admitted, Handshake, Refusal, SessionLink, WhisperHub } from "@whisperchat/core";
import { admitHandshake, CloseCode, isPlainObject, refusal, unavailable } from "@whisperchat/core";
import { type ExtendedError, Server, type Socket } from "socket.io";
import { receive, SocketConnection } from "./connection.js";
import { corkOnFlush, guardEngineUpgrades, limitEngineHandshakes } from "./engine.js";
import {
  CLOSE_EVENT,
  type CloseEventData,
  type RefusalData,
  type SocketIoAdapter,
  type SocketIoAdapterOptions,
} from "./options.js";

const MAX_AUTH_PARAMS = 32;

/**
 * Mounts WhisperChat's Socket.IO transport (docs/protocol.md section 3) on the app's Socket.IO
 * server, or on a new one created on its HTTP server.
 *
 * ```ts
 * const io = new Server(httpServer, { maxHttpBufferSize: hub.limits.maxPayloadBytes });
 * attachSocketIo(hub, { io, namespace: "/whisper" });
 * // or: attachSocketIo(hub, { server: httpServer });   // served at /socket.io/
 * ```
 */
export function attachSocketIo(hub: WhisperHub, options: SocketIoAdapterOptions): SocketIoAdapter {
  const name = options.namespace ?? "/";
  if (typeof name !== "string" || !name.startsWith("/"))
    throw new TypeError(`attachSocketIo: namespace must start with "/", got ${JSON.stringify(name)}`);
  let io: Server;
  let created = false;
  if (options.io !== undefined) {
    if (options.server !== undefined)
      throw new TypeError("attachSocketIo: pass either `io` (an existing server) or `server`, not both");
    io = options.io;
  } else if (options.server !== undefined) {
    const path = options.path ?? "/socket.io/";
    if (!path.startsWith("/"))
      throw new TypeError(`attachSocketIo: path must start with "/", got ${JSON.stringify(path)}`);
    io = new Server(options.server, {
      maxHttpBufferSize: hub.limits.maxPayloadBytes,
      destroyUpgrade: false,
      ...options.serverOptions,
      path,
    });
    created = true;
  } else {
    throw new TypeError("attachSocketIo: pass `io` (your socket.io Server) or `server` (an http.Server)");
  }

  if (options.limitHandshakes !== false) limitEngineHandshakes(hub, io);
  const guard = guardEngineUpgrades(io, options);
  const nsp = io.of(name);
  const admitted = new WeakMap<Socket, Admitted>();
  const live = new Map<Socket, SocketConnection>();
  let closed = false;

  nsp.use((socket, next) => {
    admit(hub, socket, () => closed).then(
      (admission) => {
        if (!admission.ok) {
          next(refusalError(admission));
          return;
        }
        if (socket.conn.readyState !== "open") {
          // The client left during the admission: Socket.IO will not emit `connection`, so a
          // resume it carried is given back at once.
          hub.cancel(admission);
          next(refusalError(unavailable("the connection closed during the handshake")));
          return;
        }
        admitted.set(socket, admission);
        next();
      },
      () => next(refusalError(unavailable("admission failed"))),
    );
  });

  const onConnection = (socket: Socket): void => {
    const admission = admitted.get(socket);
    if (admission !== undefined) {
      admitted.delete(socket);
      start(socket, admission);
      return;
    }
    // Socket.IO's connection state recovery may skip middlewares: admit now, holding the
    // requests that arrive meanwhile.
    const held: unknown[][] = [];
    const hold = (...event: unknown[]): void => {
      if (held.length < hub.settings.maxPendingRequests) held.push(event);
    };
    socket.onAny(hold);
    socket.on("error", ignore);
    admit(hub, socket, () => closed).then(
      (late) => {
        socket.offAny(hold);
        if (!socket.connected) {
          hub.cancel(late);
          return;
        }
        if (!late.ok) {
          socket.emit(CLOSE_EVENT, { code: CloseCode.Policy, reason: late.message } satisfies CloseEventData);
          socket.disconnect();
          return;
        }
        const link = start(socket, late);
        for (const [event, ...args] of held) receive(link, event, args);
      },
      () => {
        socket.offAny(hold);
        socket.disconnect();
      },
    );
  };

  // Listeners shared by every socket of the namespace (Socket.IO calls them with the socket as
  // `this`), so that an idle session costs the adapter one small object.
  function onEvent(this: Socket, event: unknown, ...args: unknown[]): void {
    const link = live.get(this)?.link;
    if (link !== undefined) receive(link, event, args);
  }
  function onDisconnect(this: Socket, reason: string): void {
    const connection = live.get(this);
    if (connection === undefined) return;
    live.delete(this);
    const link = connection.link;
    const code = connection.serverCode ?? closeCodeOf(reason);
    // Socket.IO reports the disconnect synchronously, possibly from inside `close` while core
    // is still ending the session: tell core once it is done, as a WebSocket close would.
    if (link !== undefined) queueMicrotask(() => link.closed(code));
  }

  const start = (socket: Socket, admission: Admitted): SessionLink => {
    const connection = new SocketConnection(socket, hub.settings.maxBufferedBytes);
    live.set(socket, connection);
    // A client may emit an event named "error": without a listener Node's EventEmitter throws.
    socket.on("error", ignore);
    socket.on("disconnect", onDisconnect);
    socket.conn.on("flush", corkOnFlush);
    const link = hub.open(admission, connection);
    connection.link = link;
    socket.onAny(onEvent);
    return link;
  };

  nsp.on("connection", onConnection);

  return {
    io,
    namespace: nsp,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      nsp.off("connection", onConnection);
      guard?.release();
      for (const connection of [...live.values()])
        connection.close(CloseCode.GoingAway, "server shutting down");
      if (created) io.engine.close();
    },
  };
}

/** Builds the core handshake from a Socket.IO socket and asks the hub. */
function admit(hub: WhisperHub, socket: Socket, isClosed: () => boolean): Promise<Admission> {
  const params = authParams(socket.handshake.auth);
  if (params === null) {
    const message = "`auth.token`, `auth.resume`, `auth.last` and `auth.device` must be strings when given";
    return Promise.resolve(refusal(400, "bad_request", message));
  }
  const handshake: Handshake = {
    transport: "socket.io",
    headers: socket.handshake.headers,
    params,
    remoteAddress: socket.handshake.address ?? "",
  };
  return admitHandshake(hub, handshake, { closed: isClosed });
}

/**
 * The string fields of the Socket.IO auth payload. `token`, `resume`, `last` and `device` must be strings when
 * given (`null` counts as absent); `null` marks a malformed payload.
 */
function authParams(auth: unknown): Record<string, string> | null {
  const out: Record<string, string> = {};
  if (auth === undefined || auth === null) return out;
  if (!isPlainObject(auth)) return null;
  for (const key of ["token", "resume", "last", "device"]) {
    const value = auth[key];
    if (value !== undefined && value !== null && typeof value !== "string") return null;
  }
  let n = 0;
  for (const [key, value] of Object.entries(auth)) {
    if (typeof value !== "string") continue;
    if (++n > MAX_AUTH_PARAMS) break;
    out[key] = value;
  }
  return out;
}

function refusalError(refusal: Refusal): ExtendedError {
  const error: ExtendedError = new Error(refusal.message);
  const data: RefusalData = { code: refusal.code, status: refusal.status };
  if (refusal.retryAfterSec !== undefined) data.retryAfterSec = refusal.retryAfterSec;
  error.data = data;
  return error;
}

/** The close code reported to core for a disconnect the server did not initiate. */
function closeCodeOf(reason: string): number {
  switch (reason) {
    case "client namespace disconnect":
    case "server namespace disconnect":
    case "forced server close":
      return CloseCode.Normal;
    case "server shutting down":
      return CloseCode.GoingAway;
    default:
      // transport close or error, ping timeout, parse error (e.g. a packet over the limit)
      return 1006;
  }
}

function ignore(): void {}
