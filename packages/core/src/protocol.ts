import type { ErrorCode } from "./errors.js";

/** The protocol version this package speaks; sent as `welcome.protocol`. */
export const PROTOCOL_VERSION = 1;
/** The WebSocket subprotocol name selected when a client offers it. */
export const SUBPROTOCOL = "whisperchat.v1";

/** A point on the Earth, in degrees. */
export interface LatLng {
  /** Latitude in degrees, within [-90, 90]. */
  lat: number;
  /** Longitude in degrees, within [-180, 180]. */
  lng: number;
}

// ---------------------------------------------------------------------------------------------
// Client to server

/** `join`: enter the pool, or update the point and range while waiting. */
export interface JoinFrame {
  type: "join";
  id?: string;
  location: LatLng;
  rangeKm: number;
  name?: string;
}
/** `message`: text for the partner. */
export interface MessageRequestFrame {
  type: "message";
  id?: string;
  text: string;
}
/** `typing`: the typing indicator, passed to the partner. */
export interface TypingRequestFrame {
  type: "typing";
  id?: string;
  active: boolean;
}
/** `next`: leave the room and rejoin the pool with the last join parameters. */
export interface NextFrame {
  type: "next";
  id?: string;
}
/** `leave`: leave the room and/or the pool; the session stays connected and idle. */
export interface LeaveFrame {
  type: "leave";
  id?: string;
}
/** `block`: like `next`, and the two users are never matched again. */
export interface BlockFrame {
  type: "block";
  id?: string;
  reason?: string;
}
/** `auth`: replace the session's token before it expires. */
export interface AuthFrame {
  type: "auth";
  id?: string;
  token: string;
}
/** `ping`: answered with `pong`. */
export interface PingFrame {
  type: "ping";
  id?: string;
}

/** Every frame a client may send, validated. */
export type ClientFrame =
  | JoinFrame
  | MessageRequestFrame
  | TypingRequestFrame
  | NextFrame
  | LeaveFrame
  | BlockFrame
  | AuthFrame
  | PingFrame;

/** The `type` of a client frame. */
export type ClientFrameType = ClientFrame["type"];

/** Every client frame type, in the order of docs/protocol.md. */
export const CLIENT_FRAME_TYPES: readonly ClientFrameType[] = [
  "join",
  "message",
  "typing",
  "next",
  "leave",
  "block",
  "auth",
  "ping",
];

// ---------------------------------------------------------------------------------------------
// Server to client

/** The numbers a client must respect, sent in `welcome`. */
export interface ClientLimits {
  /** Longest `message.text`, in Unicode code points. */
  maxMessageChars: number;
  /** Largest `join.rangeKm`. */
  maxRangeKm: number;
  /** Longest `join.name`, in Unicode code points. */
  maxNameChars: number;
  /** Sustained chat messages per second per session. */
  messagesPerSec: number;
  /** Chat messages that may be sent at once before `messagesPerSec` applies. */
  messageBurst: number;
  /** How long a dropped session can be resumed, in milliseconds (0: no resume). */
  resumeGraceMs: number;
  /** Largest frame the transport accepts, in bytes; larger frames close the connection 1009. */
  maxPayloadBytes: number;
  /**
   * The largest distance between a user's point and the point matching uses, in km, which is
   * also the largest change made to a range (0: exact). Pairs within this margin of a range's
   * edge may go either way.
   */
  locationPrecisionKm: number;
}

/** The public part of a user, as other clients may see it. */
export interface PublicUser {
  userId: string;
  name: string;
}

export interface WelcomeFrame {
  type: "welcome";
  sessionId: string;
  resumeToken: string;
  protocol: typeof PROTOCOL_VERSION;
  user: PublicUser;
  resumed: boolean;
  limits: ClientLimits;
}
export interface WaitingFrame {
  type: "waiting";
  /** When the session entered the pool (ms since the epoch); kept across location updates. */
  since: number;
  /** The `id` of the `join`/`next`/`block` this answers, if it had one. */
  id?: string;
}
export interface MatchedFrame {
  type: "matched";
  roomId: string;
  partner: {
    name: string;
    /**
     * The distance between the two snapped points (docs/protocol.md, "Location privacy"), rounded
     * up to whole steps of `welcome.limits.locationPrecisionKm` rounded up to a kilometre (3 km
     * steps by default; whole kilometres, at least 1, with no grid).
     */
    distanceKm: number;
  };
}
export interface MessageFrame {
  type: "message";
  roomId: string;
  messageId: string;
  text: string;
  ts: number;
}
export interface AckFrame {
  type: "ack";
  id?: string;
  /** Present when the acknowledged request was a `message`. */
  messageId?: string;
  ts: number;
}
export interface TypingFrame {
  type: "typing";
  active: boolean;
}
export interface PartnerAwayFrame {
  type: "partner_away";
  roomId: string;
}
export interface PartnerBackFrame {
  type: "partner_back";
  roomId: string;
}
/** Why a room closed, as the remaining partner sees it. */
/**
 * Why a room closed: the partner left (`left`, also after a block), went `next`, disconnected
 * (`disconnected`), or the room was lost by the server (`lost`: its store lost it, e.g. a
 * restart of an empty Redis).
 */
export type PartnerLeftReason = "left" | "next" | "disconnected" | "lost";
export interface PartnerLeftFrame {
  type: "partner_left";
  roomId: string;
  reason: PartnerLeftReason;
}
export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  id?: string;
  retryAfterMs?: number;
}
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

/** The direct answer to one request: what a Socket.IO ack callback receives. */
export type ReplyFrame = AckFrame | PongFrame | WaitingFrame | ErrorFrame;

/** The frames that travel between the two members of a room (possibly across nodes). */
export type RoomFrame =
  | MatchedFrame
  | MessageFrame
  | TypingFrame
  | PartnerAwayFrame
  | PartnerBackFrame
  | PartnerLeftFrame;
