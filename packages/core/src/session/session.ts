import type { Connection, Identity, Reply, SessionLink } from "../connection.js";
import { CloseCode, WhisperError } from "../errors.js";
import type { SessionInfo } from "../events.js";
import { poolKeyOf } from "../matchmaking.js";
import type {
  BlockFrame,
  ClientFrame,
  JoinFrame,
  MessageRequestFrame,
  ReplyFrame,
  RoomFrame,
  ServerFrame,
} from "../protocol.js";
import { PROTOCOL_VERSION } from "../protocol.js";
import type { HubSettings } from "../settings.js";
import type {
  FrameMessage,
  JoinParams,
  PoolEntry,
  RoomMember,
  SessionRecord,
  SessionSnapshot,
  StoredMessage,
} from "../store.js";
import { FrameError, parseClientFrame, validateClientFrame } from "../validate.js";
import { LocalBuckets } from "./buckets.js";
import { errorFrame, internalError, requestIdOf, TOO_FAST, withId } from "./frames.js";
import type { SessionHost } from "./host.js";
import { Link, type LinkTarget } from "./link.js";
import { RelayQueue } from "./relay-queue.js";
import { RequestQueue } from "./requests.js";

/**
 * The states of a session.
 *
 * ```
 *   idle ──join──> waiting ──matched──> room
 *    ▲  <──leave──    ▲ <──next/block──  │
 *    └──────leave / partner_left─────────┘
 *   idle | waiting | room ──connection dropped──> away ──resumed──> (the state it had)
 *   away ──grace over──> closed;  any ──closed by client or server──> closed
 * ```
 */
export type SessionState = "idle" | "waiting" | "room" | "away" | "closed";

/** One settled promise shared by every idle session's queues. */
const RESOLVED: Promise<void> = Promise.resolve();

/** How long a refused message waits for the `partner_left` that explains it (see `checkRoomSoon`). */
const ROOM_CHECK_DELAY_MS = 1000;

/** How a connection takes a session back (see {@link Session.attach}). */
export interface ResumeContext {
  /** The identity of the resuming connection (the hub checked it may resume). */
  by: Identity;
  /** For a session taken from another node: its hand-over (the snapshot, or `null`). */
  released?: Promise<SessionSnapshot | null>;
  /** The client's cursor: the last message it got (`<roomId>:<messageId>`, or `<roomId>:`). */
  lastSeen?: string;
}

/** The logical state underneath `away`: what the session comes back to. */
type Logical = "idle" | "waiting" | "room";

/** One client session on this node. Requests are handled one at a time, in order. */
export class Session implements LinkTarget {
  /** Who the session is; a guest's name changes with `join`. */
  identity: Identity;
  /** The hash of the current resume token. */
  tokenHash: string;
  private logical: Logical = "idle";
  private closed = false;
  private conn: Connection | undefined;
  /** Bumped on every attach, so a replaced connection's late events are ignored. */
  private generation = 0;
  private roomId: string | undefined;
  private partner: RoomMember | undefined;
  private lastJoin: JoinParams | undefined;
  private since = 0;
  /** A pending {@link Session.searchAgainLater}; cleared when the session ends or moves. */
  private searchTimer: NodeJS.Timeout | undefined;
  /** Whether this session added its current pool entry and has not taken it out since. */
  private inPool = false;
  /**
   * The ids of the messages the last resume replayed from the room history (at most the
   * history's length), so that one arriving later by its route is not delivered twice.
   */
  private replayed: Set<string> | undefined;
  /** A pending {@link Session.checkRoomSoon}. */
  private roomCheck: NodeJS.Timeout | undefined;
  /** The key of this session's current pool entry (see {@link sessionOfPoolKey}). */
  private poolKey = "";
  private poolVersion = 0;
  /** Rooms that closed while this session was waiting for their `matched` (see `applyFrame`). */
  private abandoned: string[] | undefined;
  private strikes = 0;
  /** Mailbox pushes while away, in order. */
  private outbox: Promise<void> = RESOLVED;
  /** Deliveries held while a resume replays the mailbox. */
  private held: FrameMessage[] | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private partnerLostTimer: NodeJS.Timeout | undefined;
  /** The room whose partner's node was seen dead (told once). */
  private lostRoom: string | undefined;
  private tokenTimer: NodeJS.Timeout | undefined;
  /** The address of the client's connection (trusted proxies applied); "" when unknown. */
  address = "";
  /**
   * Whether the session's record was ever saved. A fresh session is saved on its first state
   * change (or drop), so idle connections cost no store write and no stored record.
   */
  persisted = false;

  private readonly settings: HubSettings;
  /** Requests run one at a time, in order. */
  private readonly requests: RequestQueue;
  private readonly buckets: LocalBuckets;
  /** Chat messages on their way to the store and the partner. */
  private readonly relay: RelayQueue;

  constructor(
    private readonly host: SessionHost,
    identity: Identity,
    readonly id: string,
    tokenHash: string,
  ) {
    this.settings = host.settings;
    this.requests = new RequestQueue((error) => host.events.emit("error", { error, sessionId: id }));
    this.buckets = new LocalBuckets(host.settings);
    this.relay = new RelayQueue(host, {
      id,
      userId: () => this.identity.userId,
      answer: (frame, reply) => this.answer(frame, reply),
      refuse: (retryAfterMs, requestId, reply) =>
        this.refuse("message", TOO_FAST, retryAfterMs, requestId, reply),
      fail: (error, requestId, reply) => this.fail(error, requestId, reply),
      roomClosed: (roomId) => this.checkRoomSoon(roomId),
      sent: (roomId, message) => this.sent(roomId, message),
      settled: () => {
        this.requests.pending--;
      },
    });
    this.identity = identity;
    this.tokenHash = tokenHash;
  }

  /** A session rebuilt from its stored record, on the node where it resumes. */
  static fromRecord(host: SessionHost, record: SessionRecord, tokenHash: string): Session {
    const s = new Session(
      host,
      { userId: record.userId, name: record.name, roles: record.roles, guest: record.guest },
      record.sessionId,
      tokenHash,
    );
    if (record.expiresAt !== undefined) s.identity.expiresAt = record.expiresAt;
    s.persisted = true;
    s.apply(record);
    return s;
  }

  get state(): SessionState {
    if (this.closed) return "closed";
    if (this.conn === undefined) return "away";
    return this.logical;
  }

  /** Whether the session ended (a method, so that checks after an `await` are not narrowed away). */
  isClosed(): boolean {
    return this.closed;
  }

  info(): SessionInfo {
    return { sessionId: this.id, identity: this.identity };
  }

  snapshot(): SessionSnapshot {
    const snap: SessionSnapshot = { state: this.logical, since: this.since };
    if (this.roomId !== undefined) snap.roomId = this.roomId;
    if (this.partner !== undefined) snap.partner = this.partner;
    if (this.lastJoin !== undefined) snap.lastJoin = this.lastJoin;
    return snap;
  }

  private apply(snap: SessionSnapshot): void {
    this.logical = snap.state;
    this.roomId = snap.roomId;
    this.partner = snap.partner;
    this.lastJoin = snap.lastJoin;
    this.since = snap.since ?? 0;
  }

  record(): SessionRecord {
    const record: SessionRecord = {
      sessionId: this.id,
      nodeId: this.host.nodeId,
      userId: this.identity.userId,
      name: this.identity.name,
      roles: this.identity.roles,
      guest: this.identity.guest === true,
      tokenHash: this.tokenHash,
      updatedAt: this.settings.now(),
      ...this.snapshot(),
    };
    // The credential's expiry travels with the session: a resume elsewhere keeps the 4401.
    if (this.identity.expiresAt !== undefined) record.expiresAt = this.identity.expiresAt;
    return record;
  }

  /** Saves the session's record so it can be resumed (on any node). Errors are reported, not thrown. */
  persist(): void {
    if (this.closed || this.settings.limits.resumeGraceMs === 0) return;
    this.persisted = true;
    const ttl =
      this.conn === undefined ? this.settings.limits.resumeGraceMs : this.settings.sessionRecordTtlMs;
    this.host.store.sessions
      .put(this.record(), ttl)
      .catch((error) => this.host.events.emit("error", { error, sessionId: this.id }));
  }

  // ------------------------------------------------------------------------------------------
  // Connections

  /**
   * Binds a connection to the session and sends `welcome` with a fresh resume token. With
   * `resumed`, the frames missed while away are replayed before anything else.
   */
  attach(conn: Connection, resumeToken: string, resume?: ResumeContext): SessionLink {
    const generation = ++this.generation;
    const resumed = resume !== undefined;
    const by = resume?.by;
    if (by !== undefined && by.guest !== true && by.expiresAt !== undefined) {
      // The resuming connection's own credential decides when the session expires (the hub
      // checked it names the same user); without an expiry the stored one stays.
      this.identity = { ...this.identity, expiresAt: by.expiresAt };
    }
    this.conn = conn;
    this.clearGrace();
    conn.send({
      type: "welcome",
      sessionId: this.id,
      resumeToken,
      protocol: PROTOCOL_VERSION,
      user: { userId: this.identity.userId, name: this.identity.name },
      resumed,
      limits: this.settings.limits,
    });
    if (resume !== undefined) {
      this.held ??= [];
      this.requests.schedule(() => this.replay(resume));
    }
    this.armTokenExpiry();
    return new Link(this, generation);
  }

  /** A frame (or a binary-frame error) from the connection of `generation` (see {@link Link}). */
  inbound(generation: number, input: unknown, reply: Reply | undefined): void {
    if (generation === this.generation && !this.closed) this.enqueue(input, reply);
  }

  /** The connection of `generation` closed (see {@link Link}). */
  connectionClosed(generation: number, code: number | undefined): void {
    if (generation === this.generation && !this.closed) this.dropped(code);
  }

  /** Another connection takes this session over: the old one is closed with 4001. */
  detach(code: number, reason: string): void {
    const conn = this.conn;
    if (conn === undefined) return;
    this.generation++;
    this.conn = undefined;
    conn.close(code, reason);
  }

  /**
   * A resume admitted for this session will not be opened (its socket died mid-handshake): the
   * token the client resumed with is valid again. The session is untouched otherwise: its live
   * connection keeps it, or it stays away for the rest of its grace.
   */
  resumeAbandoned(freshHash: string, previousHash: string): void {
    if (this.closed || this.tokenHash !== freshHash) return;
    this.tokenHash = previousHash;
    if (this.persisted) this.persist();
  }

  /** The transport closed. A normal close (1000) ends the session; anything else makes it away. */
  private dropped(code: number | undefined): void {
    if (this.closed) return;
    const grace = this.settings.limits.resumeGraceMs;
    if (code === CloseCode.Normal || grace === 0) {
      // The requests that arrived before the close are handled first: a message sent right
      // before a normal close is still delivered.
      this.run(this.requests.tail.then(() => this.terminate(code, undefined)));
      return;
    }
    this.conn = undefined;
    this.generation++;
    this.goAway();
  }

  /** Keeps the session for the resume grace: out of the pool, partner told `partner_away`. */
  goAway(): void {
    this.goAwayQuietly();
    this.host.events.emit("sessionAway", this.info());
    this.run(this.leaveForAWhile());
  }

  /** Starts the resume grace, and nothing else (a session adopted for a resume). */
  goAwayQuietly(): void {
    this.clearGrace();
    this.graceTimer = setTimeout(() => this.run(this.expire()), this.settings.limits.resumeGraceMs);
    this.graceTimer.unref();
  }

  /** The node restarts: the session stays resumable elsewhere; this node keeps no timer for it. */
  async drainForRestart(): Promise<void> {
    this.clearGrace();
    this.clearPartnerLost();
    if (this.tokenTimer !== undefined) clearTimeout(this.tokenTimer);
    await this.leaveForAWhile();
    await this.outbox;
  }

  private async leaveForAWhile(): Promise<void> {
    const { logical, partner, roomId } = this;
    this.persist();
    if (logical === "waiting") await this.leavePool();
    if (logical === "room" && partner !== undefined && roomId !== undefined) {
      await this.host.router.route(partner, {
        to: partner.sessionId,
        roomId,
        frame: { type: "partner_away", roomId },
      });
    }
  }

  private async expire(): Promise<void> {
    if (this.closed || this.conn !== undefined) return;
    this.host.events.emit("resume", { ...this.info(), ok: false });
    await this.terminate(undefined, undefined);
  }

  private clearGrace(): void {
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  /** Stops the timers that only matter while the session lives here. */
  private clearTimers(): void {
    this.clearGrace();
    this.clearPartnerLost();
    if (this.tokenTimer !== undefined) clearTimeout(this.tokenTimer);
    this.tokenTimer = undefined;
    if (this.searchTimer !== undefined) clearTimeout(this.searchTimer);
    this.searchTimer = undefined;
    if (this.roomCheck !== undefined) clearTimeout(this.roomCheck);
    this.roomCheck = undefined;
  }

  /**
   * Replays what was missed while away, then tells the partner, then rejoins the pool if waiting.
   * With the client's cursor (`last`), the partner's messages after it are sent from the room's
   * history first: that covers messages written to a connection that died, or routed to a node
   * that crashed, which no mailbox holds. Every message goes out once (by `messageId`).
   */
  private async replay(resume: ResumeContext): Promise<void> {
    let moved = false;
    if (resume.released !== undefined) {
      const snap = await resume.released;
      if (snap !== null) this.apply(snap);
      else moved = true; // the old node is gone: the partner must learn our new address
    }
    await this.outbox; // frames kept while away are all in the mailbox before it is read
    const missed = await this.host.store.mailbox.drain(this.id);
    const replayed = await this.replayHistory(resume.lastSeen, resume.released !== undefined);
    // A message replayed from the history may still be on its way here by its route (routed to
    // the old node, then found here): it must not be delivered a second time when it arrives.
    this.replayed = replayed.size > 0 ? replayed : undefined;
    for (const frame of missed) {
      if (frame.type === "message" && replayed.has(frame.messageId)) continue;
      this.applyFrame(frame, undefined, true);
    }
    const held = this.held ?? [];
    this.held = undefined;
    for (const message of held) {
      if (message.frame.type === "message" && replayed.has(message.frame.messageId)) continue;
      await this.deliver(message);
    }
    if (this.closed) return;
    this.host.events.emit("resume", { ...this.info(), ok: true });
    const { partner, roomId } = this;
    if (this.logical === "room" && partner !== undefined && roomId !== undefined) {
      const back: FrameMessage = { to: partner.sessionId, roomId, frame: { type: "partner_back", roomId } };
      if (moved) back.partner = this.member();
      await this.host.router.route(partner, back);
    }
    this.persist();
    // A session taken over while live and waiting still has its pool entry: it keeps it (a
    // second entry would let two users match it at once). One that left the pool when it went
    // away, or came from another node, goes back in with its place in the queue.
    if (this.logical === "waiting" && this.lastJoin !== undefined && !this.inPool) {
      await this.enterPool(this.lastJoin, this.since, undefined, undefined, false);
    }
  }

  /**
   * Sends the partner's messages of the current room that come after the client's cursor
   * (`<roomId>:<messageId>`, or `<roomId>:` when it got none in that room), from the room's
   * history. Resolves the ids it sent. A cursor of another room, or none, sends nothing.
   */
  private async replayHistory(lastSeen: string | undefined, moved: boolean): Promise<Set<string>> {
    const sent = new Set<string>();
    const { roomId, partner } = this;
    if (this.logical !== "room" || roomId === undefined || partner === undefined) return sent;
    const colon = lastSeen?.indexOf(":") ?? -1;
    const cursorHere = lastSeen !== undefined && colon > 0 && lastSeen.slice(0, colon) === roomId;
    if (!cursorHere && !moved) return sent;
    const history = await this.host.store.rooms.history(roomId);
    this.relay.rememberFrom(history);
    if (!cursorHere || lastSeen === undefined) return sent;
    const after = lastSeen.slice(colon + 1);
    // An id no longer in the bounded history is older than all of it.
    const start = after === "" ? 0 : history.findIndex((m) => m.messageId === after) + 1;
    for (const m of history.slice(start)) {
      if (m.from !== partner.sessionId) continue;
      sent.add(m.messageId);
      this.send({ type: "message", roomId, messageId: m.messageId, text: m.text, ts: m.ts });
    }
    return sent;
  }

  /** Takes this session's entry out of the pool. Resolves `false` if it was already claimed. */
  private leavePool(): Promise<boolean> {
    this.inPool = false;
    return this.host.store.pool.remove(this.poolKey);
  }

  private member(): RoomMember {
    return {
      sessionId: this.id,
      userId: this.identity.userId,
      nodeId: this.host.nodeId,
      name: this.identity.name,
    };
  }

  // ------------------------------------------------------------------------------------------
  // Inbound requests

  private run(p: Promise<void>): void {
    p.catch((error) => this.host.events.emit("error", { error, sessionId: this.id }));
  }

  private enqueue(input: unknown, reply: Reply | undefined): void {
    if (this.closed) return;
    if (this.requests.pending >= this.settings.maxPendingRequests) {
      this.host.counters.limit("requests", this.id);
      this.answer(
        withId(
          {
            type: "error",
            code: "rate_limited",
            message: "too many requests in flight; wait for answers",
            retryAfterMs: 100,
          },
          requestIdOf(input),
        ),
        reply,
      );
      return;
    }
    this.requests.pending++;
    this.requests.schedule(async () => {
      try {
        await this.process(input, reply);
      } catch (error) {
        this.host.events.emit("error", { error, sessionId: this.id });
        this.answer(internalError(undefined), reply);
      } finally {
        this.requests.pending--;
      }
    });
  }

  private async process(input: unknown, reply: Reply | undefined): Promise<void> {
    if (this.closed) return;
    let frame: ClientFrame;
    try {
      if (input instanceof FrameError) throw input;
      frame =
        typeof input === "string"
          ? parseClientFrame(input, this.settings.limits)
          : validateClientFrame(input, this.settings.limits);
    } catch (error) {
      if (error instanceof FrameError) {
        await this.relay.relayed(); // answers go out in request order
        this.host.counters.error(error.code, this.id);
        this.answer(errorFrame(error, error.requestId), reply);
        return;
      }
      throw error;
    }
    // Every request but a chat message (which has buckets of its own) passes the session's
    // request bucket: a flood of cheap frames (`leave`, `ping`, `typing`) is bounded too.
    if (frame.type !== "message") {
      const limit = this.buckets.consume("request", 1);
      if (!limit.allowed) {
        if (frame.type === "typing") return; // best effort: dropped silently
        await this.relay.relayed();
        await this.refuse(
          "requests",
          "you are sending requests too fast",
          limit.retryAfterMs,
          frame.id,
          reply,
        );
        return;
      }
    }
    try {
      // Anything but a message waits for the messages before it (see `message`).
      if (frame.type !== "message") await this.relay.relayed();
      const authorize = this.host.authorize;
      if (
        authorize !== undefined &&
        !(await authorize(this.identity, frame.type, { sessionId: this.id, roomId: this.roomId }))
      ) {
        throw new WhisperError("forbidden", `you are not allowed to ${frame.type}`);
      }
      await this.handle(frame, reply);
    } catch (error) {
      await this.relay.relayed();
      if (error instanceof WhisperError && error.code !== "internal") {
        this.fail(error, frame.id, reply);
        return;
      }
      this.host.counters.error("internal", this.id);
      this.host.events.emit("error", { error, sessionId: this.id });
      this.answer(internalError(frame.id), reply);
    }
  }

  private async handle(frame: ClientFrame, reply: Reply | undefined): Promise<void> {
    switch (frame.type) {
      case "ping":
        this.answer(withId({ type: "pong" }, frame.id), reply);
        return;
      case "join":
        return this.join(frame, reply);
      case "message":
        return this.message(frame, reply);
      case "typing":
        // Best effort: dropped outside a room (it may race with partner_left) and when limited.
        if (this.logical === "room" && this.partner !== undefined && this.roomId !== undefined) {
          if (!this.buckets.consume("typing", 1).allowed) return;
          const limit = this.buckets.consume("message", 0);
          // Dropped while a message would be refused: typing must not outlast the rate.
          if (limit.level + 1 > this.settings.messageRate.capacity) return;
          await this.host.router.route(this.partner, {
            to: this.partner.sessionId,
            roomId: this.roomId,
            frame: { type: "typing", active: frame.active },
          });
        }
        return;
      case "next":
        return this.next(frame.id, reply);
      case "leave":
        // Idle already: nothing to change, nothing to write.
        if (this.logical !== "idle") await this.leaveRoomOrPool("left");
        this.answer(withId({ type: "ack", ts: this.settings.now() }, frame.id), reply);
        return;
      case "block":
        return this.block(frame, reply);
      case "auth": {
        // Checking a token costs CPU (a signature): a few per session, then `rate_limited`.
        const limit = this.buckets.consume("auth", 1);
        if (!limit.allowed) {
          await this.refuse(
            "auth",
            "you are refreshing your token too often",
            limit.retryAfterMs,
            frame.id,
            reply,
          );
          return;
        }
        const refreshed = await this.host.reauthenticate(frame.token, this.identity);
        this.identity = { ...this.identity, expiresAt: refreshed.expiresAt };
        this.armTokenExpiry();
        if (this.persisted) this.persist(); // a resume elsewhere keeps the new expiry
        this.answer(withId({ type: "ack", ts: this.settings.now() }, frame.id), reply);
        return;
      }
    }
  }

  /** Closes the session with 4401 when its credential expires, unless refreshed with `auth`. */
  private armTokenExpiry(): void {
    if (this.tokenTimer !== undefined) clearTimeout(this.tokenTimer);
    this.tokenTimer = undefined;
    const at = this.identity.expiresAt;
    if (at === undefined || this.closed) return;
    const delay = Math.max(0, at - this.settings.now());
    // setTimeout holds at most ~24.8 days; re-arm for longer expiries.
    this.tokenTimer = setTimeout(
      () => {
        if (this.identity.expiresAt !== undefined && this.identity.expiresAt <= this.settings.now()) {
          this.run(this.terminate(CloseCode.TokenExpired, "token expired"));
        } else this.armTokenExpiry();
      },
      Math.min(delay, 2 ** 31 - 1),
    );
    this.tokenTimer.unref();
  }

  private async churn(): Promise<void> {
    let limit = await this.host.store.limiter.consume(
      `churn:${this.identity.userId}`,
      this.settings.churnRate,
      1,
    );
    if (limit.allowed && this.identity.guest === true && this.address !== "") {
      // Guests also share a bucket per address: each throwaway connection is a new user.
      limit = await this.host.store.limiter.consume(
        `churnaddr:${this.address}`,
        this.settings.guestChurnPerAddress,
        1,
      );
    }
    if (!limit.allowed) {
      this.host.counters.limit("churn", this.id);
      throw new WhisperError("rate_limited", "you are joining and skipping too fast", {
        retryAfterMs: limit.retryAfterMs,
      });
    }
  }

  private async join(frame: JoinFrame, reply: Reply | undefined): Promise<void> {
    await this.churn();
    // Checked after the await: a match may have landed meanwhile.
    if (this.logical === "room")
      throw new WhisperError("in_room", "you are in a room: send `next` or `leave` first");
    if (frame.name !== undefined && this.identity.guest === true) {
      this.identity = { ...this.identity, name: frame.name };
    }
    // The exact point and range go no further: matching, the pool and the session record only
    // ever see the snapped point and the rounded range (see privacy.ts).
    const params: JoinParams = this.settings.grid.obfuscate(
      frame.location.lat,
      frame.location.lng,
      frame.rangeKm,
    );
    if (this.logical === "waiting") {
      // An update: take the entry out first; if it is already gone, we were just claimed.
      const removed = await this.leavePool();
      if (!removed)
        throw new WhisperError("in_room", "you were just matched: a `matched` frame is on its way");
      await this.enterPool(params, this.since, frame.id, reply, true);
      return;
    }
    await this.enterPool(params, this.settings.now(), frame.id, reply, true);
  }

  private async enterPool(
    params: JoinParams,
    since: number,
    id: string | undefined,
    reply: Reply | undefined,
    answer: boolean,
  ): Promise<void> {
    if (this.closed) return;
    this.lastJoin = params;
    this.since = since;
    this.logical = "waiting";
    // A fresh pool key per entry: a claim aimed at an entry this session has since replaced
    // (a location update racing with someone's search) finds nothing and fails.
    this.poolVersion++;
    this.poolKey = poolKeyOf(this.id, this.poolVersion);
    const entry: PoolEntry = {
      sessionId: this.poolKey,
      userId: this.identity.userId,
      nodeId: this.host.nodeId,
      name: this.identity.name,
      lat: params.lat,
      lng: params.lng,
      rangeKm: params.rangeKm,
      since,
    };
    await this.host.store.pool.add(entry);
    this.inPool = true;
    if (this.isClosed() || this.conn === undefined) {
      // The connection closed while the entry was being added: take it back out.
      await this.leavePool();
      return;
    }
    if (answer) {
      this.answer(withId({ type: "waiting", since }, id), reply);
      this.host.events.emit("waiting", { ...this.info(), since });
    }
    this.persist();
    // Insert, then search: the answer `waiting` always precedes `matched`.
    if (this.logical === "waiting") await this.search(entry);
  }

  /** Searches a partner for this session's pool entry. */
  private async search(entry: PoolEntry): Promise<void> {
    // A candidate's node looked silent but is not confirmed dead: look again once it had time
    // to heartbeat, so an eligible pair is not left waiting.
    if ((await this.host.match(entry, this.info())) === "later")
      this.searchAgainLater(this.settings.nodeHeartbeatMs);
  }

  /** Runs the pool search again after `delayMs`, if the session is still waiting by then. */
  searchAgainLater(delayMs: number): void {
    if (this.searchTimer !== undefined) clearTimeout(this.searchTimer);
    const timer = setTimeout(() => {
      this.searchTimer = undefined;
      this.requests.schedule(async () => {
        if (this.closed || this.conn === undefined || this.logical !== "waiting") return;
        const entry = await this.host.store.pool.get(this.poolKey);
        if (entry !== undefined) await this.search(entry);
      });
    }, delayMs);
    timer.unref();
    this.searchTimer = timer;
  }

  /**
   * A chat message: a resend is acked again, anything else passes the session's checks and joins
   * the relay queue, and the next request may start (see {@link RelayQueue}).
   */
  private async message(frame: MessageRequestFrame, reply: Reply | undefined): Promise<void> {
    if (frame.id !== undefined && this.relay.has(frame.id)) {
      await this.relay.relayed(); // a resend of a message still on its way: answer it as a resend
    }
    const seen = frame.id === undefined ? undefined : this.relay.ackOf(frame.id);
    if (seen !== undefined) {
      // A resend (e.g. after a reconnect) of a message that was already delivered: ack it again.
      await this.relay.relayed();
      this.answer(withId({ type: "ack", messageId: seen.messageId, ts: seen.ts }, frame.id), reply);
      return;
    }
    const partner = this.partner;
    const roomId = this.roomId;
    if (this.logical !== "room" || partner === undefined || roomId === undefined) {
      await this.relay.relayed();
      throw new WhisperError("not_in_room", "you are not in a room: wait for `matched`");
    }
    const local = this.buckets.consume("message", 1);
    if (!local.allowed) {
      await this.relay.relayed();
      await this.refuse("message", TOO_FAST, local.retryAfterMs, frame.id, reply);
      return;
    }
    this.requests.pending++;
    this.relay.push({
      frame,
      reply,
      roomId,
      partner,
      stored:
        frame.id === undefined
          ? { messageId: this.host.nextMessageId(), from: this.id, text: frame.text, ts: this.settings.now() }
          : {
              messageId: this.host.nextMessageId(),
              from: this.id,
              text: frame.text,
              ts: this.settings.now(),
              requestId: frame.id,
            },
    });
  }

  /** A chat message of this session was stored and handed to the partner. */
  private sent(roomId: string, { messageId, text, ts }: StoredMessage): void {
    this.strikes = 0;
    this.host.counters.message();
    if (this.host.events.listenerCount("message") > 0) {
      this.host.events.emit("message", { ...this.info(), roomId, messageId, text, ts });
    }
  }

  /**
   * A request refused by a limit of the session: `rate_limited`, or the 1008 close after too
   * many refusals in a row.
   */
  private async refuse(
    kind: string,
    why: string,
    retryAfterMs: number,
    id: string | undefined,
    reply: Reply | undefined,
  ): Promise<void> {
    if (this.closed) return;
    this.strikes++;
    this.host.counters.limit(kind, this.id);
    if (this.strikes >= this.settings.floodCloseAfter) {
      // Not awaited: ending waits for the relay queue, which may be what is running this.
      this.run(this.terminate(CloseCode.Policy, "flooding after repeated rate_limited"));
      return;
    }
    this.fail(new WhisperError("rate_limited", why, { retryAfterMs }), id, reply);
  }

  /** Answers a request with an error (counted). */
  private fail(error: WhisperError, id: string | undefined, reply: Reply | undefined): void {
    this.host.counters.error(error.code, this.id);
    this.answer(errorFrame(error, id), reply);
  }

  private async next(id: string | undefined, reply: Reply | undefined): Promise<void> {
    if (this.logical === "waiting") {
      this.answer(withId({ type: "waiting", since: this.since }, id), reply);
      return;
    }
    const params = this.lastJoin;
    if (params === undefined)
      throw new WhisperError("not_in_room", "nothing to go next from: send `join` first");
    await this.churn();
    const partner = this.partner;
    if (this.logical === "room" && partner !== undefined) {
      await this.host.store.exclusions.add(
        this.identity.userId,
        partner.userId,
        this.settings.nextCooldownMs,
      );
      await this.leaveRoomOrPool("next");
      // When the cooldown ends the two may be eligible again: look again then.
      this.searchAgainLater(this.settings.nextCooldownMs + 1);
    }
    await this.enterPool(params, this.settings.now(), id, reply, true);
  }

  private async block(frame: BlockFrame, reply: Reply | undefined): Promise<void> {
    const partner = this.partner;
    const roomId = this.roomId;
    const params = this.lastJoin;
    if (this.logical !== "room" || partner === undefined || roomId === undefined || params === undefined) {
      throw new WhisperError("not_in_room", "there is nobody to block: you are not in a room");
    }
    await this.churn(); // like `next`: it rejoins the pool
    // A block is forever, but a guest's user id lives only as long as its session: a block that
    // involves a guest lasts as long as a session record can (`sessionRecordTtlMs`).
    const guestInvolved =
      this.identity.guest === true || (await this.host.store.sessions.get(partner.sessionId))?.guest === true;
    await this.host.store.exclusions.add(
      this.identity.userId,
      partner.userId,
      guestInvolved ? this.settings.sessionRecordTtlMs : undefined,
    );
    this.host.events.emit("blocked", {
      ...this.info(),
      roomId,
      blockedUserId: partner.userId,
      reason: frame.reason,
    });
    await this.leaveRoomOrPool("left", "blocked");
    await this.enterPool(params, this.settings.now(), frame.id, reply, true);
  }

  /** Leaves the room (telling the partner `reason`) or the pool; the session becomes idle. */
  private async leaveRoomOrPool(
    reason: "left" | "next" | "disconnected",
    event: "left" | "next" | "disconnected" | "blocked" = reason,
  ): Promise<void> {
    const { logical, roomId } = this;
    if (logical === "idle") return; // nothing to leave, nothing to save
    this.logical = "idle";
    this.roomId = undefined;
    this.partner = undefined;
    this.clearPartnerLost();
    if (logical === "waiting") {
      await this.leavePool();
    } else if (logical === "room" && roomId !== undefined) {
      this.host.events.emit("left", { ...this.info(), roomId, reason: event });
      // Messages accepted before leaving (say, right before a normal close) go out first.
      await this.relay.relayed();
      await this.host.router.closeRoom(roomId, this.id, reason);
    }
    this.persist();
  }

  // ------------------------------------------------------------------------------------------
  // Outbound

  /**
   * A room frame routed to this session (from its partner, or from a match). Resolves once the
   * frame was written to the connection or, while away, stored in the mailbox for the resume.
   */
  async deliver(message: FrameMessage): Promise<void> {
    if (this.held !== undefined) {
      this.held.push(message);
      return;
    }
    if (message.frame.type === "message" && this.replayed?.has(message.frame.messageId) === true) return;
    this.applyFrame(message.frame, message, false);
  }

  /** Applies a room frame to the state, then sends it (or keeps it for the resume). */
  private applyFrame(frame: RoomFrame, message: FrameMessage | undefined, replaying: boolean): void {
    const roomId = message?.roomId ?? ("roomId" in frame ? frame.roomId : this.roomId);
    if (frame.type === "matched") {
      if (replaying) {
        this.send(frame);
        return;
      }
      const abandoned = this.abandoned?.indexOf(frame.roomId) ?? -1;
      if (abandoned >= 0 && this.logical === "waiting" && !this.closed) {
        // The room closed before its `matched` reached us: we were claimed out of the pool for
        // nothing. Go back in (same place in the queue) and search again.
        this.abandoned?.splice(abandoned, 1);
        const params = this.lastJoin;
        if (params !== undefined) {
          this.requests.schedule(() => this.enterPool(params, this.since, undefined, undefined, false));
        }
        return;
      }
      if (this.closed || this.logical !== "waiting" || message?.partner === undefined) {
        // We left the pool (or closed) after being claimed: undo the room for the partner.
        this.run(this.host.router.closeRoom(frame.roomId, this.id, this.closed ? "disconnected" : "left"));
        return;
      }
      this.logical = "room";
      this.inPool = false; // the claim took the entry out
      this.roomId = frame.roomId;
      this.partner = message.partner;
      this.persist();
      if (this.conn === undefined) {
        // Matched while away: the partner learns at once that we are away.
        const partner = message.partner;
        this.run(
          this.host.router
            .route(partner, {
              to: partner.sessionId,
              roomId: frame.roomId,
              frame: { type: "partner_away", roomId: frame.roomId },
            })
            .then(() => undefined),
        );
      }
      this.emitOrKeep(frame);
      return;
    }
    if (!replaying && (this.closed || this.logical !== "room" || this.roomId !== roomId)) {
      if (frame.type === "partner_left" && this.logical === "waiting" && roomId !== undefined) {
        // A room we were claimed into closed before its `matched` arrived (frames from two
        // nodes need not arrive in order): remember it, so that `matched` is not taken.
        this.abandoned ??= [];
        this.abandoned.push(roomId);
        if (this.abandoned.length > 8) this.abandoned.shift();
      }
      return;
    }
    if (frame.type === "partner_left") {
      this.logical = "idle";
      this.roomId = undefined;
      this.partner = undefined;
      this.clearPartnerLost();
      this.persist();
    } else if (frame.type === "partner_back") {
      this.clearPartnerLost();
      if (message?.partner !== undefined) {
        // The partner moved to another node: saved at once, so that a resume of this session on
        // yet another node (after this node dies) routes to where the partner is, not was.
        this.partner = message.partner;
        this.persist();
      }
    } else if (frame.type === "typing" && this.conn === undefined) {
      return; // not worth keeping
    }
    if (replaying) this.send(frame);
    else this.emitOrKeep(frame);
  }

  /** Sends a frame, or while away keeps it in the mailbox (in order). */
  private emitOrKeep(frame: RoomFrame): void {
    if (this.conn !== undefined) {
      this.send(frame);
      return;
    }
    const { maxMailbox, limits } = this.settings;
    this.outbox = this.outbox
      .then(() => this.host.store.mailbox.push(this.id, frame, maxMailbox, limits.resumeGraceMs))
      .catch((error) => {
        this.host.events.emit("error", { error, sessionId: this.id });
      });
  }

  /** Resolves once every frame kept while away is in the store. */
  flushed(): Promise<void> {
    return this.outbox;
  }

  /**
   * The store refused a message because the room is gone. Usually the partner just left and
   * `partner_left` is on its way; if it has not come after a moment and the room is still gone,
   * the store lost it (e.g. Redis restarted empty): see {@link Session.roomLost}.
   */
  private checkRoomSoon(roomId: string): void {
    if (this.roomCheck !== undefined) return;
    this.roomCheck = setTimeout(() => {
      this.roomCheck = undefined;
      this.requests.schedule(() => this.checkRoom(roomId));
    }, ROOM_CHECK_DELAY_MS);
    this.roomCheck.unref();
  }

  /** Ends the room with `lost` if this session is still in it and the store no longer has it. */
  async checkRoom(roomId: string): Promise<void> {
    if (this.closed || this.logical !== "room" || this.roomId !== roomId) return;
    if ((await this.host.store.rooms.get(roomId)) === undefined) await this.roomLost(roomId);
  }

  /**
   * The store lost the room this session is in: both members are told `partner_left` with reason
   * `lost` and are idle (the partner's node may learn it from either side; the second notice
   * finds it idle and is dropped).
   */
  private async roomLost(roomId: string): Promise<void> {
    const partner = this.partner;
    if (this.closed || this.logical !== "room" || this.roomId !== roomId || partner === undefined) return;
    this.logical = "idle";
    this.roomId = undefined;
    this.partner = undefined;
    this.clearPartnerLost();
    this.host.events.emit("left", { ...this.info(), roomId, reason: "lost" });
    this.persist();
    this.emitOrKeep({ type: "partner_left", roomId, reason: "lost" });
    await this.host.router.route(partner, {
      to: partner.sessionId,
      roomId,
      frame: { type: "partner_left", roomId, reason: "lost" },
    });
  }

  /**
   * The store may have lost what this session keeps there (it restarted empty, or failed over to
   * an empty replica), or the other nodes took this node for dead (it was frozen) and dropped its
   * pool entries and closed its rooms: put back what is missing. The record is saved again, a
   * waiting session goes back in the pool (same place in the queue) and searches again, and a
   * room the store no longer has ends with `lost` for both members. Frames kept for an away
   * session in a lost mailbox are gone.
   */
  reconcile(): void {
    this.requests.schedule(async () => {
      if (this.closed) return;
      if (this.persisted) this.persist();
      const roomId = this.roomId;
      if (this.logical === "room" && roomId !== undefined) {
        await this.checkRoom(roomId);
        return;
      }
      if (this.logical !== "waiting" || this.conn === undefined || this.lastJoin === undefined) return;
      if ((await this.host.store.pool.get(this.poolKey)) !== undefined) return;
      if (this.isClosed() || this.logical !== "waiting") return; // matched meanwhile
      await this.enterPool(this.lastJoin, this.since, undefined, undefined, false);
    });
  }

  /** The partner's node stopped: tell the client, and end the room if it does not come back. */
  partnerLost(): void {
    const { partner, roomId } = this;
    if (this.lostRoom === roomId || partner === undefined || roomId === undefined) return;
    this.lostRoom = roomId;
    this.run(this.partnerMovedOrLost(partner, roomId));
  }

  /**
   * The node this session knows its partner on is dead. The address may just be stale (the
   * partner moved to another node, and the notice never reached this session's record): its
   * session record says where it lives now. Only if it is still on the dead node is it lost.
   */
  private async partnerMovedOrLost(partner: RoomMember, roomId: string): Promise<void> {
    const record = await this.host.store.sessions.get(partner.sessionId);
    if (this.roomId !== roomId || this.closed) return;
    if (record !== undefined && record.nodeId !== partner.nodeId) {
      if ((await this.host.store.nodes.alive([record.nodeId])).has(record.nodeId) && this.roomId === roomId) {
        this.partner = { ...partner, nodeId: record.nodeId };
        this.lostRoom = undefined;
        this.persist();
        return;
      }
    }
    this.emitOrKeep({ type: "partner_away", roomId });
    this.partnerLostTimer = setTimeout(() => {
      if (this.roomId !== roomId || this.closed) return;
      this.run(this.host.router.closeRoom(roomId, partner.sessionId, "disconnected"));
      // Its grace is over: the dead node's session ends like any other (no late resume).
      this.run(this.host.endOrphan(partner.sessionId, partner.nodeId));
    }, this.settings.limits.resumeGraceMs);
    this.partnerLostTimer.unref();
  }

  /** The partner this session is in a room with, if any. */
  currentPartner(): RoomMember | undefined {
    return this.logical === "room" ? this.partner : undefined;
  }

  private clearPartnerLost(): void {
    if (this.partnerLostTimer !== undefined) clearTimeout(this.partnerLostTimer);
    this.partnerLostTimer = undefined;
    this.lostRoom = undefined;
  }

  private answer(frame: ReplyFrame, reply: Reply | undefined): void {
    if (this.closed) return;
    if (reply !== undefined) reply(frame);
    else this.send(frame);
  }

  private send(frame: ServerFrame): void {
    const conn = this.conn;
    if (this.closed || conn === undefined) return;
    conn.send(frame);
    if (conn.bufferedAmount > this.settings.maxBufferedBytes) {
      this.run(this.terminate(CloseCode.Policy, "send buffer overflow: the client does not read"));
    }
  }

  /**
   * Ends the session: closes the connection (when `reason` is given, the server closes it with
   * `code`), leaves the pool or room (the partner gets `disconnected`), forgets the record.
   */
  async terminate(code: number | undefined, reason: string | undefined): Promise<void> {
    if (this.closed) return;
    // Bump the generation first: an adapter may report the close synchronously, and that
    // report must not be taken for a dropped connection.
    this.generation++;
    if (reason !== undefined && code !== undefined) this.conn?.close(code, reason);
    this.clearTimers();
    // Leaving takes the state synchronously; only then is the session marked closed.
    const leaving = this.leaveRoomOrPool("disconnected");
    this.closed = true;
    this.conn = undefined;
    this.held = undefined;
    this.host.forget(this);
    this.host.events.emit("sessionClosed", { ...this.info(), code });
    const cleanup = (async () => {
      await leaving;
      await this.outbox;
      // A session never saved has no record and no mailbox (it is saved before it can go away).
      if (this.persisted)
        await Promise.all([this.host.store.sessions.delete(this.id), this.host.store.mailbox.drain(this.id)]);
    })();
    // The hub's close waits for it: no store call outlives the hub.
    this.host.settle(cleanup);
    await cleanup;
  }

  /** The node halts (a crash, for tests): cut the connection, stop every timer, tell nobody. */
  halt(): void {
    this.clearTimers();
    this.closed = true;
    const conn = this.conn;
    this.conn = undefined;
    conn?.close(CloseCode.Internal, "node halted");
  }

  /**
   * Hands the session to another node (it resumed there): stops timers and forgets it here
   * without ending it. Resolves the state to carry over once the mailbox is written.
   */
  async release(): Promise<SessionSnapshot> {
    const wasLive = this.conn !== undefined;
    this.detach(CloseCode.Replaced, "session resumed by another connection");
    if (wasLive && this.logical === "waiting") await this.leavePool();
    this.clearTimers();
    this.closed = true;
    await this.outbox;
    return this.snapshot();
  }
}
