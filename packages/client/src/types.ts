import type { WhisperClientError } from "./errors.js";
import type {
  AckFrame,
  ErrorFrame,
  LatLng,
  MatchedFrame,
  MessageFrame,
  PartnerAwayFrame,
  PartnerBackFrame,
  PartnerLeftFrame,
  PongFrame,
  TypingFrame,
  WaitingFrame,
  WelcomeFrame,
} from "./protocol.js";
import type { ReconnectOptions } from "./reconnect.js";
import type { ResumeStorage } from "./storage.js";

// The client's public types: its options, its events and the WebSocket seam (the browser's
// WebSocket and `ws`'s both fit).

/** The parts of an event handler property this client sets (bivariant, so DOM and `ws` types fit). */
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"] | null;

/** The part of the standard WebSocket interface the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<unknown>;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

// ---------------------------------------------------------------------------------------------
// Public types

/** Options of {@link createClient}. */
export interface WhisperClientOptions {
  /** The WebSocket URL of the endpoint, e.g. `wss://chat.example.com/whisper`. */
  url: string;
  /**
   * The WebSocket implementation. Node 20 has none built in: pass `WebSocket` from `ws`.
   * @default globalThis.WebSocket
   */
  WebSocket?: WebSocketConstructor;
  /** A fixed bearer token, sent as the `token` query parameter. Ignored when `getToken` is given. @default undefined (a guest) */
  token?: string;
  /**
   * Supplies the bearer token. Called before every connection attempt, and again before the
   * current token expires (when it is a JWT: its `exp` is read, not verified) to send the new one
   * with an `auth` frame. Return `undefined` to connect as a guest; return the same token to
   * skip a refresh.
   * @default undefined (use `token`)
   */
  getToken?: () => string | undefined | null | Promise<string | undefined | null>;
  /** How long before a JWT's `exp` the client refreshes it, in ms (at most half its remaining lifetime). @default 30000 */
  tokenRefreshLeadMs?: number;
  /** Automatic reconnect with backoff and jitter, resuming the session; `false` turns it off. @default { enabled: true, initialDelayMs: 500, maxDelayMs: 15000, factor: 2, jitter: 0.5, maxAttempts: Infinity } */
  reconnect?: ReconnectOptions | boolean;
  /** How long a request waits for its reply before it rejects with `timeout`, in ms. @default 10000 */
  requestTimeoutMs?: number;
  /** How long a connection attempt may take until `welcome`, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * How often the client pings an idle connection, in ms; when the `pong` does not come within
   * `requestTimeoutMs`, the connection is taken for dead, closed with 4000 and resumed. `0`
   * turns it off.
   * @default 25000
   */
  heartbeatIntervalMs?: number;
  /**
   * Where the resume token is kept, so that a new page (a reload) resumes the session; e.g.
   * `webStorage(sessionStorage)` in a browser.
   * @default undefined (kept in memory, for reconnects of this client only)
   */
  resumeStorage?: ResumeStorage;
  /**
   * An id this client keeps for its device (16 to 128 characters of `A-Z a-z 0-9 _ -`; anything
   * else is a `TypeError`). `webDeviceId(localStorage)` makes a random one and keeps it. Sent with
   * every connection: a guest with the same device id is the same user again, so whoever it
   * skipped or blocked stays apart from it after a reload, for as long as that exclusion lasts.
   * It catches honest reloads, not a client that drops it. Ignored for a signed-in user (its
   * user id already follows it). Keep it secret like a token.
   * @default undefined (a guest is a new user on every new session)
   */
  deviceId?: string;
}

/** The connection state of a {@link WhisperClient}. */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

/** The `welcome` frame: the session, its user and the server's limits. */
export type Welcome = WelcomeFrame;
/** The reply to `join`, `next` and `block`. */
export type Waiting = WaitingFrame;
/** The reply to `message`, `leave` and `auth`. */
export type Ack = AckFrame;
/** The reply to `ping`. */
export type Pong = PongFrame;

/** Parameters of {@link WhisperClient.join}. */
export interface JoinOptions {
  /** Where the user is. Never sent to other users. */
  location: LatLng;
  /** How far a partner may be, in km, within (0, `limits.maxRangeKm`]. */
  rangeKm: number;
  /** The display name for guests (identities from a token keep theirs). @default the guest name */
  name?: string;
}

/** Options of {@link WhisperClient.send}. */
export interface SendOptions {
  /**
   * The message's `id`. Give the `requestId` of a failed attempt to retry it without risking a
   * duplicate. @default a fresh unique id
   */
  id?: string;
}

/** Payload of the `state` event. */
export interface StateChange {
  state: ClientState;
  previous: ClientState;
}

/** Payload of the `disconnected` event. */
export interface DisconnectInfo {
  /** The WebSocket close code (1006 when the connection dropped, 4000 after a heartbeat timeout). */
  code: number;
  /** The close reason sent by the server, if any. */
  reason: string;
  /** Whether the client reconnects by itself (see the reconnect policy). */
  willReconnect: boolean;
}

/** Payload of the `reconnecting` event. */
export interface ReconnectAttempt {
  /** 1 for the first attempt after a drop. */
  attempt: number;
  /** How long until this attempt, in ms. */
  delayMs: number;
}

/** Payload of the `tokenRefreshed` event. */
export interface TokenRefresh {
  /** When the new token expires, in ms since the epoch, if it is a JWT with `exp`. */
  expiresAt: number | undefined;
}

/** One event per server frame type, with that frame as payload. Replies to requests arrive here too. */
export interface ServerFrameEvents {
  welcome: WelcomeFrame;
  waiting: WaitingFrame;
  matched: MatchedFrame;
  message: MessageFrame;
  ack: AckFrame;
  typing: TypingFrame;
  partner_away: PartnerAwayFrame;
  partner_back: PartnerBackFrame;
  partner_left: PartnerLeftFrame;
  error: ErrorFrame;
  pong: PongFrame;
}

/** Events about the connection itself. */
export interface LifecycleEvents {
  /** The connection state changed. */
  state: StateChange;
  /** A connection took back the earlier session (`welcome.resumed`); the frames missed follow. */
  resumed: WelcomeFrame;
  /** A resume was tried but the server started a fresh session (e.g. it restarted): set up again. */
  sessionLost: WelcomeFrame;
  /** The connection closed. */
  disconnected: DisconnectInfo;
  /** A reconnect attempt is scheduled. */
  reconnecting: ReconnectAttempt;
  /** The server accepted a new token sent with `auth`. */
  tokenRefreshed: TokenRefresh;
  /** Getting or sending a new token failed; the client tries again until the token expires. */
  tokenRefreshFailed: WhisperClientError;
}

/** Every event of a {@link WhisperClient}. */
export type WhisperClientEvents = ServerFrameEvents & LifecycleEvents;
