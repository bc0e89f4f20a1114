import type { ErrorCode } from "./errors.js";
import type { ReplyFrame, ServerFrame } from "./protocol.js";

/** Who a session is, as the authentication hook decided. */
export interface Identity {
  /** Stable user id: two sessions of one user never match each other. */
  userId: string;
  /** Display name shown to partners. */
  name: string;
  /** Roles, for the authorisation hook. */
  roles: readonly string[];
  /** True for a generated guest identity: its name may be set by `join`. */
  guest?: boolean;
  /**
   * When the credential behind this identity expires (ms since the epoch). The session is
   * closed with 4401 then, unless the client sent a fresh token with `auth`.
   */
  expiresAt?: number;
}

/** What a transport adapter knows about an incoming connection, before accepting it. */
export interface Handshake {
  /** The transport's name, e.g. `"ws"` or `"socket.io"`. */
  transport: string;
  /** Request headers, lower-cased names as Node gives them. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Handshake parameters: the query string for ws, the auth payload for Socket.IO. */
  params: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The client address. Adapters pass the socket's peer address; the hub replaces it with the
   * address a trusted proxy reports (option `trustedProxies`) before the hooks see it.
   */
  remoteAddress: string;
}

/** A refused handshake: the adapter answers with this HTTP status (or transport equivalent). */
export interface Refusal {
  ok: false;
  /** 400, 401, 403, 429 or 503 (docs/protocol.md section 2). */
  status: 400 | 401 | 403 | 429 | 503;
  /** The protocol error code that goes with the status. */
  code: ErrorCode;
  /** Human-readable reason; safe to show to the client. */
  message: string;
  /** For 429 and 503: seconds after which trying again makes sense (`Retry-After`). */
  retryAfterSec?: number;
}

/** An accepted handshake, to pass to `hub.open` together with the transport's connection. */
export interface Admitted {
  ok: true;
  identity: Identity;
  /** The session taken back with the `resume` parameter, if it was valid (opaque to adapters). */
  resume: ResumeTicket | undefined;
  /** The client's address, as the hub decided it (see the hub option `trustedProxies`). */
  address: string;
}

/** A resume that succeeded at admission; `hub.open` completes it. Opaque to adapters. */
export interface ResumeTicket {
  readonly sessionId: string;
}

/** The outcome of `hub.admit`. */
export type Admission = Admitted | Refusal;

/**
 * The transport seam: what an adapter gives core for one accepted connection. Core calls it;
 * the adapter encodes and writes.
 */
export interface Connection {
  /** Writes one frame to the client. Must not throw; a closed connection drops it. */
  send(frame: ServerFrame): void;
  /** Closes the connection with a protocol close code. Idempotent. */
  close(code: number, reason: string): void;
  /** Bytes queued for the client but not yet written: what backpressure checks. */
  readonly bufferedAmount: number;
}

/**
 * Where a request's direct answer goes when the transport has a per-request callback
 * (Socket.IO acks). Without one, the answer is sent as a frame on the connection.
 */
export type Reply = (frame: ReplyFrame) => void;

/** What core gives an adapter for one open connection: the inbound side. */
export interface SessionLink {
  /** The session's id (as in `welcome`). */
  readonly sessionId: string;
  /** A text frame arrived (ws): parsed, validated and handled. */
  receiveText(text: string): void;
  /** A decoded frame arrived (Socket.IO: `{ type: event, ...payload }`), with an optional reply callback. */
  receive(frame: unknown, reply?: Reply): void;
  /** A binary frame arrived: answered with `bad_request`. */
  receiveBinary(): void;
  /** The transport closed or dropped; core cleans up (or keeps the session for resume). */
  closed(code?: number): void;
}
