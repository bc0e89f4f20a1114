/**
 * The wire protocol, version 1, as a client sees it (docs/protocol.md section 2). These types
 * mirror the server's; the package keeps its own copy so that it has no dependencies.
 */

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;
/** The WebSocket subprotocol offered to the server. */
export const SUBPROTOCOL = "whisperchat.v1";

/** Error codes the server sends in `error` frames. */
export type ProtocolErrorCode =
  | "bad_request"
  | "unknown_type"
  | "invalid_location"
  | "invalid_range"
  | "too_large"
  | "not_in_room"
  | "in_room"
  | "rate_limited"
  | "forbidden"
  | "unauthorized"
  | "internal";

/** A point on the Earth, in degrees. */
export interface LatLng {
  /** Latitude in degrees, within [-90, 90]. */
  lat: number;
  /** Longitude in degrees, within [-180, 180]. */
  lng: number;
}

/** The numbers a client must respect, sent in `welcome`. */
export interface ClientLimits {
  /** Longest message text, in Unicode code points. */
  maxMessageChars: number;
  /** Largest `rangeKm` of a join. */
  maxRangeKm: number;
  /** Longest display name, in Unicode code points. */
  maxNameChars: number;
  /** Sustained chat messages per second per session. */
  messagesPerSec: number;
  /** Chat messages that may be sent at once before `messagesPerSec` applies. */
  messageBurst: number;
  /** How long a dropped session can be resumed, in milliseconds (0: no resume). */
  resumeGraceMs: number;
  /** Largest frame the server accepts, in bytes; a larger one closes the connection with 1009. */
  maxPayloadBytes: number;
  /**
   * The largest distance between the user's point and the point the server matches with, in km
   * (also the largest change made to a range; 0: exact).
   */
  locationPrecisionKm: number;
}

/** The public part of a user. */
export interface PublicUser {
  userId: string;
  name: string;
}

/** First frame of every connection. */
export interface WelcomeFrame {
  type: "welcome";
  sessionId: string;
  /** Single-use token to take the session back after a drop. */
  resumeToken: string;
  protocol: typeof PROTOCOL_VERSION;
  user: PublicUser;
  /** Whether this connection took back an earlier session. */
  resumed: boolean;
  limits: ClientLimits;
}
/** The session is in the pool. */
export interface WaitingFrame {
  type: "waiting";
  /** When the session entered the pool (ms since the epoch); kept across location updates. */
  since: number;
  /** The `id` of the `join`/`next`/`block` this answers, if it had one. */
  id?: string;
}
/** A room was made. */
export interface MatchedFrame {
  type: "matched";
  roomId: string;
  partner: {
    name: string;
    /**
     * The distance to the partner between the two points matching used, rounded up to whole
     * steps of `limits.locationPrecisionKm` rounded up to a kilometre (3 km steps by default).
     */
    distanceKm: number;
  };
}
/** A message from the partner. */
export interface MessageFrame {
  type: "message";
  roomId: string;
  messageId: string;
  text: string;
  ts: number;
}
/** The server accepted a request (`message`, `leave`, `auth`). */
export interface AckFrame {
  type: "ack";
  id?: string;
  /** Present when the acknowledged request was a `message`. */
  messageId?: string;
  ts: number;
}
/** The partner's typing indicator. */
export interface TypingFrame {
  type: "typing";
  active: boolean;
}
/** The partner's connection dropped; it may still resume. */
export interface PartnerAwayFrame {
  type: "partner_away";
  roomId: string;
}
/** The partner is connected (again). */
export interface PartnerBackFrame {
  type: "partner_back";
  roomId: string;
}
/** Why a room closed, as the remaining partner sees it. */
/** Why a room closed (`lost`: the server lost the room, e.g. its store restarted empty). */
export type PartnerLeftReason = "left" | "next" | "disconnected" | "lost";
/** The room is closed. */
export interface PartnerLeftFrame {
  type: "partner_left";
  roomId: string;
  reason: PartnerLeftReason;
}
/** A request failed; the session goes on. */
export interface ErrorFrame {
  type: "error";
  code: ProtocolErrorCode;
  message: string;
  id?: string;
  retryAfterMs?: number;
}
/** The reply to `ping`. */
export interface PongFrame {
  type: "pong";
  id?: string;
}

/** Every frame the server sends. */
export type ServerFrame =
  | WelcomeFrame
  | WaitingFrame
  | MatchedFrame
  | MessageFrame
  | AckFrame
  | TypingFrame
  | PartnerAwayFrame
  | PartnerBackFrame
  | PartnerLeftFrame
  | ErrorFrame
  | PongFrame;

/** The `type` of a server frame. */
export type ServerFrameType = ServerFrame["type"];

/** Every frame a client may send. */
export type ClientFrame =
  | { type: "join"; id?: string; location: LatLng; rangeKm: number; name?: string }
  | { type: "message"; id?: string; text: string }
  | { type: "typing"; id?: string; active: boolean }
  | { type: "next"; id?: string }
  | { type: "leave"; id?: string }
  | { type: "block"; id?: string; reason?: string }
  | { type: "auth"; id?: string; token: string }
  | { type: "ping"; id?: string };

/** WebSocket close codes of the protocol, plus the one this client uses itself. */
export const CloseCode = {
  /** Normal close: the session ends. */
  Normal: 1000,
  /** Going away: the server shuts down (or a proxy restarts). */
  GoingAway: 1001,
  /** Closed without a status code. */
  NoStatus: 1005,
  /** The connection dropped without a closing handshake. */
  Abnormal: 1006,
  /** Policy: flooding after repeated `rate_limited`, kicked or banned. */
  Policy: 1008,
  /** A frame larger than the server's maximum. */
  TooLarge: 1009,
  /** An internal server error. */
  Internal: 1011,
  /** The server is restarting or draining: reconnect and resume. */
  Restart: 1012,
  /** Try again later (a proxy or an overloaded server). */
  TryAgainLater: 1013,
  /** Bad gateway (a proxy could not reach the server). */
  BadGateway: 1014,
  /**
   * Sent by this client when it gave up on a connection that stopped answering (heartbeat
   * timeout); the server keeps the session for the resume grace.
   */
  ClientTimeout: 4000,
  /** This session was resumed by another connection. */
  Replaced: 4001,
  /** The token expired during the session and was not replaced with `auth`. */
  TokenExpired: 4401,
} as const;
