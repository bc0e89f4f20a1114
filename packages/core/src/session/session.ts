import type { Timer } from "../clock.js";
import type { Connection, Identity, Reply, SessionLink } from "../connection.js";
import { CloseCode } from "../errors.js";
import type { SessionInfo } from "../events.js";
import type { ReplyFrame, RoomFrame, ServerFrame } from "../protocol.js";
import { PROTOCOL_VERSION } from "../protocol.js";
import type { HubSettings } from "../settings.js";
import type { FrameMessage, RoomMember, SessionRecord, SessionSnapshot } from "../store.js";
import { Dispatcher, type DispatchOwner } from "./dispatch.js";
import type { SessionHost } from "./host.js";
import { Link, type LinkTarget } from "./link.js";
import { PlaceMachine, type PlaceOwner } from "./place.js";
import type { RelayQueue } from "./relay-queue.js";
import { RequestQueue } from "./requests.js";
import {
  AwayState,
  cursorHeld,
  cursorIn,
  missedMessages,
  storedTokenHash,
  type TokenHashes,
} from "./resume.js";

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

/** How a connection takes a session back (see {@link Session.attach}). */
export interface ResumeContext {
  /** The identity of the resuming connection (the hub checked it may resume). */
  by: Identity;
  /** For a session taken from another node: its hand-over (the snapshot, or `null`). */
  released?: Promise<SessionSnapshot | null>;
  /** The client's cursor: the last message it got (`<roomId>:<messageId>`, or `<roomId>:`). */
  lastSeen?: string;
}

/**
 * One client session on this node: the protocol's state machine (docs/design.md, "Sessions").
 * It owns the connection and the session's life (open, away, resumed, closed, handed over); its
 * requests, one at a time and in order, are its {@link Dispatcher}'s (whose {@link RelayQueue}
 * takes the chat messages), where the session is and how it moves is its {@link PlaceMachine},
 * and what it keeps while away is its {@link AwayState}.
 */
export class Session implements LinkTarget, PlaceOwner, DispatchOwner {
  /** Who the session is; a guest's name changes with `join`. */
  identity: Identity;
  /** The hash of the current resume token. */
  private hash: string;
  /**
   * The hash of the token of the last resume, while its client has sent nothing since: the
   * `welcome` with the current token may never have reached it (see {@link Session.takes}).
   */
  private previousHash: string | undefined;
  /** The address of the client's connection (trusted proxies applied); "" when unknown. */
  private peer = "";
  /**
   * Whether the session's record was ever saved. A fresh session is saved on its first state
   * change (or drop), so idle connections cost no store write and no stored record.
   */
  persisted = false;
  private closed = false;
  private conn: Connection | undefined;
  /** Bumped on every attach, so a replaced connection's late events are ignored. */
  private generation = 0;
  private tokenTimer: Timer | undefined;
  private readonly settings: HubSettings;
  /** Where the session is, and every move. */
  private readonly place: PlaceMachine;
  /** Requests run one at a time, in order. */
  private readonly requests: RequestQueue;
  /** From a client frame to its answer. */
  private readonly dispatch: Dispatcher;
  /** Chat messages on their way to the store and the partner (the dispatch's). */
  private readonly relay: RelayQueue;
  private readonly away: AwayState;

  constructor(
    private readonly host: SessionHost,
    identity: Identity,
    readonly id: string,
    tokenHash: string,
  ) {
    this.settings = host.settings;
    this.identity = identity;
    this.hash = tokenHash;
    this.place = new PlaceMachine(host, this);
    this.requests = new RequestQueue(this);
    this.dispatch = new Dispatcher(host, this, this.place, this.requests);
    this.relay = this.dispatch.relay;
    this.away = new AwayState(host, id);
  }

  /** A session rebuilt from its stored record, on the node where it resumes. */
  static fromRecord(host: SessionHost, record: SessionRecord, hashes: TokenHashes): Session {
    const s = new Session(
      host,
      { userId: record.userId, name: record.name, roles: record.roles, guest: record.guest },
      record.sessionId,
      hashes.current,
    );
    s.previousHash = hashes.previous;
    if (record.expiresAt !== undefined) s.identity.expiresAt = record.expiresAt;
    s.persisted = true;
    s.place.restore(record);
    return s;
  }

  get state(): SessionState {
    if (this.closed) return "closed";
    if (this.conn === undefined) return "away";
    return this.place.current.kind;
  }

  /** Whether the session ended (a method, so that checks after an `await` are not narrowed away). */
  isClosed(): boolean {
    return this.closed;
  }

  /** The address of the client's connection (trusted proxies applied); "" when unknown. */
  get address(): string {
    return this.peer;
  }

  /** The hashes of the current token and of the one still taken (see {@link Session.takes}). */
  tokenHashes(): TokenHashes {
    return { current: this.hash, previous: this.previousHash };
  }

  /**
   * Whether a resume with the token of this hash may take the session: the current token, or the
   * one of the last resume while the session has no connection and its client sent nothing since
   * that resume (its `welcome`, with the current token, may have been lost).
   */
  takes(tokenHash: string): boolean {
    return tokenHash === this.hash || (tokenHash === this.previousHash && this.conn === undefined);
  }

  /**
   * A resume was admitted: the session's token is now the one with `hashes.current` (single use),
   * and the one the client resumed with (`hashes.previous`) is still taken until it shows it got
   * the new one.
   */
  reissue(hashes: TokenHashes): void {
    this.hash = hashes.current;
    this.previousHash = hashes.previous;
  }

  /** Whether a connection is attached. */
  isLive(): boolean {
    return this.conn !== undefined;
  }

  info(): SessionInfo {
    return { sessionId: this.id, identity: this.identity };
  }

  userId(): string {
    return this.identity.userId;
  }

  rename(name: string): void {
    if (this.identity.guest === true) this.identity = { ...this.identity, name };
  }

  snapshot(): SessionSnapshot {
    return this.place.snapshot();
  }

  /** The room this session is in, if any. */
  roomId(): string | undefined {
    return this.place.room()?.roomId;
  }

  /** The partner this session is in a room with, if any. */
  currentPartner(): RoomMember | undefined {
    return this.place.room()?.partner;
  }

  /** The partner's node `deadNode` stopped (see {@link PlaceMachine.partnerLost}). */
  partnerLost(deadNode: string): void {
    this.place.partnerLost(deadNode);
  }

  record(): SessionRecord {
    const record: SessionRecord = {
      sessionId: this.id,
      nodeId: this.host.nodeId,
      userId: this.identity.userId,
      name: this.identity.name,
      roles: this.identity.roles,
      guest: this.identity.guest === true,
      tokenHash: storedTokenHash(this.tokenHashes()),
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
    this.host.store.sessions.put(this.record(), ttl).catch((error) => this.reportError(error));
  }

  /**
   * The store may have lost what this session keeps there: the record is saved again and the
   * place puts back what is missing (see {@link PlaceMachine.reconcile}). Frames kept for an away
   * session in a lost mailbox are gone.
   */
  reconcile(): void {
    this.requests.schedule(async () => {
      if (this.closed) return;
      if (this.persisted) this.persist();
      await this.place.reconcile();
    });
  }

  /**
   * The periodic check (`auditIntervalMs`): whether the store still has this session's pool
   * entry or room, and its record; what is missing is put back (see {@link Session.reconcile}).
   */
  audit(): void {
    this.requests.schedule(async () => {
      if (this.closed) return;
      if (this.persisted && (await this.host.store.sessions.get(this.id)) === undefined) this.persist();
      if (!this.closed) await this.place.reconcile();
    });
  }

  // ------------------------------------------------------------------------------------------
  // Connections

  /**
   * Binds a connection to the session and sends `welcome` with a fresh resume token. With
   * `resumed`, the frames missed while away are replayed before anything else.
   */
  attach(conn: Connection, address: string, resumeToken: string, resume?: ResumeContext): SessionLink {
    const generation = ++this.generation;
    this.peer = address;
    const by = resume?.by;
    if (by !== undefined && by.guest !== true && by.expiresAt !== undefined) {
      // The resuming connection's own credential decides when the session expires (the hub
      // checked it names the same user); without an expiry the stored one stays.
      this.identity = { ...this.identity, expiresAt: by.expiresAt };
    }
    this.conn = conn;
    this.away.clearGrace();
    conn.send({
      type: "welcome",
      sessionId: this.id,
      resumeToken,
      protocol: PROTOCOL_VERSION,
      user: { userId: this.identity.userId, name: this.identity.name },
      resumed: resume !== undefined,
      limits: this.settings.limits,
    });
    if (resume !== undefined) {
      this.away.hold();
      this.requests.schedule(() => this.replay(resume));
    }
    this.armTokenExpiry();
    return new Link(this, generation);
  }

  /** A frame (or a binary-frame error) from the connection of `generation` (see {@link Link}). */
  inbound(generation: number, input: unknown, reply: Reply | undefined): void {
    if (generation !== this.generation || this.closed) return;
    if (this.previousHash !== undefined) this.tokenConfirmed();
    this.dispatch.enqueue(input, reply);
  }

  /**
   * The client sent a frame on the connection its resume opened: it got the `welcome` with the
   * new token, and the token it resumed with is no longer taken, here and (saved after the
   * replay) in the record.
   */
  private tokenConfirmed(): void {
    this.previousHash = undefined;
    if (!this.persisted) return;
    this.requests.schedule(async () => {
      if (!this.closed && this.previousHash === undefined) this.persist();
    });
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
  resumeAbandoned(freshHash: string, before: TokenHashes): void {
    if (this.closed || this.hash !== freshHash) return;
    this.reissue(before);
    if (this.persisted) this.persist();
  }

  /** The transport closed. A normal close (1000) ends the session; anything else makes it away. */
  private dropped(code: number | undefined): void {
    if (this.closed) return;
    if (code === CloseCode.Normal || this.settings.limits.resumeGraceMs === 0) {
      // The requests that arrived before the close are handled first: a message sent right
      // before a normal close is still delivered.
      this.run(this.requests.tail.then(() => this.terminate(code, undefined)));
      return;
    }
    this.conn = undefined;
    this.generation++;
    this.goAwayQuietly();
    this.host.events.emit("sessionAway", this.info());
    this.run(this.leaveForAWhile());
  }

  /** Starts the resume grace, and nothing else (a session adopted for a resume). */
  goAwayQuietly(): void {
    this.away.startGrace(() => this.run(this.expire()));
  }

  /** The node restarts: the session stays resumable elsewhere; this node keeps no timer for it. */
  async drainForRestart(): Promise<void> {
    this.clearTimers();
    await this.leaveForAWhile();
    await this.away.flushed();
  }

  /** Saved for the resume; out of the pool, and the partner told `partner_away`. */
  private async leaveForAWhile(): Promise<void> {
    this.persist();
    await this.place.goAway();
  }

  private async expire(): Promise<void> {
    if (this.closed || this.conn !== undefined) return;
    this.host.events.emit("resume", { ...this.info(), ok: false });
    await this.terminate(undefined, undefined);
  }

  /** Stops the timers that only matter while the session lives here. */
  private clearTimers(): void {
    this.away.clearGrace();
    this.place.clearTimers();
    this.tokenTimer?.cancel();
    this.tokenTimer = undefined;
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
      if (snap !== null) this.place.restore(snap);
      else moved = true; // the old node is gone: the partner must learn our new address
    }
    await this.away.flushed(); // frames kept while away are all in the mailbox before it is read
    const missed = await this.host.store.mailbox.drain(this.id);
    // A message replayed from the history may still be on its way here by its route (routed to
    // the old node, then found here): it must not be delivered a second time when it arrives.
    const { sent, settled } = await this.replayHistory(resume.lastSeen, resume.released !== undefined);
    this.away.replayedFromHistory(sent);
    for (const frame of missed) {
      // Every message in the mailbox was stored in the room's history before it was pushed, so
      // before the history was read: when the history holds the cursor, the client has it or it
      // was just replayed. Such a frame is not always one this resume replayed: a sender's node
      // that still took the session for away pushes it after an earlier resume drained the
      // mailbox (that resume replayed it from the history), and it waits for the next resume.
      if (frame.type === "message" && frame.roomId === settled) continue;
      if (!this.away.duplicate(frame) && this.place.apply(frame, undefined, true)) this.send(frame);
    }
    for (const message of this.away.release()) {
      if (!this.away.duplicate(message.frame)) await this.deliver(message);
    }
    if (this.closed) return;
    this.host.events.emit("resume", { ...this.info(), ok: true });
    await this.place.comeBack(moved ? this.member() : undefined);
  }

  /**
   * Sends the partner's messages of the current room that come after the client's cursor, from
   * the room's history (see {@link missedMessages}); after a move to another node, also learns
   * the acks of this session's own messages there. Resolves the ids it sent and, when the history
   * holds the cursor (see {@link cursorHeld}), the room whose earlier messages are all settled.
   */
  private async replayHistory(
    lastSeen: string | undefined,
    moved: boolean,
  ): Promise<{ sent: Set<string>; settled?: string }> {
    const sent = new Set<string>();
    const room = this.place.room();
    if (room === undefined) return { sent };
    const { roomId, partner } = room;
    if (!cursorIn(lastSeen, roomId) && !moved) return { sent };
    const history = await this.host.store.rooms.history(roomId);
    this.relay.rememberFrom(history);
    for (const m of missedMessages(history, lastSeen, roomId, partner.sessionId) ?? []) {
      sent.add(m.messageId);
      this.send({ type: "message", roomId, messageId: m.messageId, text: m.text, ts: m.ts });
    }
    return cursorHeld(history, lastSeen, roomId) ? { sent, settled: roomId } : { sent };
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
  // The session's work (requests themselves are its Dispatcher's)

  /** Runs a background task; its failure is reported. */
  run(work: Promise<unknown>): void {
    work.catch((error) => this.reportError(error));
  }

  /** A failure inside the session, for the hub's `error` event. */
  reportError(error: unknown): void {
    this.host.events.emit("error", { error, sessionId: this.id });
  }

  schedule(task: () => Promise<void>): void {
    this.requests.schedule(task);
  }

  relayed(): Promise<void> {
    return this.relay.relayed();
  }

  /** `auth` checked a fresh credential: the session expires with it, here and in its record. */
  credentialRefreshed(refreshed: Identity): void {
    this.identity = { ...this.identity, expiresAt: refreshed.expiresAt };
    this.armTokenExpiry();
    if (this.persisted) this.persist(); // a resume elsewhere keeps the new expiry
  }

  /** Closes the session with 4401 when its credential expires, unless refreshed with `auth`. */
  private armTokenExpiry(): void {
    this.tokenTimer?.cancel();
    this.tokenTimer = undefined;
    const at = this.identity.expiresAt;
    if (at === undefined || this.closed) return;
    // A clock may cap long delays (the system clock's timers hold ~24.8 days): re-armed if early.
    this.tokenTimer = this.settings.clock.after(Math.max(0, at - this.settings.now()), () => {
      if (this.identity.expiresAt !== undefined && this.identity.expiresAt <= this.settings.now()) {
        this.run(this.terminate(CloseCode.TokenExpired, "token expired"));
      } else this.armTokenExpiry();
    });
  }

  // ------------------------------------------------------------------------------------------
  // Outbound

  /**
   * A room frame routed to this session (from its partner, or from a match). Resolves once the
   * frame was written to the connection or, while away, stored in the mailbox for the resume.
   */
  async deliver(message: FrameMessage): Promise<void> {
    if (this.away.holdIfResuming(message) || this.away.duplicate(message.frame)) return;
    if (this.place.apply(message.frame, message, false)) this.keep(message.frame);
  }

  /** Sends a room frame, or while away keeps it in the mailbox (in order). */
  keep(frame: RoomFrame): void {
    if (this.conn !== undefined) this.send(frame);
    else this.away.keep(frame);
  }

  answer(frame: ReplyFrame, reply: Reply | undefined): void {
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

  // ------------------------------------------------------------------------------------------
  // The end

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
    const leaving = this.place.leave("disconnected");
    this.closed = true;
    this.conn = undefined;
    this.away.release();
    this.host.forget(this);
    this.host.events.emit("sessionClosed", { ...this.info(), code });
    const cleanup = (async () => {
      await leaving;
      await this.away.flushed();
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
    this.clearTimers();
    await this.place.handOver(wasLive);
    this.closed = true;
    await this.away.flushed();
    return this.snapshot();
  }
}
