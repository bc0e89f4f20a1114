import type { RoomFrame } from "./protocol.js";

/**
 * A waiting session in the pool. Stores keep it as given and never decide who matches whom:
 * the core matcher does.
 */
export interface PoolEntry {
  /** The waiting session. */
  sessionId: string;
  /** Its user: two sessions of one user never match. */
  userId: string;
  /** The node (hub) that owns the session, for routing. */
  nodeId: string;
  /** Display name, shown to the partner. */
  name: string;
  lat: number;
  lng: number;
  rangeKm: number;
  /** When the session entered the pool (ms since the epoch); kept across updates. */
  since: number;
}

/** The waiting pool: a spatial index of what each waiting session can accept. */
export interface PoolStore {
  /**
   * Adds the entry, or replaces the one with the same `sessionId` (a location or range update).
   */
  add(entry: PoolEntry): Promise<void>;
  /** Removes a waiting session. Resolves `true` if it was in the pool. */
  remove(sessionId: string): Promise<boolean>;
  /** The entry of a waiting session, or `undefined`. */
  get(sessionId: string): Promise<PoolEntry | undefined>;
  /**
   * Candidates for a newcomer at the point with range `rangeKm`: every waiting entry with
   * `haversine(entry, point) <= min(entry.rangeKm, rangeKm)`, possibly with some more (the
   * matcher checks the exact distance; a store may ignore `rangeKm` and return every entry
   * whose own range contains the point). Never capped: a cap could hide an eligible partner.
   * `newcomer` is the pool key of the entry this search is for, when the matcher searches for an
   * entry it just added: a store may reuse what it read while adding it, if that read was atomic
   * with the add (the geo-sharded Redis pool searches the entry's own cell in its add script).
   */
  candidates(lat: number, lng: number, rangeKm: number, newcomer?: string): Promise<PoolEntry[]>;
  /**
   * Atomically removes both sessions if both are waiting, and resolves `true`; otherwise
   * changes nothing and resolves `false`. This is what makes a match happen at most once,
   * across nodes too.
   */
  claim(sessionA: string, sessionB: string): Promise<boolean>;
  /** How many sessions are waiting. */
  size(): Promise<number>;
}

/** One member of a room. */
export interface RoomMember {
  sessionId: string;
  userId: string;
  nodeId: string;
  name: string;
}

/** A 1:1 room between two matched sessions. */
export interface RoomRecord {
  roomId: string;
  members: readonly [RoomMember, RoomMember];
  createdAt: number;
}

/** A chat message kept in a room's bounded history. */
export interface StoredMessage {
  messageId: string;
  /** The sending session. */
  from: string;
  text: string;
  ts: number;
  /**
   * The `id` the client gave its request, if any: a resend after a resume on another node is
   * recognised from the history and not delivered twice.
   */
  requestId?: string;
}

/** Rooms and their bounded histories. */
export interface RoomStore {
  /** Creates a room. */
  create(room: RoomRecord): Promise<void>;
  /** The room, or `undefined` once it is closed. */
  get(roomId: string): Promise<RoomRecord | undefined>;
  /**
   * Closes a room and its history. Resolves the record to exactly one caller (the one that
   * closed it); concurrent and later callers get `undefined`.
   */
  delete(roomId: string): Promise<RoomRecord | undefined>;
  /**
   * Appends a message to the room's history, keeping only the newest `limit` messages.
   * Resolves `false` (and stores nothing) when the room does not exist.
   */
  append(roomId: string, message: StoredMessage, limit: number): Promise<boolean>;
  /** The room's history, oldest first (empty for an unknown room). */
  history(roomId: string): Promise<StoredMessage[]>;
}

/**
 * Pairs of users that must not be matched: blocks (forever) and recent partners after `next`
 * (for a cooldown). Symmetric: excluding (a, b) also excludes (b, a).
 */
export interface ExclusionStore {
  /**
   * Excludes the pair, forever or for `ttlMs` milliseconds. A longer exclusion is never shortened.
   * (Core passes a ttl for a block that involves a guest: a guest's user id ends with its session.)
   */
  add(userA: string, userB: string, ttlMs?: number): Promise<void>;
  /** Which of `others` are excluded for `userId`. */
  excluded(userId: string, others: readonly string[]): Promise<Set<string>>;
}

/** A frame travelling to a session, possibly owned by another node. */
export interface FrameMessage {
  kind?: "frame";
  /** The session the frame is for. */
  to: string;
  /** The room the frame is about: a frame for a room the session is no longer in is dropped. */
  roomId: string;
  frame: RoomFrame;
  /**
   * With `matched`: the other member, so the receiving node can route the session's replies.
   * With `partner_back`: the partner's new address, when it moved to another node.
   */
  partner?: RoomMember;
}

/** The state of a session that travels with it when it moves to another node. */
export type SessionSnapshot = Pick<SessionRecord, "state" | "roomId" | "partner" | "lastJoin" | "since">;

/** Between nodes: session `to` was resumed on node `nodeId`; its old node must hand it over. */
export interface ReleaseMessage {
  kind: "release";
  to: string;
  nodeId: string;
}

/** The answer to a release, sent to the resuming node once the old node let go. */
export interface ReleasedMessage {
  kind: "released";
  to: string;
  /** The session's state on the old node, or `null` if the old node did not hold it. */
  snapshot: SessionSnapshot | null;
}

/** What travels on the bus between nodes. Stores carry it as an opaque JSON-safe value. */
export type BusMessage = FrameMessage | ReleaseMessage | ReleasedMessage;

/** Routing between nodes: each node subscribes to its own id. */
export interface BusStore {
  /**
   * Receives the messages published to `nodeId` until the returned function is called.
   * Resolves once the subscription is active.
   */
  subscribe(nodeId: string, handler: (message: BusMessage) => void): Promise<() => Promise<void>>;
  /**
   * Sends a message to the node that subscribed `nodeId`. Resolves `true` once it was handed
   * to a subscriber (or routed to one), `false` when no node is subscribed under that id.
   */
  publish(nodeId: string, message: BusMessage): Promise<boolean>;
}

/** A leaky-bucket rule: a bucket of `capacity` that drains at `ratePerSec`. */
export interface BucketRule {
  /** Largest level the bucket holds: the burst. */
  capacity: number;
  /** Units drained per second: the sustained rate. */
  ratePerSec: number;
}

/** The outcome of one limiter check. */
export interface LimitResult {
  /** Whether the action may go ahead (its cost was added). */
  allowed: boolean;
  /** When not allowed: milliseconds until the same action would be allowed; otherwise 0. */
  retryAfterMs: number;
  /** The bucket level after the check. */
  level: number;
}

/** Limiter state: buckets by key, which expire once drained. */
export interface LimiterStore {
  /** Adds `cost` to the bucket `key` if it fits under `rule.capacity` after draining. */
  consume(key: string, rule: BucketRule, cost: number): Promise<LimitResult>;
}

/** One sender's messages to one room, oldest first (see {@link RelayStore}). */
export interface RelayBatch {
  roomId: string;
  /** The messages, oldest first. */
  messages: readonly StoredMessage[];
  /** How many messages the room's history keeps, as in {@link RoomStore.append}. */
  historyLimit: number;
  /** The limiter bucket each message costs 1 in, checked message by message at one instant. */
  bucket: { key: string; rule: BucketRule };
  /**
   * When the recipient lives on another node: `frames[i]` is published to `nodeId` for every
   * stored message `i`, in order, as {@link BusStore.publish} would (a store may carry several
   * in one bus delivery; the subscriber's handler still gets them one by one).
   */
  route?: { nodeId: string; frames: readonly FrameMessage[] };
}

/** What {@link RelayStore.send} did. */
export interface RelayResult {
  /**
   * How many messages, from the first, the bucket allowed. The others cost nothing and were
   * neither stored nor published (a leaky bucket refuses the rest once one is refused).
   */
  allowed: number;
  /** With `allowed` short of the batch: milliseconds until the first refused one would pass; else 0. */
  retryAfterMs: number;
  /** Whether the room exists. When `false`, nothing was stored or published. */
  stored: boolean;
  /** Whether a subscriber got the published frames (`false` when nothing was published). */
  routed: boolean;
}

/**
 * An optional fast path for chat messages: the per-user limit, the history append and the
 * publish to the partner's node of a batch of messages in one call (store-redis: one round
 * trip on a single server, three on Redis Cluster). Batches of one room must take effect in
 * call order. A store without it gets the same behaviour from core, which then calls
 * `limiter.consume`, `rooms.append` and `bus.publish` message by message.
 */
export interface RelayStore {
  send(batch: RelayBatch): Promise<RelayResult>;
}

/** The remembered parameters of a session's last `join`. */
export interface JoinParams {
  lat: number;
  lng: number;
  rangeKm: number;
}

/**
 * What a session is, kept in the store so that it can be resumed, on this node or another
 * (docs/protocol.md section 5).
 */
export interface SessionRecord {
  sessionId: string;
  /** The node that owns the session now. */
  nodeId: string;
  userId: string;
  name: string;
  roles: readonly string[];
  guest: boolean;
  /**
   * A hash of the current (single-use) resume token; the token itself is never stored. While the
   * client has not shown it got that token, the hub appends a space and the hash of the token it
   * resumed with (docs/protocol.md, "Resume"). Stores keep it as one opaque string.
   */
  tokenHash: string;
  /** The state to come back to. */
  state: "idle" | "waiting" | "room";
  /** With `room`: the room and the partner. */
  roomId?: string;
  partner?: RoomMember;
  /** The last join, for `next` and for rejoining the pool on resume. */
  lastJoin?: JoinParams;
  /** With `waiting`: the place in the queue. */
  since?: number;
  /**
   * When the credential behind the session expires (ms since the epoch), if it does: a resume
   * on any node keeps the 4401 close at that time.
   */
  expiresAt?: number;
  /** When the record was last saved (ms). */
  updatedAt: number;
}

/** Session records, for resume. */
export interface SessionStore {
  /** Creates or replaces the record; it expires `ttlMs` after this call unless saved again. */
  put(record: SessionRecord, ttlMs: number): Promise<void>;
  /** The record, or `undefined` (never existed, deleted or expired). */
  get(sessionId: string): Promise<SessionRecord | undefined>;
  /** Deletes the record. Resolves `true` if it existed. */
  delete(sessionId: string): Promise<boolean>;
  /**
   * The atomic step of a resume: if the record exists and its `tokenHash` equals
   * `expectedTokenHash`, sets `tokenHash` to `newTokenHash` and `nodeId` to `nodeId`, extends its
   * life to `ttlMs`, and resolves the record as it was before the change. Otherwise changes
   * nothing and resolves `undefined`. Of several concurrent calls with one token, at most one
   * succeeds: a token is single-use.
   */
  takeover(
    sessionId: string,
    expectedTokenHash: string,
    nodeId: string,
    newTokenHash: string,
    ttlMs: number,
  ): Promise<SessionRecord | undefined>;
}

/** Frames kept for a session whose connection dropped, replayed when it resumes. */
export interface MailboxStore {
  /**
   * Appends a frame to the session's mailbox, keeping only the newest `limit`; the mailbox
   * expires `ttlMs` after the last push.
   */
  push(sessionId: string, frame: RoomFrame, limit: number, ttlMs: number): Promise<void>;
  /** Removes and resolves everything in the mailbox, oldest first (`[]` when empty). */
  drain(sessionId: string): Promise<RoomFrame[]>;
}

/** An account of an app that keeps its own users (see `createAccounts`). */
export interface AccountRecord {
  userId: string;
  /** The name as registered, for display. */
  name: string;
  /** The normalised name: the unique key. */
  nameKey: string;
  /** The password hash in PHC string format (argon2id). */
  passwordHash: string;
  roles: readonly string[];
  createdAt: number;
}

/** Accounts by normalised name. */
export interface AccountStore {
  /** Creates the account; resolves `false` (and changes nothing) when `nameKey` is taken. */
  create(account: AccountRecord): Promise<boolean>;
  /** The account with this normalised name, or `undefined`. */
  get(nameKey: string): Promise<AccountRecord | undefined>;
  /** Replaces an existing account (e.g. a rehashed password). Resolves `false` if there is none. */
  update(account: AccountRecord): Promise<boolean>;
}

/** A ban of a user. */
export interface BanRecord {
  userId: string;
  /** When the ban ends (ms since the epoch); absent: forever. */
  until?: number;
  reason?: string;
  /** When it was made (ms). */
  createdAt: number;
}

/** Bans, shared by every node. */
export interface BanStore {
  /** Bans a user (replacing an earlier ban); it ends at `ban.until` if given. */
  add(ban: BanRecord): Promise<void>;
  /** The ban in force for this user, or `undefined` (none, lifted or expired). */
  get(userId: string): Promise<BanRecord | undefined>;
  /** Lifts a ban. Resolves `true` if there was one. */
  remove(userId: string): Promise<boolean>;
}

/** Node liveness: each node heartbeats; a node that stops is seen as dead once its ttl passes. */
export interface NodeStore {
  /** Marks the node alive for `ttlMs` from now. */
  heartbeat(nodeId: string, ttlMs: number): Promise<void>;
  /** Which of `nodeIds` are alive. */
  alive(nodeIds: readonly string[]): Promise<Set<string>>;
  /** Forgets the node at once (a graceful stop). */
  remove(nodeId: string): Promise<void>;
  /**
   * When each of `nodeIds` that is dead stopped: the end of its last heartbeat's ttl, in ms since
   * the epoch. A node that is alive, was removed, or never sent a heartbeat is absent. A store
   * remembers a dead node for at least {@link NODE_MEMORY_MS} after it stopped, so that a session
   * of a crashed node is known to have outlived its resume grace.
   */
  deadSince(nodeIds: readonly string[]): Promise<Map<string, number>>;
}

/** How long a store remembers when a dead node stopped (see {@link NodeStore.deadSince}): 24 h. */
export const NODE_MEMORY_MS = 86_400_000;

/**
 * The storage seam. Stores only store; every decision (who matches, what is allowed) is made
 * in core. Pass one store instance to several hubs in one process to run several nodes.
 */
export interface Store {
  readonly pool: PoolStore;
  readonly rooms: RoomStore;
  readonly exclusions: ExclusionStore;
  readonly bus: BusStore;
  readonly limiter: LimiterStore;
  readonly sessions: SessionStore;
  readonly mailbox: MailboxStore;
  readonly accounts: AccountStore;
  readonly bans: BanStore;
  readonly nodes: NodeStore;
  /** Optional: see {@link RelayStore}. */
  readonly relay?: RelayStore;
  /** Releases timers and connections the store itself created. */
  close(): Promise<void>;
}
