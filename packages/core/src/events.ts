import type { Identity } from "./connection.js";
import type { ErrorCode } from "./errors.js";
import type { PartnerLeftReason } from "./protocol.js";
import type { RoomMember } from "./store.js";

/** What the host app learns about the session behind an event. */
export interface SessionInfo {
  sessionId: string;
  identity: Identity;
}

/** Events of a hub, for the host app. Each carries the identity of the session concerned. */
export interface HubEvents {
  /** A connection was accepted and its session opened (not emitted for a resume). */
  sessionOpened: (info: SessionInfo) => void;
  /** A session ended. */
  sessionClosed: (info: SessionInfo & { code: number | undefined }) => void;
  /** A session's connection dropped; it may resume within the grace. */
  sessionAway: (info: SessionInfo) => void;
  /** A resume succeeded (`ok`), or an away session's grace ran out (`ok: false`). */
  resume: (info: SessionInfo & { ok: boolean }) => void;
  /** A session entered the pool, or updated its point and range. */
  waiting: (info: SessionInfo & { since: number }) => void;
  /**
   * A pair was matched; emitted once, by the node of the session whose search found the pair.
   * `waitedMs` is how long each of the two had waited (this session first).
   */
  matched: (
    info: SessionInfo & {
      roomId: string;
      partner: RoomMember;
      distanceKm: number;
      waitedMs: [number, number];
    },
  ) => void;
  /** A chat message was accepted and delivered. */
  message: (info: SessionInfo & { roomId: string; messageId: string; text: string; ts: number }) => void;
  /** A session left its room: `left`, `next`, `blocked` or `disconnected`. */
  left: (info: SessionInfo & { roomId: string; reason: PartnerLeftReason | "blocked" }) => void;
  /** A session blocked its partner. */
  blocked: (
    info: SessionInfo & { roomId: string; blockedUserId: string; reason: string | undefined },
  ) => void;
  /** A handshake was refused (the adapter answers with `status`). */
  refused: (info: { status: number; code: ErrorCode; remoteAddress: string; transport: string }) => void;
  /** An action was refused by a limiter: `connect`, `message`, `churn` (join/next), `requests`. */
  rateLimited: (info: { kind: string; sessionId: string | undefined }) => void;
  /** A request was answered with an error frame. */
  requestError: (info: { code: ErrorCode; sessionId: string }) => void;
  /** Something failed inside the hub (a store error, a throwing hook); the session got `internal`. */
  error: (info: { error: unknown; sessionId: string | undefined }) => void;
}
