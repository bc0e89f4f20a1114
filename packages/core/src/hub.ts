import { EventEmitter } from "eventemitter3";
import { clientAddress, proxyMatcher } from "./address.js";
import { Admissions, allowed, hashToken } from "./admission.js";
import type { Timer } from "./clock.js";
import type { Admission, Connection, Handshake, Identity, Refusal, SessionLink } from "./connection.js";
import { Counters } from "./counters.js";
import type { ErrorCode } from "./errors.js";
import { CloseCode, WhisperError } from "./errors.js";
import type { HubEvents } from "./events.js";
import { Handover } from "./handover.js";
import { messageIds, randomId } from "./ids.js";
import { Liveness } from "./liveness.js";
import { Matchmaker } from "./matchmaking.js";
import {
  type Logger,
  observedStore,
  type StoreObservation,
  type StoreObserver,
  type StoreObserverOptions,
  silentLogger,
} from "./observe.js";
import type { ClientLimits } from "./protocol.js";
import { Router } from "./router.js";
import type { SessionHost } from "./session/host.js";
import { type ResumeContext, Session } from "./session/session.js";
import {
  type AuthorizeHook,
  type HubAction,
  type HubActionContext,
  type HubSettings,
  type ReauthenticateHook,
  resolveSettings,
  type WhisperOptions,
} from "./settings.js";
import type { BanRecord, BusMessage, Store } from "./store.js";

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
  private readonly admissions: Admissions;
  private readonly handover: Handover;
  private readonly reauthenticateHook: ReauthenticateHook | undefined;
  private readonly authorizeHook: AuthorizeHook | undefined;
  /** Whether a peer address is a trusted proxy. */
  readonly isTrustedProxy: (address: string) => boolean;
  private unsubscribe: (() => Promise<void>) | undefined;
  private subscribed = false;
  private subscribing = false;
  private ready: Promise<void>;
  private heartbeat: Timer | undefined;
  private closing = false;
  /** Clean-ups of ended sessions still talking to the store (awaited by `close`). */
  private readonly settling = new Set<Promise<unknown>>();
  private storeObserver: StoreObservation | undefined;
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
    this.reauthenticateHook = options.reauthenticate;
    this.authorizeHook = options.authorize;
    this.isTrustedProxy = proxyMatcher(options.trustedProxies);
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
        this.settings.clock.after(this.settings.limits.resumeGraceMs, () => {
          endOrphan(sessionId, deadNode).catch((error) => this.emit("error", { error, sessionId }));
        });
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
    this.admissions = new Admissions(
      this.nodeId,
      this.store,
      this.settings,
      this.host,
      this.sessions,
      this,
      this.counters,
      {
        authenticate: options.authenticate,
        authorize: options.authorize,
        allowGuests: options.allowGuests ?? true,
        originAllowed: originRule(options.allowedOrigins),
      },
      (remoteAddress, headers) => this.clientAddress(remoteAddress, headers),
      () => this.closing,
      () => this.ready,
    );
    this.handover = new Handover(this.nodeId, this.store, this.settings, this.router, (sessionId) => {
      const session = this.sessions.get(sessionId);
      this.sessions.delete(sessionId);
      return session;
    });
    this.ready = this.subscribe();
    this.wireLogging();
    this.beatEvery();
  }

  /** Runs `tick` now and every `nodeHeartbeatMs` until the hub closes. */
  private beatEvery(): void {
    if (this.closing) return;
    this.heartbeat = this.settings.clock.after(this.settings.nodeHeartbeatMs, () => this.beatEvery());
    this.tick().catch((error) => this.emit("error", { error, sessionId: undefined }));
  }

  /** The limits sent to clients in `welcome`. */
  get limits(): ClientLimits {
    return this.settings.limits;
  }

  /**
   * Times store calls from now on (one observer at a time; `undefined` stops it): every call, or
   * one in `sampleEvery` per operation.
   */
  observeStore(observer: StoreObserver | undefined, options: StoreObserverOptions = {}): void {
    const sampleEvery = options.sampleEvery ?? 1;
    if (!Number.isInteger(sampleEvery) || sampleEvery < 1)
      throw new RangeError(`observeStore: sampleEvery must be a positive integer, got ${sampleEvery}`);
    this.storeObserver = observer === undefined ? undefined : { observe: observer, sampleEvery };
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
    const admission = await this.admissions.decide(handshake);
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
  throttleHandshake(remoteAddress: string, headers: Handshake["headers"]): Promise<Refusal | undefined> {
    return this.admissions.throttle(remoteAddress, headers);
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
    this.admissions.cancel(admission);
  }

  /**
   * Opens a session on an accepted connection and sends `welcome` (resumed, with the missed
   * frames after it, when the admission carried a valid resume token). Returns the inbound side
   * the adapter feeds with frames and the close.
   */
  open(admitted: Admission, connection: Connection): SessionLink {
    if (!admitted.ok) throw new TypeError("hub.open needs an accepted admission (admit() returned ok: true)");
    const resumed = this.admissions.redeem(admitted.resume);
    if (resumed !== undefined) {
      const { session, fromNode, lastSeen } = resumed;
      // The old connection (if still open) is closed only now that the new one is here.
      session.detach(CloseCode.Replaced, "session resumed by another connection");
      const context: ResumeContext = { by: admitted.identity };
      if (fromNode !== undefined) context.released = this.handover.request(session.id, fromNode);
      if (lastSeen !== undefined) context.lastSeen = lastSeen;
      return session.attach(connection, admitted.address, resumed.token, context);
    }
    const id = randomId(16);
    const token = `${id}.${randomId(24)}`;
    const session = new Session(this.host, admitted.identity, id, hashToken(token));
    this.sessions.set(id, session);
    const link = session.attach(connection, admitted.address, token);
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

  /**
   * What this node counted since it started (synchronous and cheap, for metrics collected on
   * scrape): chat messages relayed, error answers by code, rate-limited actions by kind.
   */
  totals(): Pick<HubStats, "messages" | "errors" | "limited"> {
    const { messages, errors, limited } = this.counters;
    return { messages, errors: { ...errors }, limited: { ...limited } };
  }

  /** Counts for an admin view. With `by`, the authorisation hook must allow `stats`. */
  async stats(caller: AdminCaller = {}): Promise<HubStats> {
    await this.requireAdmin(caller, "stats", {});
    const byState = this.localCounts();
    const rooms = new Set<string>();
    for (const s of this.sessions.values()) {
      const roomId = s.roomId();
      if (roomId !== undefined) rooms.add(roomId);
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
    this.heartbeat?.cancel();
    this.admissions.clear();
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
    this.heartbeat?.cancel();
    for (const s of this.sessions.values()) s.halt();
    this.sessions.clear();
    await this.ready.catch(() => undefined);
    const unsub = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsub !== undefined) await unsub().catch(() => undefined);
  }

  // ------------------------------------------------------------------------------------------
  // Wiring

  private async requireAdmin(
    caller: AdminCaller,
    action: HubAction,
    context: HubActionContext,
  ): Promise<void> {
    if (caller.by === undefined) return;
    if (!(await allowed(this.authorizeHook, caller.by, action, context))) {
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
    if (message.kind === "release") this.handover.release(message.to, message.nodeId).catch(fail);
    else if (message.kind === "released") this.handover.released(message);
    else this.router.deliverHere(message).catch(fail);
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

  /** Sessions not yet audited in this round (see `auditIntervalMs`). */
  private auditing: Iterator<Session> | undefined;
  private auditBudget = 0;

  /**
   * Audits this tick's share of the sessions, so that each is audited once per
   * `auditIntervalMs`, spread over the heartbeats rather than all at once.
   */
  private auditSome(): void {
    const { auditIntervalMs, nodeHeartbeatMs } = this.settings;
    if (auditIntervalMs === 0 || this.sessions.size === 0) return;
    // A fraction carries over: each session is audited once per interval, few sessions or many.
    this.auditBudget += (this.sessions.size * nodeHeartbeatMs) / auditIntervalMs;
    let n = Math.floor(this.auditBudget + 1e-9);
    this.auditBudget -= n;
    this.auditing ??= this.sessions.values();
    while (n-- > 0) {
      let next = this.auditing.next();
      if (next.done === true) {
        this.auditing = this.sessions.values(); // the next round
        next = this.auditing.next();
        if (next.done === true) return;
      }
      next.value.audit();
    }
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
    else this.auditSome();
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
    for (const node of dead.confirmed) for (const s of watched.get(node) ?? []) s.partnerLost(node);
  }
}

/** The `allowedOrigins` option as a predicate. */
function originRule(origins: WhisperOptions["allowedOrigins"]): (origin: string | undefined) => boolean {
  if (origins === undefined) return () => true;
  if (typeof origins === "function") return origins;
  const set = new Set(origins);
  return (origin) => origin === undefined || set.has(origin);
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
