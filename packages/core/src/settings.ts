import type { TrustedProxies } from "./address.js";
import { type Clock, systemClock } from "./clock.js";
import type { Handshake, Identity } from "./connection.js";
import { assertBucketRule } from "./limiter.js";
import type { MatchFilter } from "./matcher.js";
import type { Logger } from "./observe.js";
import { type LocationGrid, locationGrid } from "./privacy.js";
import type { ClientFrameType, ClientLimits } from "./protocol.js";
import type { BucketRule, Store } from "./store.js";

/**
 * Decides who a connecting client is. Return an {@link Identity} to accept, `null` to treat
 * the client as a guest (refused with 401 when guests are not allowed), or throw a
 * {@link WhisperError} with code `unauthorized` (401) or `forbidden` (403) to refuse.
 */
export type AuthenticateHook = (
  handshake: Handshake,
  token: string | undefined,
) => Identity | null | Promise<Identity | null>;

/** Checks a fresh token sent with `auth`; resolves the identity it names, or throws `unauthorized`. */
export type ReauthenticateHook = (token: string, current: Identity) => Identity | Promise<Identity>;

/** Every action the authorisation hook is asked about: client requests and admin actions. */
export type HubAction = ClientFrameType | "connect" | "kick" | "ban" | "unban" | "stats";

/** What an action is about, for the authorisation hook. */
export interface HubActionContext {
  /** The acting session, for client actions. */
  sessionId?: string;
  /** The room the acting session is in, if any. */
  roomId?: string;
  /** The user an admin action targets. */
  targetUserId?: string;
}

/** May `identity` do `action`? Consulted for every client action and admin call. */
export type AuthorizeHook = (
  identity: Identity,
  action: HubAction,
  context: HubActionContext,
) => boolean | Promise<boolean>;

/** Options of {@link createWhisper}. */
export interface WhisperOptions {
  /**
   * Where the pool, rooms, exclusions, routing and limiter state live. Required: use
   * `createMemoryStore()` from `@whisperchat/store-memory` for one process.
   */
  store: Store;
  /** This node's id, unique among the nodes sharing a store. @default a random id */
  nodeId?: string;
  /** Longest chat message, in Unicode code points. @default 1000 */
  maxMessageChars?: number;
  /** Largest range a client may ask for, in km. @default 20000 */
  maxRangeKm?: number;
  /**
   * Location privacy: every point is snapped to the centre of a grid cell before it reaches the
   * store or the matcher, so that it is never more than this many km from the user's point,
   * and every range is rounded up to a multiple of it (docs/protocol.md section 6, "Location
   * privacy"). The default keeps the median error of the best attack above 1 km. `0` matches on
   * exact points (only for tests and trusted clients). @default 2.5
   */
  locationPrecisionKm?: number;
  /** Longest display name, in Unicode code points. @default 32 */
  maxNameChars?: number;
  /** Largest frame a transport accepts, in bytes; adapters read it. Larger frames close 1009. @default 16384 */
  maxPayloadBytes?: number;
  /** Chat messages per session: a leaky bucket. @default { capacity: 10, ratePerSec: 5 } */
  messageRate?: BucketRule;
  /** Chat messages per user, over all their sessions: a leaky bucket. @default { capacity: 20, ratePerSec: 10 } */
  userMessageRate?: BucketRule;
  /** `join`, `next` and `block` per user: a leaky bucket. @default { capacity: 10, ratePerSec: 1 } */
  churnRate?: BucketRule;
  /**
   * `join`, `next` and `block` of guests per client address, over all their connections: a
   * leaky bucket. Every guest connection is a new user, so the per-user bucket alone would not
   * slow down someone probing with throwaway connections. An IPv6 address counts by its /64
   * (one subscriber's prefix), and an IPv4 address written as IPv6 (mapped or NAT64) as the IPv4
   * address. @default { capacity: 60, ratePerSec: 3 }
   */
  guestChurnPerAddress?: BucketRule;
  /**
   * Every request of a session (any frame type, `typing` included): a leaky bucket kept by the
   * session's node. Refused requests are answered `rate_limited` (a `typing` is dropped) and count
   * towards `floodCloseAfter`. @default { capacity: 40, ratePerSec: 20 }
   */
  requestRate?: BucketRule;
  /** `typing` frames per session: a leaky bucket; the excess is dropped silently. @default { capacity: 6, ratePerSec: 2 } */
  typingRate?: BucketRule;
  /** `auth` (token refresh) requests per session: a leaky bucket. @default { capacity: 3, ratePerSec: 0.2 } */
  authRate?: BucketRule;
  /**
   * Connection attempts per client address: a leaky bucket. An IPv6 address counts by its /64, as
   * for `guestChurnPerAddress`. @default { capacity: 20, ratePerSec: 5 }
   */
  connectRate?: BucketRule;
  /** A session that gets this many `rate_limited` answers in a row is closed with 1008. @default 20 */
  floodCloseAfter?: number;
  /** After `next`, how long the two users are kept apart, in ms. @default 60000 */
  nextCooldownMs?: number;
  /** Messages kept in a room's history. @default 100 */
  historyLimit?: number;
  /**
   * How long a dropped session can be resumed, in ms (docs/protocol.md section 5); `0` ends a
   * session as soon as its connection drops. @default 30000
   */
  resumeGraceMs?: number;
  /** Frames kept for an away session; older ones are dropped past it. @default 256 */
  maxMailbox?: number;
  /** How long the record of a live session is kept in the store, refreshed on every state change, in ms. @default 86400000 */
  sessionRecordTtlMs?: number;
  /**
   * How often this node tells the store it is alive, in ms. A node silent for three intervals
   * is dead: its sessions count as dropped for their partners. @default 2000
   */
  nodeHeartbeatMs?: number;
  /**
   * How often each session checks that the store still has what it keeps there (its pool entry,
   * its room, its record), spread over the interval, and puts back what is missing (a lost room
   * ends with `partner_left` `lost`). A store that lost its last writes in a failover, or a
   * cluster master restarted empty, is noticed within it even by sessions that send nothing.
   * Costs each session one or two store reads per interval. `0` turns it off (losses are then
   * noticed through this node's heartbeat and through traffic only). @default 60000
   */
  auditIntervalMs?: number;
  /** A connection whose unsent output exceeds this many bytes is closed with 1008. @default 1048576 */
  maxBufferedBytes?: number;
  /** Requests a session may have in flight; more are answered `rate_limited`. @default 32 */
  maxPendingRequests?: number;
  /** Open sessions this node accepts; more are refused with 503. @default 50000 */
  maxSessions?: number;
  /**
   * Proxies (addresses or CIDR ranges, or a predicate) whose `X-Forwarded-For` header tells the
   * client's address, for the connection limiter and the hooks. Off by default: behind a proxy
   * every client would otherwise share the proxy's bucket, and trusting the header from anyone
   * would let clients pick their own. @default none (the socket's peer address is used)
   */
  trustedProxies?: TrustedProxies;
  /** The authentication hook. @default every client is a guest (when `allowGuests`) */
  authenticate?: AuthenticateHook;
  /** Checks tokens sent with `auth`. @default none: `auth` is answered `unauthorized` */
  reauthenticate?: ReauthenticateHook;
  /** The authorisation hook. @default everything allowed to clients; admin calls allowed without `by` */
  authorize?: AuthorizeHook;
  /** Whether clients without an identity from `authenticate` may connect as guests. @default true */
  allowGuests?: boolean;
  /**
   * Allowed `Origin` header values, or a predicate; a refused origin gets HTTP 403. Clients that
   * send no `Origin` (non-browsers) are allowed unless the predicate says otherwise.
   * @default every origin
   */
  allowedOrigins?: readonly string[] | ((origin: string | undefined) => boolean);
  /** A host-app matching rule on top of the protocol's (see {@link MatchFilter}). @default none */
  matchFilter?: MatchFilter;
  /**
   * The clock the hub reads and arms every timer on (grace periods, cooldowns, token expiry,
   * heartbeats). Tests pass `manualClock()` from `@whisperchat/core/testing` and move time by
   * hand. @default the system clock
   */
  clock?: Clock;
  /** What time it is, in ms since the epoch, when no `clock` is given (timers stay real). @default Date.now */
  now?: () => number;
  /** A structured logger (pino-compatible). @default silent */
  logger?: Logger;
}

/** Resolved settings, shared with sessions. */
export interface HubSettings {
  readonly limits: ClientLimits;
  readonly messageRate: BucketRule;
  readonly userMessageRate: BucketRule;
  readonly churnRate: BucketRule;
  readonly guestChurnPerAddress: BucketRule;
  readonly requestRate: BucketRule;
  readonly typingRate: BucketRule;
  readonly authRate: BucketRule;
  readonly connectRate: BucketRule;
  readonly floodCloseAfter: number;
  readonly nextCooldownMs: number;
  readonly historyLimit: number;
  readonly maxMailbox: number;
  readonly sessionRecordTtlMs: number;
  readonly nodeHeartbeatMs: number;
  readonly auditIntervalMs: number;
  readonly maxBufferedBytes: number;
  readonly maxPendingRequests: number;
  readonly maxSessions: number;
  readonly matchFilter: MatchFilter | undefined;
  /** The location obfuscation (see `locationPrecisionKm`). */
  readonly grid: LocationGrid;
  readonly now: () => number;
  /** The clock every timer of the hub runs on. */
  readonly clock: Clock;
}

function positive(value: number | undefined, fallback: number, what: string, zeroOk = false): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0 || (v === 0 && !zeroOk)) {
    throw new RangeError(`${what} must be a ${zeroOk ? "non-negative" : "positive"} number, got ${v}`);
  }
  return v;
}

/** Checks the options and fills in every default (see {@link WhisperOptions}). */
export function resolveSettings(options: WhisperOptions): HubSettings {
  const now = options.now;
  const clock: Clock =
    options.clock ??
    (now === undefined ? systemClock : { now, after: (ms, fn) => systemClock.after(ms, fn) });
  const messageRate = options.messageRate ?? { capacity: 10, ratePerSec: 5 };
  const userMessageRate = options.userMessageRate ?? { capacity: 20, ratePerSec: 10 };
  const churnRate = options.churnRate ?? { capacity: 10, ratePerSec: 1 };
  const connectRate = options.connectRate ?? { capacity: 20, ratePerSec: 5 };
  const requestRate = options.requestRate ?? { capacity: 40, ratePerSec: 20 };
  const typingRate = options.typingRate ?? { capacity: 6, ratePerSec: 2 };
  const authRate = options.authRate ?? { capacity: 3, ratePerSec: 0.2 };
  const grid = locationGrid(options.locationPrecisionKm ?? 2.5);
  const guestChurnPerAddress = options.guestChurnPerAddress ?? { capacity: 60, ratePerSec: 3 };
  assertBucketRule(guestChurnPerAddress, "guestChurnPerAddress");
  assertBucketRule(requestRate, "requestRate");
  assertBucketRule(typingRate, "typingRate");
  assertBucketRule(authRate, "authRate");
  assertBucketRule(messageRate, "messageRate");
  assertBucketRule(userMessageRate, "userMessageRate");
  assertBucketRule(churnRate, "churnRate");
  assertBucketRule(connectRate, "connectRate");
  return {
    limits: {
      maxMessageChars: positive(options.maxMessageChars, 1000, "maxMessageChars"),
      maxRangeKm: positive(options.maxRangeKm, 20000, "maxRangeKm"),
      maxNameChars: positive(options.maxNameChars, 32, "maxNameChars"),
      messagesPerSec: messageRate.ratePerSec,
      messageBurst: messageRate.capacity,
      resumeGraceMs: positive(options.resumeGraceMs, 30_000, "resumeGraceMs", true),
      maxPayloadBytes: positive(options.maxPayloadBytes, 16384, "maxPayloadBytes"),
      locationPrecisionKm: grid.precisionKm,
    },
    messageRate,
    userMessageRate,
    churnRate,
    guestChurnPerAddress,
    requestRate,
    typingRate,
    authRate,
    connectRate,
    floodCloseAfter: positive(options.floodCloseAfter, 20, "floodCloseAfter"),
    nextCooldownMs: positive(options.nextCooldownMs, 60_000, "nextCooldownMs", true),
    historyLimit: positive(options.historyLimit, 100, "historyLimit"),
    maxMailbox: positive(options.maxMailbox, 256, "maxMailbox"),
    sessionRecordTtlMs: positive(options.sessionRecordTtlMs, 86_400_000, "sessionRecordTtlMs"),
    nodeHeartbeatMs: positive(options.nodeHeartbeatMs, 2000, "nodeHeartbeatMs"),
    auditIntervalMs: positive(options.auditIntervalMs, 60_000, "auditIntervalMs", true),
    maxBufferedBytes: positive(options.maxBufferedBytes, 1 << 20, "maxBufferedBytes"),
    maxPendingRequests: positive(options.maxPendingRequests, 32, "maxPendingRequests"),
    maxSessions: positive(options.maxSessions, 50_000, "maxSessions"),
    matchFilter: options.matchFilter,
    grid,
    now: () => clock.now(),
    clock,
  };
}
