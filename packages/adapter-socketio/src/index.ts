import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type {
  AckFrame,
  Admission,
  Admitted,
  Connection,
  ErrorCode,
  Handshake,
  PongFrame,
  Refusal,
  ReplyFrame,
  ServerFrame,
  SessionLink,
  UpgradeGuardOptions,
  UpgradeRegistration,
  WaitingFrame,
  WhisperHub,
} from "@whisperchat/core";
import { CloseCode, guardUpgrades } from "@whisperchat/core";
import { type ExtendedError, type Namespace, Server, type ServerOptions, type Socket } from "socket.io";

interface CommonOptions {
  /**
   * The Socket.IO namespace WhisperChat serves. Every socket of this namespace becomes a
   * WhisperChat session, so pick a namespace of its own (e.g. `"/whisper"`) when the app uses
   * `"/"` for its own events. @default "/"
   */
  namespace?: string;
  /**
   * Pass every new Engine.IO handshake through the hub's connection limiter (the `connectRate`
   * rule per client address, the connection cap, draining) in the engine's `allowRequest`,
   * before the engine keeps any state for it. A refused handshake gets engine.io's own refusal with
   * the reason as its message (HTTP 403 for polling, 400 for a WebSocket-first handshake). An `allowRequest` of the app's own still runs after it. With `io`,
   * this applies to every namespace of the app's server. @default true
   */
  limitHandshakes?: boolean;
  /**
   * Answer upgrade requests on paths that no WhisperChat adapter on the HTTP server serves with
   * 404 at once, and close them. Turn it on when WhisperChat's adapters are the only upgrade
   * handlers of the server (see `guardUpgrades` in `@whisperchat/core` for apps with their own).
   * @default false
   */
  refuseOtherUpgrades?: boolean;
  /**
   * With `refuseOtherUpgrades` off: an upgrade on another path that no handler has answered after
   * this many ms gets 404 and is closed, so that unanswered upgrades cannot pile up open sockets.
   * `0` leaves them alone. @default 10000
   */
  unclaimedUpgradeTimeoutMs?: number;
}

/** Attach to a Socket.IO `Server` the app already has. */
export interface AttachToServerOptions extends CommonOptions {
  /**
   * The app's Socket.IO server. Its other namespaces, middlewares and events are left alone.
   * Set its `maxHttpBufferSize` to the hub's `limits.maxPayloadBytes` (Socket.IO's default is
   * 1 MB); when it shares the HTTP server with other upgrade handlers (e.g. adapter-ws), also
   * set `destroyUpgrade: false`.
   */
  io: Server;
  /** Only when creating a server: not with `io`. */
  server?: never;
  /** Only when creating a server: not with `io`. */
  path?: never;
  /** Only when creating a server: not with `io`. */
  serverOptions?: never;
}

/** Create a Socket.IO `Server` on the app's HTTP server. */
export interface CreateServerOptions extends CommonOptions {
  /** The HTTP(S) server to mount on; its other routes and upgrade paths are left alone. */
  server: HttpServer | HttpsServer;
  /** Socket.IO's endpoint path. @default "/socket.io/" */
  path?: string;
  /**
   * Passed to `new Server(server, ...)` (e.g. `cors`), over the adapter's defaults
   * `{ maxHttpBufferSize: hub.limits.maxPayloadBytes, destroyUpgrade: false }`.
   * @default {}
   */
  serverOptions?: Partial<ServerOptions>;
  /** Only when attaching to an existing server: not with `server`. */
  io?: never;
}

/** Options of {@link attachSocketIo}: either `io` (an existing server) or `server` (create one). */
export type SocketIoAdapterOptions = AttachToServerOptions | CreateServerOptions;

/** A mounted Socket.IO endpoint. */
export interface SocketIoAdapter {
  /** The Socket.IO server (the app's, or the one the adapter created). */
  readonly io: Server;
  /** The namespace WhisperChat serves (escape hatch). */
  readonly namespace: Namespace;
  /**
   * Refuses new connections (503), and disconnects every WhisperChat socket after a `close`
   * event with code 1001. When the adapter created the Socket.IO server, its engine is closed
   * too. Does not close the HTTP server, the app's own Socket.IO server or the hub.
   */
  close(): Promise<void>;
}

/** `connect_error.data` of a refused connection (docs/protocol.md section 3). */
export interface RefusalData {
  /** The protocol error code, e.g. `unauthorized` for 401. */
  code: ErrorCode;
  /** The HTTP status of docs/protocol.md section 2: 400, 401, 403, 429 or 503. */
  status: Refusal["status"];
  /** For 429 and 503 when known: seconds after which trying again makes sense. */
  retryAfterSec?: number;
}

/** The `error` of a failed request answered through an ack callback. */
export interface AckError {
  code: ErrorCode;
  message: string;
  /** For `rate_limited`: milliseconds until the request may succeed. */
  retryAfterMs?: number;
}

/**
 * What an ack callback receives: the fields of `ack` (for `message`, `leave`, `auth`),
 * `waiting` (for `join`, `next`, `block`) or `pong` (for `ping`) with `ok: true`, or the error.
 */
export type AckAnswer =
  | ({ ok: true } & Omit<AckFrame, "type">)
  | ({ ok: true } & Omit<WaitingFrame, "type">)
  | ({ ok: true } & Omit<PongFrame, "type">)
  | { ok: false; error: AckError };

/** Payload of the `close` event the server emits right before it disconnects a socket. */
export interface CloseEventData {
  /** A close code of docs/protocol.md section 2, e.g. 1001 (shutting down) or 1008 (policy). */
  code: number;
  /** A human-readable reason. */
  reason: string;
}

/** The event carrying the protocol close code, emitted just before the server disconnects. */
export const CLOSE_EVENT = "close";

/** Close codes after which the whole underlying connection goes, not only the namespace. */
const TRANSPORT_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.Policy,
  CloseCode.TooLarge,
  CloseCode.Internal,
]);

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

type AllowRequest = (
  req: IncomingMessage,
  fn: (err: string | null | undefined, success: boolean) => void,
) => void;

/** The engine's options, where `allowRequest` lives (engine.io reads it on every handshake). */
interface EngineWithOptions {
  opts?: { allowRequest?: AllowRequest };
}

/**
 * Puts the hub's handshake limiter in front of the engine's `allowRequest` (the app's own, if
 * any, runs after it). Done once per engine.
 */
function limitEngineHandshakes(hub: WhisperHub, io: Server): void {
  const engine = io.engine as unknown as EngineWithOptions | undefined;
  const opts = engine?.opts;
  if (opts === undefined || limitedEngines.has(opts)) return;
  limitedEngines.add(opts);
  const inner = opts.allowRequest;
  opts.allowRequest = (req, fn) => {
    hub.throttleHandshake(req.socket.remoteAddress ?? "", req.headers).then(
      (refusal) => {
        if (refusal !== undefined) fn(refusal.message, false);
        else if (inner !== undefined) inner(req, fn);
        else fn(null, true);
      },
      () => fn("the server could not admit the connection; try again", false),
    );
  };
}

const limitedEngines = new WeakSet<object>();

/** Registers the engine's path with the upgrade guard of its HTTP server (see `guardUpgrades`). */
function guardEngineUpgrades(io: Server, options: CommonOptions): UpgradeRegistration | undefined {
  const server = (io as unknown as { httpServer?: HttpServer | HttpsServer }).httpServer;
  if (server === undefined) return undefined;
  const prefix = `${io.path().replace(/\/$/, "")}/`;
  const guardOptions: UpgradeGuardOptions = { refuseUnclaimed: options.refuseOtherUpgrades === true };
  if (options.unclaimedUpgradeTimeoutMs !== undefined)
    guardOptions.unclaimedTimeoutMs = options.unclaimedUpgradeTimeoutMs;
  return guardUpgrades(server, (req) => (req.url ?? "").startsWith(prefix), guardOptions);
}

/** Builds the core handshake from a Socket.IO socket and asks the hub. */
async function admit(hub: WhisperHub, socket: Socket, isClosed: () => boolean): Promise<Admission> {
  if (isClosed()) return unavailable("the endpoint is closed");
  const params = authParams(socket.handshake.auth);
  if (params === null) {
    return {
      ok: false,
      status: 400,
      code: "bad_request",
      message: "`auth.token`, `auth.resume` and `auth.last` must be strings when given",
    } satisfies Refusal;
  }
  const handshake: Handshake = {
    transport: "socket.io",
    headers: socket.handshake.headers,
    params,
    remoteAddress: socket.handshake.address ?? "",
  };
  return hub.admit(handshake);
}

/**
 * The string fields of the Socket.IO auth payload. `token`, `resume` and `last` must be strings when
 * given (`null` counts as absent); `null` marks a malformed payload.
 */
function authParams(auth: unknown): Record<string, string> | null {
  const out: Record<string, string> = {};
  if (auth === undefined || auth === null) return out;
  if (!isPlainObject(auth)) return null;
  for (const key of ["token", "resume", "last"]) {
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

/**
 * One client event: `type` is the event name, the payload its fields. A payload that is not
 * one plain object is handed to core as it came (an array), which answers `bad_request`.
 */
function receive(link: SessionLink, event: unknown, args: unknown[]): void {
  const last = args.length > 0 ? args[args.length - 1] : undefined;
  const ack = typeof last === "function" ? (last as (answer: AckAnswer) => void) : undefined;
  const values = ack === undefined ? args : args.slice(0, -1);
  let frame: unknown;
  if (values.length === 0) frame = { type: event };
  else if (values.length === 1 && isPlainObject(values[0])) frame = { ...values[0], type: event };
  else frame = values;
  link.receive(frame, ack === undefined ? undefined : (reply) => ack(toAckAnswer(reply)));
}

/** Maps core's direct answer to what a Socket.IO ack callback receives. */
function toAckAnswer(frame: ReplyFrame): AckAnswer {
  if (frame.type === "error") {
    const error: AckError = { code: frame.code, message: frame.message };
    if (frame.retryAfterMs !== undefined) error.retryAfterMs = frame.retryAfterMs;
    return { ok: false, error };
  }
  const { type: _type, ...fields } = frame;
  return { ok: true, ...fields };
}

function refusalError(refusal: Refusal): ExtendedError {
  const error: ExtendedError = new Error(refusal.message);
  const data: RefusalData = { code: refusal.code, status: refusal.status };
  if (refusal.retryAfterSec !== undefined) data.retryAfterSec = refusal.retryAfterSec;
  error.data = data;
  return error;
}

function unavailable(message: string): Refusal {
  return { ok: false, status: 503, code: "internal", message, retryAfterSec: 1 };
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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function ignore(): void {}

interface EnginePacket {
  data?: unknown;
}
/** The TCP socket under a ws socket (ws keeps it as `_socket`). */
interface Corkable {
  cork(): void;
  uncork(): void;
  destroyed: boolean;
}
interface EngineInternals {
  writeBuffer?: EnginePacket[];
  /** With the WebSocket transport, `socket` is the ws socket. */
  transport?: { socket?: { bufferedAmount?: unknown; _socket?: Corkable } };
}

/** TCP sockets corked until the end of this tick. */
const corked = new WeakSet<Corkable>();

/**
 * Listens to the engine's `flush` (a batch of packets handed to the transport). On the
 * WebSocket transport, each packet is a WebSocket frame and would be its own write: the TCP
 * socket is corked for the rest of the tick, so that what a turn of the event loop sends to
 * one client (the partner's messages, the answers to its own requests) leaves in one write.
 * Polling batches by itself. Shared by every connection; `this` is the engine socket.
 */
function corkOnFlush(this: unknown): void {
  const tcp = (this as EngineInternals).transport?.socket?._socket;
  if (tcp === undefined || typeof tcp.cork !== "function" || corked.has(tcp)) return;
  corked.add(tcp);
  tcp.cork();
  process.nextTick(() => {
    corked.delete(tcp);
    if (!tcp.destroyed) tcp.uncork();
  });
}

/**
 * One WhisperChat socket: the {@link Connection} core writes to. `bufferedAmount` is the bytes
 * queued for the client: the packets in the engine's write buffer (waiting for the transport,
 * or for the next poll) plus what the WebSocket transport has not written yet. A long engine
 * buffer is counted incrementally: it only grows until it is flushed (replaced by a new array).
 */
class SocketConnection implements Connection {
  /** The session, once `hub.open` returned. */
  link: SessionLink | undefined;
  /** The close code the server closed with, if it did. */
  serverCode: number | undefined;
  private seen: EnginePacket[] | undefined;
  private counted = 0;
  private bytes = 0;

  constructor(
    private readonly socket: Socket,
    private readonly maxBufferedBytes: number,
  ) {}

  send(frame: ServerFrame): void {
    if (!this.socket.connected) return;
    const { type, ...payload } = frame;
    this.socket.emit(type, payload);
  }

  close(code: number, reason: string): void {
    const socket = this.socket;
    if (!socket.connected) return;
    this.serverCode = code;
    socket.emit(CLOSE_EVENT, { code, reason } satisfies CloseEventData);
    if (!TRANSPORT_CLOSE_CODES.has(code)) {
      socket.disconnect();
      return;
    }
    const stuck = this.bufferedAmount > this.maxBufferedBytes;
    socket.disconnect(true);
    // A client that does not read would hold the engine's buffer until it drains: cut it off.
    if (stuck) socket.conn.close(true);
  }

  get bufferedAmount(): number {
    const conn = this.socket.conn as unknown as EngineInternals;
    const queue = conn.writeBuffer;
    let total = 0;
    if (Array.isArray(queue) && queue.length <= 16) {
      // Short (the usual case): summed afresh, so that no flushed packet is kept alive here.
      this.seen = undefined;
      for (const packet of queue) total += packetBytes(packet);
    } else if (Array.isArray(queue)) {
      if (queue !== this.seen || queue.length < this.counted) {
        this.seen = queue;
        this.counted = 0;
        this.bytes = 0;
      }
      for (; this.counted < queue.length; this.counted++) this.bytes += packetBytes(queue[this.counted]);
      total = this.bytes;
    }
    const ws = conn.transport?.socket?.bufferedAmount;
    if (typeof ws === "number") total += ws;
    return total;
  }
}

function packetBytes(packet: EnginePacket | undefined): number {
  const data = packet?.data;
  if (typeof data === "string") return Buffer.byteLength(data);
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data.byteLength;
  return 1;
}
