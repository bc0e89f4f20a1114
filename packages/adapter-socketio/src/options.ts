import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { AckFrame, ErrorCode, PongFrame, Refusal, WaitingFrame } from "@whisperchat/core";
import type { Namespace, Server, ServerOptions } from "socket.io";

/** Options of both ways to attach. */
export interface CommonOptions {
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
