import { EventEmitter } from "eventemitter3";
import type { Admission, Connection, Handshake, Identity, Refusal, SessionLink } from "./connection.js";
import { CloseCode, WhisperError } from "./errors.js";
import { publicDistanceKm } from "./geo.js";
import { randomId } from "./ids.js";
import { assertBucketRule } from "./limiter.js";
import type { MatchFilter } from "./matcher.js";
import { searchAndClaim } from "./matcher.js";
import type { ClientLimits, PartnerLeftReason } from "./protocol.js";
import { PROTOCOL_VERSION } from "./protocol.js";
import { Session } from "./session.js";
import type { BucketRule, BusMessage, PoolEntry, RoomMember, RoomRecord, Store } from "./store.js";

/**
 * Decides who a connecting client is. Return an {@link Identity} to accept, `null` to treat
 * the client as a guest (refused with 401 when guests are not allowed), or throw a
 * {@link WhisperError} with code `unauthorized` (401) or `forbidden` (403) to refuse.
 */
export type AuthenticateHook = (
  handshake: Handshake,
  token: string | undefined,
) => Identity | null | Promise<Identity | null>;

/** Options of {@link createWhisper}. */
export interface WhisperOptions {
  /** Where the pool, rooms, exclusions, routing and limiter state live. Required: use
   * `createMemoryStore()` from `@whisperchat/store-memory` for one process. */
  store: Store;
  /** This node's id, unique among the nodes sharing a store. @default a random id */
  nodeId?: string;
  /** Longest chat message, in Unicode code points. @default 1000 */
  maxMessageChars?: number;
  /** Largest range a client may ask for, in km. @default 20000 */
  maxRangeKm?: number;
  /** Longest display name, in Unicode code points. @default 32 */
  maxNameChars?: number;
  /** Largest frame a transport accepts, in bytes; adapters read it. Larger frames close 1009. @default 16384 */
  maxPayloadBytes?: number;
  /** Chat messages per session: a leaky bucket. @default { capacity: 10, ratePerSec: 5 } */
  messageRate?: BucketRule;
  /** Connection attempts per client address: a leaky bucket. @default { capacity: 20, ratePerSec: 5 } */
  connectRate?: BucketRule;
  /** A session that gets this many `rate_limited` answers in a row is closed with 1008. @default 20 */
  floodCloseAfter?: number;
  /** After `next`, how long the two users are kept apart, in ms. @default 60000 */
  nextCooldownMs?: number;
  /** Messages kept in a room's history. @default 100 */
  historyLimit?: number;
  /** A connection whose unsent output exceeds this many bytes is closed with 1008. @default 1048576 */
  maxBufferedBytes?: number;
  /** Requests a session may have in flight; more are answered `rate_limited`. @default 32 */
  maxPendingRequests?: number;
  /** The authentication hook. @default every client is a guest (when `allowGuests`) */
  authenticate?: AuthenticateHook;
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
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/** What the host app learns about the session behind an event. */
export interface SessionInfo {
  sessionId: string;
  identity: Identity;
}

/** Events of a hub, for the host app. Each carries the identity of the session concerned. */
export interface HubEvents {
  /** A connection was accepted and its session opened. */
  sessionOpened: (info: SessionInfo) => void;
  /** A session ended (its connection closed). */
  sessionClosed: (info: SessionInfo & { code: number | undefined }) => void;
  /** A session entered the pool, or updated its point and range. */
  waiting: (info: SessionInfo & { since: number }) => void;
  /** A pair was matched; emitted once, by the node of the session whose search found the pair. */
  matched: (info: SessionInfo & { roomId: string; partner: RoomMember; distanceKm: number }) => void;
  /** A chat message was accepted and delivered. */
  message: (info: SessionInfo & { roomId: string; messageId: string; text: string; ts: number }) => void;
  /** A session left its room: `left`, `next`, `blocked` or `disconnected`. */
  left: (info: SessionInfo & { roomId: string; reason: PartnerLeftReason | "blocked" }) => void;
  /** A session blocked its partner. */
  blocked: (
    info: SessionInfo & { roomId: string; blockedUserId: string; reason: string | undefined },
  ) => void;
  /** Something failed inside the hub (a store error, a throwing hook); the session got `internal`. */
  error: (info: { error: unknown; sessionId: string | undefined }) => void;
}

/** Options of `hub.close`. */
export interface HubCloseOptions {
  /** The close code sent to clients: 1001 (going away) or 1012 (restarting). @default 1001 */
  code?: 1001 | 1012;
  /** The close reason sent to clients. @default "server shutting down" (1001), "server restarting" (1012) */
  reason?: string;
}

/** Counts for an admin view. */
export interface HubStats {
  nodeId: string;
  /** Open sessions on this node. */
  sessions: number;
  /** Sessions on this node by state. */
  byState: { idle: number; waiting: number; room: number };
  /** Sessions waiting in the pool, on every node sharing the store. */
  waiting: number;
  /** Chat messages relayed by this node since it started. */
  messages: number;
}

/** Resolved settings, shared with sessions. */
export interface HubSettings {
  readonly limits: ClientLimits;
  readonly messageRate: BucketRule;
  readonly connectRate: BucketRule;
  readonly floodCloseAfter: number;
  readonly nextCooldownMs: number;
  readonly historyLimit: number;
  readonly maxBufferedBytes: number;
  readonly maxPendingRequests: number;
  readonly matchFilter: MatchFilter | undefined;
  readonly now: () => number;
}

const MAX_PARAM_CHARS = 8192;

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${what} must be a positive number, got ${v}`);
  return v;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The WhisperChat engine for one node: admits connections, runs sessions, matches, relays.
 * Transport adapters feed it connections; a {@link Store} holds what nodes share.
 */
export class WhisperHub extends EventEmitter<HubEvents> {
  /** This node's id. */
  readonly nodeId: string;
  /** The store this hub uses. */
  readonly store: Store;
  /** Resolved settings. */
  readonly settings: HubSettings;
  private readonly sessions = new Map<string, Session>();
  private readonly authenticate: AuthenticateHook | undefined;
  private readonly allowGuests: boolean;
  private readonly originAllowed: (origin: string | undefined) => boolean;
  private unsubscribe: (() => Promise<void>) | undefined;
  private readonly ready: Promise<void>;
  private closing = false;
  private messageCount = 0;

  constructor(options: WhisperOptions) {
    super();
    if (options?.store === undefined) {
      throw new TypeError(
        "createWhisper: `store` is required, e.g. createMemoryStore() from @whisperchat/store-memory",
      );
    }
    this.store = options.store;
    this.nodeId = options.nodeId ?? `node-${randomId(9)}`;
    const messageRate = options.messageRate ?? { capacity: 10, ratePerSec: 5 };
    const connectRate = options.connectRate ?? { capacity: 20, ratePerSec: 5 };
    assertBucketRule(messageRate, "messageRate");
    assertBucketRule(connectRate, "connectRate");
    this.settings = {
      limits: {
        maxMessageChars: positiveInt(options.maxMessageChars, 1000, "maxMessageChars"),
        maxRangeKm: positiveInt(options.maxRangeKm, 20000, "maxRangeKm"),
        maxNameChars: positiveInt(options.maxNameChars, 32, "maxNameChars"),
        messagesPerSec: messageRate.ratePerSec,
        messageBurst: messageRate.capacity,
        resumeGraceMs: 0,
        maxPayloadBytes: positiveInt(options.maxPayloadBytes, 16384, "maxPayloadBytes"),
      },
      messageRate,
      connectRate,
      floodCloseAfter: positiveInt(options.floodCloseAfter, 20, "floodCloseAfter"),
      nextCooldownMs: options.nextCooldownMs ?? 60_000,
      historyLimit: positiveInt(options.historyLimit, 100, "historyLimit"),
      maxBufferedBytes: positiveInt(options.maxBufferedBytes, 1 << 20, "maxBufferedBytes"),
      maxPendingRequests: positiveInt(options.maxPendingRequests, 32, "maxPendingRequests"),
      matchFilter: options.matchFilter,
      now: options.now ?? Date.now,
    };
    this.authenticate = options.authenticate;
    this.allowGuests = options.allowGuests ?? true;
    const origins = options.allowedOrigins;
    if (origins === undefined) this.originAllowed = () => true;
    else if (typeof origins === "function") this.originAllowed = origins;
    else {
      const set = new Set(origins);
      this.originAllowed = (origin) => origin === undefined || set.has(origin);
    }
    this.ready = this.store.bus
      .subscribe(this.nodeId, (msg) => this.onBus(msg))
      .then((unsub) => {
        this.unsubscribe = unsub;
      });
    // Surface a failed subscription through `admit`, never as an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  /** The limits sent to clients in `welcome`. */
  get limits(): ClientLimits {
    return this.settings.limits;
  }

  /**
   * Decides whether a connection may open: draining, origin, parameters, connection limiter,
   * authentication. Adapters call it before accepting the transport connection and answer a
   * {@link Refusal} with its HTTP status.
   */
  async admit(handshake: Handshake): Promise<Admission> {
    if (this.closing) return refuse(503, "internal", "the server is shutting down; try another node");
    try {
      await this.ready;
    } catch (error) {
      this.emit("error", { error, sessionId: undefined });
      return refuse(503, "internal", "the server cannot reach its store", 1);
    }
    const origin = firstHeader(handshake.headers.origin);
    if (!this.originAllowed(origin)) return refuse(403, "forbidden", "this origin is not allowed");
    const token = param(handshake.params.token);
    const resume = param(handshake.params.resume);
    if (token === null || resume === null) {
      return refuse(
        400,
        "bad_request",
        "`token` and `resume` must each be given at most once, as short strings",
      );
    }
    try {
      const limit = await this.store.limiter.consume(
        `connect:${handshake.remoteAddress}`,
        this.settings.connectRate,
        1,
      );
      if (!limit.allowed) {
        return refuse(
          429,
          "rate_limited",
          "too many connection attempts; slow down",
          Math.ceil(limit.retryAfterMs / 1000),
        );
      }
      let bearer = token;
      if (bearer === undefined) {
        const auth = firstHeader(handshake.headers.authorization);
        const m = auth === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(auth);
        bearer = m?.[1];
      }
      let identity: Identity | null = null;
      if (this.authenticate !== undefined) identity = await this.authenticate(handshake, bearer);
      if (identity === null) {
        if (!this.allowGuests) return refuse(401, "unauthorized", "this server requires a valid token");
        identity = {
          userId: `guest-${randomId(12)}`,
          name: `Guest ${randomId(2).slice(0, 3)}`,
          roles: [],
          guest: true,
        };
      }
      return { ok: true, identity, resumeToken: resume };
    } catch (error) {
      if (error instanceof WhisperError && error.code === "unauthorized")
        return refuse(401, "unauthorized", error.message);
      if (error instanceof WhisperError && error.code === "forbidden")
        return refuse(403, "forbidden", error.message);
      this.emit("error", { error, sessionId: undefined });
      return refuse(503, "internal", "the server could not admit the connection; try again", 1);
    }
  }

  /**
   * Opens a session on an accepted connection and sends `welcome`. Returns the inbound side
   * the adapter feeds with frames and the close.
   */
  open(admitted: Admission, connection: Connection): SessionLink {
    if (!admitted.ok) throw new TypeError("hub.open needs an accepted admission (admit() returned ok: true)");
    const session = new Session(this, this.settings, admitted.identity, connection, randomId(16));
    this.sessions.set(session.id, session);
    connection.send({
      type: "welcome",
      sessionId: session.id,
      resumeToken: randomId(32),
      protocol: PROTOCOL_VERSION,
      user: { userId: session.identity.userId, name: session.identity.name },
      resumed: false,
      limits: this.settings.limits,
    });
    this.emit("sessionOpened", session.info());
    return session.link;
  }

  /** Counts for an admin view. */
  async stats(): Promise<HubStats> {
    const byState = { idle: 0, waiting: 0, room: 0 };
    for (const s of this.sessions.values()) {
      if (s.state === "idle" || s.state === "waiting" || s.state === "room") byState[s.state]++;
    }
    return {
      nodeId: this.nodeId,
      sessions: this.sessions.size,
      byState,
      waiting: await this.store.pool.size(),
      messages: this.messageCount,
    };
  }

  /**
   * Stops admitting, closes every session (by default with 1001, going away; pass 1012 when the
   * node restarts so clients reconnect elsewhere), and leaves the store. The store itself stays
   * open: it belongs to the caller.
   */
  async close(options: HubCloseOptions = {}): Promise<void> {
    this.closing = true;
    const code = options.code ?? CloseCode.GoingAway;
    const reason =
      options.reason ?? (code === CloseCode.Restart ? "server restarting" : "server shutting down");
    const ending = [...this.sessions.values()].map((s) => s.terminate(code, reason));
    await Promise.allSettled(ending);
    await this.ready.catch(() => undefined);
    const unsub = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsub !== undefined) await unsub();
  }

  // ------------------------------------------------------------------------------------------
  // Internal: used by sessions.

  /** @internal */
  forget(session: Session): void {
    this.sessions.delete(session.id);
  }

  /** @internal */
  countMessage(): void {
    this.messageCount++;
  }

  /** @internal Search for a partner of a session that was just put in the pool. */
  async match(me: PoolEntry, session: Session): Promise<void> {
    const found = await searchAndClaim(this.store, me, this.settings.matchFilter);
    if (found === undefined) return;
    const { partner, distanceKm } = found;
    const roomId = randomId(12);
    const mine: RoomMember = { sessionId: me.sessionId, userId: me.userId, nodeId: me.nodeId, name: me.name };
    const theirs: RoomMember = {
      sessionId: partner.sessionId,
      userId: partner.userId,
      nodeId: partner.nodeId,
      name: partner.name,
    };
    const room: RoomRecord = { roomId, members: [mine, theirs], createdAt: this.settings.now() };
    await this.store.rooms.create(room);
    const km = publicDistanceKm(distanceKm);
    this.emit("matched", { ...session.info(), roomId, partner: theirs, distanceKm: km });
    await this.route(mine, {
      to: mine.sessionId,
      roomId,
      frame: { type: "matched", roomId, partner: { name: theirs.name, distanceKm: km } },
      partner: theirs,
    });
    await this.route(theirs, {
      to: theirs.sessionId,
      roomId,
      frame: { type: "matched", roomId, partner: { name: mine.name, distanceKm: km } },
      partner: mine,
    });
  }

  /**
   * @internal Hands a room frame to a session on whichever node owns it. Resolves `true` once
   * delivered (locally) or handed to the owning node.
   */
  async route(member: RoomMember, message: BusMessage): Promise<boolean> {
    if (member.nodeId === this.nodeId) {
      const target = this.sessions.get(member.sessionId);
      if (target === undefined) {
        await this.undeliverable(message);
        return false;
      }
      target.deliver(message);
      return true;
    }
    const routed = await this.store.bus.publish(member.nodeId, message);
    if (!routed) await this.undeliverable(message);
    return routed;
  }

  /**
   * @internal Closes a room on behalf of one member and tells the other member why. Only the
   * caller that actually deletes the room notifies, so a partner is told once.
   */
  async closeRoom(roomId: string, leaverSessionId: string, reason: PartnerLeftReason): Promise<void> {
    const record = await this.store.rooms.delete(roomId);
    if (record === undefined) return;
    const other = record.members[0].sessionId === leaverSessionId ? record.members[1] : record.members[0];
    await this.route(other, { to: other.sessionId, roomId, frame: { type: "partner_left", roomId, reason } });
  }

  /** A room frame for a session that is gone: a `matched` must not leave the partner hanging. */
  private async undeliverable(message: BusMessage): Promise<void> {
    if (message.frame.type === "matched") await this.closeRoom(message.roomId, message.to, "disconnected");
  }

  private onBus(message: BusMessage): void {
    const target = this.sessions.get(message.to);
    if (target !== undefined) target.deliver(message);
    else this.undeliverable(message).catch((error) => this.emit("error", { error, sessionId: message.to }));
  }
}

function refuse(
  status: Refusal["status"],
  code: Refusal["code"],
  message: string,
  retryAfterSec?: number,
): Refusal {
  const r: Refusal = { ok: false, status, code, message };
  if (retryAfterSec !== undefined) r.retryAfterSec = Math.max(1, retryAfterSec);
  return r;
}

/** One handshake parameter: `undefined` when absent, `null` when malformed. */
function param(value: string | string[] | undefined): string | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_PARAM_CHARS) return null;
  return value;
}

/**
 * Creates a WhisperChat hub: the engine of one node. Mount it with a transport adapter.
 *
 * ```ts
 * const hub = createWhisper({ store: createMemoryStore() });
 * attachWebSocket(hub, { server });
 * ```
 */
export function createWhisper(options: WhisperOptions): WhisperHub {
  return new WhisperHub(options);
}
