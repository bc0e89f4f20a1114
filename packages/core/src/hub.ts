import { createHash } from "node:crypto";
import { EventEmitter } from "eventemitter3";
import { clientAddress, proxyMatcher } from "./address.js";
import type {
  Admission,
  Connection,
  Handshake,
  Identity,
  Refusal,
  ResumeTicket,
  SessionLink,
} from "./connection.js";
import { Counters } from "./counters.js";
import type { ErrorCode } from "./errors.js";
import { CloseCode, WhisperError } from "./errors.js";
import type { HubEvents } from "./events.js";
import { randomId } from "./ids.js";
import { Liveness } from "./liveness.js";
import { Matchmaker } from "./matchmaking.js";
import { type Logger, observedStore, type StoreObserver, silentLogger } from "./observe.js";
import type { ClientLimits } from "./protocol.js";
import { Router } from "./router.js";
import type { SessionHost } from "./session/host.js";
import { type ResumeContext, Session } from "./session/session.js";
import {
  type AuthenticateHook,
  type AuthorizeHook,
  type HubAction,
  type HubActionContext,
  type HubSettings,
  type ReauthenticateHook,
  resolveSettings,
  type WhisperOptions,
} from "./settings.js";
import type { BanRecord, BusMessage, LimitResult, SessionRecord, SessionSnapshot, Store } from "./store.js";

/** Counts for an admin view. */
export interface HubStats {
  nodeId: string;
  /** Open sessions on this node (away ones included). */
  sessions: number;
  /** Sessions on this node by state. */
  byState: { idle: number; waiting: number; room: number; away: number };
  /** Rooms with at least one member on this node. */
  rooms: number;
  /** Sessions waiting in the pool, on every node sharing the store. */
  waiting: number;
  /** Chat messages relayed by this node since it started. */
  messages: number;
  /** Error answers by code, since start. */
  errors: Partial<Record<ErrorCode, number>>;
  /** Rate-limited actions by kind, since start. */
  limited: Record<string, number>;
}

/** Options of `hub.close`. */
export interface HubCloseOptions {
  /**
   * 1001 (going away): sessions end and partners are told `disconnected`. 1012 (restarting):
   * sessions are kept in the store for the resume grace so that clients resume on another node.
   * @default 1001
   */
  code?: 1001 | 1012;
  /** The close reason sent to clients. @default "server shutting down" (1001), "server restarting" (1012) */
  reason?: string;
}

/** Who is calling an admin method, for the authorisation hook. */
export interface AdminCaller {
  /** The identity asking; omitted for trusted server-side calls. */
  by?: Identity;
}

const MAX_PARAM_CHARS = 8192;
/** The roles of every guest: one shared, frozen empty list. */
const NO_ROLES: readonly string[] = Object.freeze([]);
/** How long a resuming node waits for the old node to hand a session over. */
const RELEASE_TIMEOUT_MS = 2000;
/**
 * How long a resume admitted by `admit` waits for `open`. An adapter whose socket died in the
 * handshake should call `cancel`; past this the hub cancels the ticket itself.
 */
const TICKET_TTL_MS = 10_000;

/** A resume admitted and waiting for `open` (or `cancel`). */
interface Ticket {
  session: Session;
  /** The fresh resume token `welcome` will carry. */
  token: string;
  /** The hash of the token the client resumed with: given back if the resume is cancelled. */
  previousHash: string;
  /** For a session rebuilt here from its record: the node that owned it (asked to hand it over at `open`). */
  fromNode?: string;
  /** The client's message cursor (handshake parameter `last`). */
  lastSeen?: string;
  timer: NodeJS.Timeout;
}

/**
 * Whether a connection of `identity` may take over a session of `owner`: a registered user's
 * session only by the same user, a guest's only by a guest (who holds its resume token).
 */
function mayResume(identity: Identity, owner: { userId: string; guest?: boolean }): boolean {
  if (owner.guest === true) return identity.guest === true;
  return identity.guest !== true && identity.userId === owner.userId;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The stored form of a resume token: its SHA-256, so a leaked store does not leak tokens. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
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
  /** What the sessions of this node use (see {@link SessionHost}). */
  private readonly host: SessionHost;
  private readonly router: Router;
  private readonly liveness: Liveness;
  private readonly counters: Counters;
  private readonly releases = new Map<string, (snapshot: SessionSnapshot | null) => void>();
  /** Resumes admitted but not opened yet (see {@link WhisperHub.cancel}). */
  private readonly tickets = new Map<ResumeTicket, Ticket>();
  private readonly authenticateHook: AuthenticateHook | undefined;
  private readonly reauthenticateHook: ReauthenticateHook | undefined;
  private readonly authorizeHook: AuthorizeHook | undefined;
  private readonly allowGuests: boolean;
  /** Whether a peer address is a trusted proxy. */
  readonly isTrustedProxy: (address: string) => boolean;
  private readonly originAllowed: (origin: string | undefined) => boolean;
  private unsubscribe: (() => Promise<void>) | undefined;
  private subscribed = false;
  private subscribing = false;
  private ready: Promise<void>;
  private readonly heartbeat: NodeJS.Timeout;
  private closing = false;
  /** Clean-ups of ended sessions still talking to the store (awaited by `close`). */
  private readonly settling = new Set<Promise<unknown>>();
  private storeObserver: StoreObserver | undefined;
  /** The logger given in the options (silent by default). */
  readonly logger: Logger;

  constructor(options: WhisperOptions) {
    super();
    if (options?.store === undefined) {
      throw new TypeError(
        "createWhisper: `store` is required, e.g. createMemoryStore() from @whisperchat/store-memory",
      );
    }
    this.store = observedStore(options.store, () => this.storeObserver);
    this.logger = options.logger ?? silentLogger;
    this.nodeId = options.nodeId ?? `node-${randomId(9)}`;
    this.settings = resolveSettings(options);
    this.authenticateHook = options.authenticate;
    this.reauthenticateHook = options.reauthenticate;
    this.authorizeHook = options.authorize;
    this.allowGuests = options.allowGuests ?? true;
    this.isTrustedProxy = proxyMatcher(options.trustedProxies);
    const origins = options.allowedOrigins;
    if (origins === undefined) this.originAllowed = () => true;
    else if (typeof origins === "function") this.originAllowed = origins;
    else {
      const set = new Set(origins);
      this.originAllowed = (origin) => origin === undefined || set.has(origin);
    }
    this.counters = new Counters(this);
    this.router = new Router(this.nodeId, this.store, this.settings, this.sessions);
    this.liveness = new Liveness(this.nodeId, this.store, this.settings, this.logger);
    const endOrphan = (sessionId: string, deadNode: string): Promise<void> =>
      this.closing ? Promise.resolve() : this.liveness.endOrphan(sessionId, deadNode);
    const matchmaker = new Matchmaker(
      this.store,
      this.settings,
      this.router,
      this.liveness,
      this,
      this.nodeId,
      (sessionId, deadNode) => {
        const timer = setTimeout(() => {
          endOrphan(sessionId, deadNode).catch((error) => this.emit("error", { error, sessionId }));
        }, this.settings.limits.resumeGraceMs);
        timer.unref();
      },
    );
    this.host = {
      nodeId: this.nodeId,
      store: this.store,
      settings: this.settings,
      events: this,
      router: this.router,
      counters: this.counters,
      authorize: this.authorizeHook,
      match: (entry, who) => matchmaker.match(entry, who),
      endOrphan,
      reauthenticate: (token, current) => this.reauthenticate(token, current),
      nextMessageId: messageIds(),
      forget: (session) => {
        if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
      },
      settle: (work) => {
        this.settling.add(work);
        const done = () => this.settling.delete(work);
        work.then(done, done);
      },
    };
    this.ready = this.subscribe();
    this.wireLogging();
    this.heartbeat = setInterval(() => {
      this.tick().catch((error) => this.emit("error", { error, sessionId: undefined }));
    }, this.settings.nodeHeartbeatMs);
    this.heartbeat.unref();
    this.tick().catch((error) => this.emit("error", { error, sessionId: undefined }));
  }

  /** The limits sent to clients in `welcome`. */
  get limits(): ClientLimits {
    return this.settings.limits;
  }

  /** Times every store call from now on (one observer at a time; `undefined` stops it). */
  observeStore(observer: StoreObserver | undefined): void {
    this.storeObserver = observer;
  }

  /** Logs the hub's events to the logger: debug for the flow, info/warn/error for the rest. */
  private wireLogging(): void {
    const log = this.logger;
    if (log === silentLogger) return;
    const nodeId = this.nodeId;
    this.on("sessionOpened", ({ sessionId, identity }) =>
      log.debug({ nodeId, sessionId, userId: identity.userId }, "session opened"),
    );
    this.on("sessionClosed", ({ sessionId, code }) =>
      log.debug({ nodeId, sessionId, code }, "session closed"),
    );
    this.on("sessionAway", ({ sessionId }) => log.debug({ nodeId, sessionId }, "session away"));
    this.on("resume", ({ sessionId, ok }) =>
      log.info({ nodeId, sessionId, ok }, ok ? "session resumed" : "resume failed"),
    );
    this.on("matched", ({ sessionId, roomId, distanceKm }) =>
      log.debug({ nodeId, sessionId, roomId, distanceKm }, "matched"),
    );
    this.on("refused", (info) => log.info({ nodeId, ...info }, "handshake refused"));
    this.on("rateLimited", (info) => log.debug({ nodeId, ...info }, "rate limited"));
    this.on("error", ({ error, sessionId }) =>
      log.error({ nodeId, sessionId, err: error }, "internal error"),
    );
  }

  /**
   * The client's address for a request: the peer, or what a trusted proxy says in
   * `X-Forwarded-For` (see the `trustedProxies` option). Use it in your own HTTP routes too.
   */
  clientAddress(remoteAddress: string, headers: Handshake["headers"]): string {
    return clientAddress(remoteAddress, headers["x-forwarded-for"], this.isTrustedProxy);
  }

  /**
   * Decides whether a connection may open: draining, connection cap, origin, parameters,
   * connection limiter, authentication, bans, and the resume token. Adapters call it before
   * accepting the transport connection and answer a {@link Refusal} with its HTTP status.
   */
  async admit(raw: Handshake): Promise<Admission> {
    const handshake: Handshake = {
      ...raw,
      remoteAddress: this.clientAddress(raw.remoteAddress, raw.headers),
    };
    const admission = await this.decide(handshake);
    if (!admission.ok) {
      this.emit("refused", {
        status: admission.status,
        code: admission.code,
        remoteAddress: handshake.remoteAddress,
        transport: handshake.transport,
      });
    }
    return admission;
  }

  /**
   * The cheap first gate of a transport handshake, before the transport keeps any state for it
   * (Socket.IO's `allowRequest`, before the engine creates its socket): draining, the connection
   * cap, and a connection-attempt bucket per client address. That bucket is a backstop against
   * floods, twice as large and fast as `connectRate`: a client slightly over the limit meets the
   * full admission's bucket first, which answers with a proper 429. Resolves a
   * {@link Refusal} to answer, or `undefined` to go on.
   */
  async throttleHandshake(
    remoteAddress: string,
    headers: Handshake["headers"],
  ): Promise<Refusal | undefined> {
    const closed = this.closedGate();
    if (closed !== undefined) return closed;
    const address = this.clientAddress(remoteAddress, headers);
    try {
      const { capacity, ratePerSec } = this.settings.connectRate;
      const rule = { capacity: capacity * 2, ratePerSec: ratePerSec * 2 };
      return this.connectLimited(await this.store.limiter.consume(`handshake:${address}`, rule, 1));
    } catch (error) {
      this.emit("error", { error, sessionId: undefined });
      return refuse(503, "internal", "the server could not admit the connection; try again", 1);
    }
  }

  /** Draining or at the connection cap: the refusal, else `undefined`. */
  private closedGate(): Refusal | undefined {
    if (this.closing)
      return refuse(503, "internal", "the server is shutting down; reconnect to another node", 1);
    if (this.sessions.size >= this.settings.maxSessions) {
      return refuse(503, "internal", "the server is at its connection cap; try again later", 5);
    }
    return undefined;
  }

  /** A refused connection attempt as a 429 (counted), or `undefined` when allowed. */
  private connectLimited(limit: LimitResult): Refusal | undefined {
    if (limit.allowed) return undefined;
    this.counters.limit("connect", undefined);
    return refuse(
      429,
      "rate_limited",
      "too many connection attempts; slow down",
      Math.ceil(limit.retryAfterMs / 1000),
    );
  }

  private async decide(handshake: Handshake): Promise<Admission> {
    const closed = this.closedGate();
    if (closed !== undefined) return closed;
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
    const last = param(handshake.params.last);
    if (token === null || resume === null || last === null) {
      return refuse(
        400,
        "bad_request",
        "`token`, `resume` and `last` must each be given at most once, as short strings",
      );
    }
    try {
      const limited = this.connectLimited(
        await this.store.limiter.consume(`connect:${handshake.remoteAddress}`, this.settings.connectRate, 1),
      );
      if (limited !== undefined) return limited;
      let bearer = token;
      if (bearer === undefined) {
        const auth = firstHeader(handshake.headers.authorization);
        const m = auth === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(auth);
        bearer = m?.[1];
        if (bearer !== undefined && bearer.length > MAX_PARAM_CHARS) {
          return refuse(400, "bad_request", `a bearer token must be at most ${MAX_PARAM_CHARS} characters`);
        }
      }
      let identity: Identity | null = null;
      if (this.authenticateHook !== undefined) identity = await this.authenticateHook(handshake, bearer);
      if (identity === null) {
        if (!this.allowGuests) return refuse(401, "unauthorized", "this server requires a valid token");
        identity = {
          userId: `guest-${randomId(12)}`,
          name: `Guest ${randomId(3).slice(0, 4)}`,
          roles: NO_ROLES,
          guest: true,
        };
      }
      if (!identity.guest) {
        const ban = await this.store.bans.get(identity.userId);
        if (ban !== undefined) return refuse(403, "forbidden", bannedMessage(ban));
      }
      if (!(await this.authorize(identity, "connect", {}))) {
        return refuse(403, "forbidden", "you are not allowed to connect");
      }
      const ticket = resume === undefined ? undefined : await this.takeBack(resume, identity, last);
      return { ok: true, identity, resume: ticket, address: handshake.remoteAddress };
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
   * The atomic part of a resume: swaps the single-use token in the store and takes ownership.
   * Resolves `undefined` (a fresh session follows) for an unknown, used or expired token, or a
   * token of another identity (see {@link mayResume}); a refused resume changes nothing, so
   * someone else's attempt never burns the owner's token. A live connection of the session keeps
   * it until the new connection opens (`open`), so a resume cut off mid-handshake costs nothing.
   */
  private async takeBack(
    token: string,
    identity: Identity,
    lastSeen: string | undefined,
  ): Promise<ResumeTicket | undefined> {
    const dot = token.indexOf(".");
    if (dot <= 0) return undefined;
    const sessionId = token.slice(0, dot);
    const previousHash = hashToken(token);
    const fresh = `${sessionId}.${randomId(24)}`;
    const freshHash = hashToken(fresh);
    const local = this.sessions.get(sessionId);
    if (local !== undefined && !local.persisted && !local.isClosed() && local.tokenHash === previousHash) {
      // A session that never changed state has no record yet (idle sessions cost no store
      // write): it can only be taken over on its own node, which is this one. Swapping the
      // hash here, before any await, keeps the token single-use.
      if (!mayResume(identity, local.identity)) return undefined;
      local.tokenHash = freshHash;
      return this.issueTicket({ session: local, token: fresh, previousHash }, lastSeen);
    }
    // The owner first (a session's user never changes), then the compare-and-set: a token of
    // another identity is refused before it can burn anything.
    const current = await this.store.sessions.get(sessionId);
    if (
      current === undefined ||
      current.tokenHash !== previousHash ||
      !mayResume(identity, current) ||
      (await this.endedWithItsNode(current))
    ) {
      this.emit("resume", { sessionId, identity, ok: false });
      return undefined;
    }
    const record = await this.store.sessions.takeover(
      sessionId,
      previousHash,
      this.nodeId,
      freshHash,
      this.settings.sessionRecordTtlMs,
    );
    if (record === undefined) {
      this.emit("resume", { sessionId, identity, ok: false });
      return undefined;
    }
    const session = this.sessions.get(sessionId);
    if (session !== undefined) {
      session.tokenHash = freshHash;
      return this.issueTicket({ session, token: fresh, previousHash }, lastSeen);
    }
    // Kept here (away) from now on: a frame routed by the record's new node id finds it.
    const adopted = Session.fromRecord(this.host, record, freshHash);
    this.sessions.set(sessionId, adopted);
    adopted.goAwayQuietly();
    return this.issueTicket(
      { session: adopted, token: fresh, previousHash, fromNode: record.nodeId },
      lastSeen,
    );
  }

  /**
   * Whether a session whose node died has ended all the same: its room was closed (its partner
   * was told `partner_left` at the grace). Its record is removed; a resume gets a fresh session.
   */
  private async endedWithItsNode(record: SessionRecord): Promise<boolean> {
    if (record.state !== "room" || record.roomId === undefined || record.nodeId === this.nodeId) return false;
    if ((await this.store.rooms.get(record.roomId)) !== undefined) return false;
    if ((await this.store.nodes.alive([record.nodeId])).has(record.nodeId)) return false;
    await this.store.sessions.delete(record.sessionId);
    return true;
  }

  private issueTicket(entry: Omit<Ticket, "timer">, lastSeen: string | undefined): ResumeTicket {
    const ticket: ResumeTicket = { sessionId: entry.session.id };
    const timer = setTimeout(() => this.giveBack(ticket), TICKET_TTL_MS);
    timer.unref();
    this.tickets.set(ticket, lastSeen === undefined ? { ...entry, timer } : { ...entry, timer, lastSeen });
    return ticket;
  }

  /**
   * Gives back a resume that was admitted but will not be opened: the adapter's socket died
   * during the handshake, or the handshake timed out. The resume token the client used works
   * again; a session whose old connection is still open keeps it; an away session stays away
   * for the rest of its grace (its partner is told `partner_away` if it was not yet). Adapters
   * call it for every accepted admission they do not pass to {@link WhisperHub.open}; without a
   * resume it does nothing. Tickets nobody opens or cancels are cancelled after 10 s.
   */
  cancel(admission: Admission): void {
    if (admission.ok && admission.resume !== undefined) this.giveBack(admission.resume);
  }

  private giveBack(ticket: ResumeTicket): void {
    const entry = this.tickets.get(ticket);
    if (entry === undefined) return;
    this.tickets.delete(ticket);
    clearTimeout(entry.timer);
    const { session } = entry;
    if (session.isClosed()) return;
    const freshHash = hashToken(entry.token);
    if (entry.fromNode === undefined) {
      session.resumeAbandoned(freshHash, entry.previousHash);
      return;
    }
    // Rebuilt here for nothing: the record goes back to its node, with the token the client has.
    session.halt();
    this.host.forget(session);
    this.store.sessions
      .takeover(session.id, freshHash, entry.fromNode, entry.previousHash, this.settings.sessionRecordTtlMs)
      .catch((error) => this.emit("error", { error, sessionId: session.id }));
  } /** Asks the old node to hand the session over; resolves its snapshot, or `null` if it is gone. */
  private requestRelease(sessionId: string, oldNode: string): Promise<SessionSnapshot | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.releases.delete(sessionId);
        resolve(null);
      }, RELEASE_TIMEOUT_MS);
      timer.unref();
      this.releases.set(sessionId, (snapshot) => {
        clearTimeout(timer);
        this.releases.delete(sessionId);
        resolve(snapshot);
      });
      this.store.bus.publish(oldNode, { kind: "release", to: sessionId, nodeId: this.nodeId }).then(
        (routed) => {
          if (!routed) this.releases.get(sessionId)?.(null);
        },
        () => this.releases.get(sessionId)?.(null),
      );
    });
  }

  /**
   * Opens a session on an accepted connection and sends `welcome` (resumed, with the missed
   * frames after it, when the admission carried a valid resume token). Returns the inbound side
   * the adapter feeds with frames and the close.
   */
  open(admitted: Admission, connection: Connection): SessionLink {
    if (!admitted.ok) throw new TypeError("hub.open needs an accepted admission (admit() returned ok: true)");
    const resumed = admitted.resume === undefined ? undefined : this.tickets.get(admitted.resume);
    if (resumed !== undefined && admitted.resume !== undefined) {
      this.tickets.delete(admitted.resume);
      clearTimeout(resumed.timer);
      if (!resumed.session.isClosed()) {
        // The old connection (if still open) is closed only now that the new one is here.
        resumed.session.detach(CloseCode.Replaced, "session resumed by another connection");
        resumed.session.address = admitted.address;
        const from = resumed.fromNode;
        const released =
          from === undefined
            ? undefined
            : from === this.nodeId
              ? Promise.resolve(null)
              : this.requestRelease(resumed.session.id, from);
        const context: ResumeContext = { by: admitted.identity };
        if (released !== undefined) context.released = released;
        if (resumed.lastSeen !== undefined) context.lastSeen = resumed.lastSeen;
        return resumed.session.attach(connection, resumed.token, context);
      }
    }
    const id = randomId(16);
    const token = `${id}.${randomId(24)}`;
    const session = new Session(this.host, admitted.identity, id, hashToken(token));
    session.address = admitted.address;
    this.sessions.set(id, session);
    const link = session.attach(connection, token);
    this.emit("sessionOpened", session.info());
    return link;
  }

  /** Open sessions on this node by state (synchronous, for gauges). */
  localCounts(): { idle: number; waiting: number; room: number; away: number } {
    const byState = { idle: 0, waiting: 0, room: 0, away: 0 };
    for (const s of this.sessions.values()) {
      const state = s.state;
      if (state !== "closed") byState[state]++;
    }
    return byState;
  }

  /** Counts for an admin view. With `by`, the authorisation hook must allow `stats`. */
  async stats(caller: AdminCaller = {}): Promise<HubStats> {
    await this.requireAdmin(caller, "stats", {});
    const byState = this.localCounts();
    const rooms = new Set<string>();
    for (const s of this.sessions.values()) {
      const snap = s.snapshot();
      if (snap.state === "room" && snap.roomId !== undefined) rooms.add(snap.roomId);
    }
    return {
      nodeId: this.nodeId,
      sessions: this.sessions.size,
      byState,
      rooms: rooms.size,
      waiting: await this.store.pool.size(),
      messages: this.counters.messages,
      errors: { ...this.counters.errors },
      limited: { ...this.counters.limited },
    };
  }

  /** Closes every session of a user on this node with 1008. Resolves how many were closed. */
  async kick(userId: string, caller: AdminCaller = {}): Promise<number> {
    await this.requireAdmin(caller, "kick", { targetUserId: userId });
    const mine = [...this.sessions.values()].filter((s) => s.identity.userId === userId);
    await Promise.all(mine.map((s) => s.terminate(CloseCode.Policy, "kicked")));
    return mine.length;
  }

  /**
   * Bans a user on every node sharing the store (new connections get 403) and kicks their
   * sessions on this node. `until` (ms since the epoch) ends the ban; omitted, it lasts until
   * `unban`.
   */
  async ban(userId: string, options: AdminCaller & { until?: number; reason?: string } = {}): Promise<void> {
    await this.requireAdmin(options, "ban", { targetUserId: userId });
    const ban: BanRecord = { userId, createdAt: this.settings.now() };
    if (options.until !== undefined) ban.until = options.until;
    if (options.reason !== undefined) ban.reason = options.reason;
    await this.store.bans.add(ban);
    await this.kick(userId);
  }

  /** Lifts a ban. Resolves `true` if there was one. */
  async unban(userId: string, caller: AdminCaller = {}): Promise<boolean> {
    await this.requireAdmin(caller, "unban", { targetUserId: userId });
    return this.store.bans.remove(userId);
  }

  /**
   * Stops admitting and closes every session. With 1001 (the default) sessions end and
   * partners are told `disconnected`; with 1012 (a restart or drain) sessions stay resumable
   * for the grace, on another node. Leaves the store; the store itself stays open: it belongs to
   * the caller.
   */
  async close(options: HubCloseOptions = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    for (const ticket of this.tickets.values()) clearTimeout(ticket.timer);
    this.tickets.clear();
    const code = options.code ?? CloseCode.GoingAway;
    const reason =
      options.reason ?? (code === CloseCode.Restart ? "server restarting" : "server shutting down");
    const all = [...this.sessions.values()];
    if (code === CloseCode.Restart && this.settings.limits.resumeGraceMs > 0) {
      for (const s of all) s.detach(code, reason);
      for (const s of all) s.goAwayQuietly();
      await Promise.allSettled(all.map((s) => s.drainForRestart()));
    } else {
      await Promise.allSettled(all.map((s) => s.terminate(code, reason)));
    }
    await Promise.allSettled([...this.settling]);
    await this.ready.catch(() => undefined);
    const unsub = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsub !== undefined) await unsub().catch(() => undefined);
    await this.store.nodes.remove(this.nodeId).catch(() => undefined);
  }

  /**
   * Stops this node at once, the way a crash would: no heartbeat, no bus, connections cut,
   * nothing cleaned up or told to anyone. The other nodes must cope (that is what it is for:
   * failure tests). Use `close()` to stop a node properly.
   */
  async halt(): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    for (const s of this.sessions.values()) s.halt();
    this.sessions.clear();
    await this.ready.catch(() => undefined);
    const unsub = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsub !== undefined) await unsub().catch(() => undefined);
  }

  // ------------------------------------------------------------------------------------------
  // Wiring

  /** Consults the authorisation hook. */
  private async authorize(
    identity: Identity,
    action: HubAction,
    context: HubActionContext,
  ): Promise<boolean> {
    if (this.authorizeHook === undefined) return true;
    return this.authorizeHook(identity, action, context);
  }

  private async requireAdmin(
    caller: AdminCaller,
    action: HubAction,
    context: HubActionContext,
  ): Promise<void> {
    if (caller.by === undefined) return;
    if (!(await this.authorize(caller.by, action, context))) {
      throw new WhisperError("forbidden", `not allowed to ${action}`);
    }
  }

  /** Checks a token sent with `auth`. */
  private async reauthenticate(token: string, current: Identity): Promise<Identity> {
    if (this.reauthenticateHook === undefined) {
      throw new WhisperError("unauthorized", "this server does not take tokens with `auth`");
    }
    let next: Identity;
    try {
      next = await this.reauthenticateHook(token, current);
    } catch (error) {
      if (error instanceof WhisperError) throw error;
      throw new WhisperError("unauthorized", "the token is not valid", { cause: error });
    }
    if (next.userId !== current.userId)
      throw new WhisperError("unauthorized", "the token names another user");
    return next;
  }

  private onBus(message: BusMessage): void {
    const fail = (error: unknown) => this.emit("error", { error, sessionId: message.to });
    if (message.kind === "release") {
      this.release(message.to, message.nodeId).catch(fail);
      return;
    }
    if (message.kind === "released") {
      this.releases.get(message.to)?.(message.snapshot);
      return;
    }
    this.router.deliverHere(message).catch(fail);
  }

  /** Another node resumed one of our sessions: hand it over and forward what still comes here. */
  private async release(sessionId: string, nodeId: string): Promise<void> {
    const session = this.sessions.get(sessionId);
    // Forwarding is only needed while frames addressed here are in flight.
    this.router.forward(sessionId, nodeId, this.settings.sessionRecordTtlMs);
    let snapshot: SessionSnapshot | null = null;
    if (session !== undefined) {
      this.sessions.delete(sessionId);
      snapshot = await session.release();
    }
    await this.store.bus.publish(nodeId, { kind: "released", to: sessionId, snapshot });
  }

  /** Subscribes this node to the bus. A failure surfaces through `admit` and is retried by `tick`. */
  private subscribe(): Promise<void> {
    const ready = this.store.bus
      .subscribe(this.nodeId, (msg) => this.onBus(msg))
      .then((unsub) => {
        this.unsubscribe = unsub;
        this.subscribed = true;
      });
    ready.catch((error) => this.emit("error", { error, sessionId: undefined }));
    return ready;
  }

  /** Heartbeat, a retry of a failed bus subscription, and detection of partners whose node died. */
  private async tick(): Promise<void> {
    if (this.closing) return;
    if (!this.subscribed && !this.subscribing) {
      this.subscribing = true;
      this.ready
        .then(
          () => undefined,
          () => {
            this.ready = this.subscribe();
          },
        )
        .finally(() => {
          this.subscribing = false;
        });
    }
    if (await this.liveness.beat()) for (const s of this.sessions.values()) s.reconcile();
    const watched = new Map<string, Session[]>();
    for (const s of this.sessions.values()) {
      const p = s.currentPartner();
      if (p === undefined || p.nodeId === this.nodeId) continue;
      const list = watched.get(p.nodeId);
      if (list === undefined) watched.set(p.nodeId, [s]);
      else list.push(s);
    }
    if (watched.size === 0) return;
    const dead = await this.liveness.dead(watched.keys());
    for (const node of dead.confirmed) for (const s of watched.get(node) ?? []) s.partnerLost();
  }
}

/**
 * Message ids unique across nodes and restarts: a random per-process prefix and a counter
 * (cheaper than fresh random bytes on the relay's hot path; message ids need not be secret).
 */
function messageIds(): () => string {
  const prefix = randomId(6);
  let counter = 0;
  return () => {
    counter++;
    return `${prefix}${counter.toString(36)}`;
  };
}

function bannedMessage(ban: BanRecord): string {
  const until = ban.until === undefined ? "" : ` until ${new Date(ban.until).toISOString()}`;
  return `you are banned${until}`;
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
