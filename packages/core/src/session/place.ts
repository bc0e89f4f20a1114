import type { Timer } from "../clock.js";
import type { Identity, Reply } from "../connection.js";
import { WhisperError } from "../errors.js";
import type { SessionInfo } from "../events.js";
import { poolKeyOf } from "../matchmaking.js";
import { addressBucketKey } from "../privacy.js";
import type { ReplyFrame, RoomFrame } from "../protocol.js";
import type { HubSettings } from "../settings.js";
import type { FrameMessage, JoinParams, PoolEntry, RoomMember, SessionSnapshot } from "../store.js";
import { withId } from "./frames.js";
import type { SessionHost } from "./host.js";

/**
 * Where a session is: idle, waiting in the pool, or in a room. `join` is the last point and range
 * it joined with (what `next` and `block` rejoin with); `since` is when it started waiting.
 */
export type Place =
  | { readonly kind: "idle"; readonly join: JoinParams | undefined; readonly since: number }
  | { readonly kind: "waiting"; readonly join: JoinParams; readonly since: number }
  | {
      readonly kind: "room";
      readonly roomId: string;
      readonly partner: RoomMember;
      readonly join: JoinParams | undefined;
      readonly since: number;
    };

/** A session in a room. */
export type InRoom = Extract<Place, { kind: "room" }>;

/** A fresh session's place. */
const NOWHERE: Place = { kind: "idle", join: undefined, since: 0 };

/** The place saved in a session record. */
export function snapshotOf(place: Place): SessionSnapshot {
  const snap: SessionSnapshot = { state: place.kind, since: place.since };
  if (place.kind === "room") {
    snap.roomId = place.roomId;
    snap.partner = place.partner;
  }
  if (place.join !== undefined) snap.lastJoin = place.join;
  return snap;
}

/** The place a session record describes (a room or wait it cannot describe fully is idle). */
export function placeOf(snap: SessionSnapshot): Place {
  const since = snap.since ?? 0;
  const join = snap.lastJoin;
  if (snap.state === "room" && snap.roomId !== undefined && snap.partner !== undefined)
    return { kind: "room", roomId: snap.roomId, partner: snap.partner, join, since };
  if (snap.state === "waiting" && join !== undefined) return { kind: "waiting", join, since };
  return { kind: "idle", join, since };
}

/** How long a refused message waits for the `partner_left` that explains it (see `checkRoomSoon`). */
const ROOM_CHECK_DELAY_MS = 1000;

/** What the place of a session needs from the session. */
export interface PlaceOwner {
  readonly id: string;
  readonly identity: Identity;
  /** A guest's new display name (ignored for registered users). */
  rename(name: string): void;
  /** The client's address (trusted proxies applied); "" when unknown. */
  readonly address: string;
  isClosed(): boolean;
  /** Whether a connection is attached (not away). */
  isLive(): boolean;
  info(): SessionInfo;
  /** Answers a request. */
  answer(frame: ReplyFrame, reply: Reply | undefined): void;
  /** Sends a room frame, or while away keeps it for the resume. */
  keep(frame: RoomFrame): void;
  /** Saves the session record. */
  persist(): void;
  /** Runs a task in the session's request order. */
  schedule(task: () => Promise<void>): void;
  /** Resolves once the session's queued chat messages were stored and answered. */
  relayed(): Promise<void>;
  /** Reports a background task's failure. */
  run(work: Promise<unknown>): void;
}

/**
 * The place of one session and every move between places: `join`, `next`, `block` and `leave`,
 * the pool entry, `matched` and the room frames that change the place, and what happens when the
 * store loses a room or the partner's node dies (docs/design.md, "Sessions").
 */
export class PlaceMachine {
  private place: Place = NOWHERE;
  /** Whether this session added its current pool entry and has not taken it out since. */
  private inPool = false;
  /** The key of this session's current pool entry (see `poolKeyOf`). */
  private poolKey = "";
  private poolVersion = 0;
  /** Rooms that closed while this session was waiting for their `matched` (see `matched`). */
  private abandoned: string[] | undefined;
  /** A pending {@link PlaceMachine.searchAgainLater}. */
  private searchTimer: Timer | undefined;
  /** A pending {@link PlaceMachine.checkRoomSoon}. */
  private roomCheck: Timer | undefined;
  private partnerLostTimer: Timer | undefined;
  /** The room whose partner's node was seen dead (told once). */
  private lostRoom: string | undefined;
  private readonly settings: HubSettings;

  constructor(
    private readonly host: SessionHost,
    private readonly owner: PlaceOwner,
  ) {
    this.settings = host.settings;
  }

  /** Where the session is. */
  get current(): Place {
    return this.place;
  }

  /** The room the session is in, if any. */
  room(): InRoom | undefined {
    return this.place.kind === "room" ? this.place : undefined;
  }

  /** Takes the place of a session record (a session rebuilt or handed over here). */
  restore(snap: SessionSnapshot): void {
    this.place = placeOf(snap);
  }

  snapshot(): SessionSnapshot {
    return snapshotOf(this.place);
  }

  // ------------------------------------------------------------------------------------------
  // Requests

  /**
   * `join`: enters the pool, or moves the session's entry to a new point and range. A guest may
   * take a new display name with it.
   */
  async join(
    params: JoinParams,
    name: string | undefined,
    id: string | undefined,
    reply: Reply | undefined,
  ): Promise<void> {
    await this.churn();
    // Checked after the await: a match may have landed meanwhile.
    const place = this.place;
    if (place.kind === "room")
      throw new WhisperError("in_room", "you are in a room: send `next` or `leave` first");
    if (name !== undefined) this.owner.rename(name);
    if (place.kind === "waiting") {
      // An update: take the entry out first; if it is already gone, we were just claimed.
      if (!(await this.leavePool()))
        throw new WhisperError("in_room", "you were just matched: a `matched` frame is on its way");
      await this.enterPool(params, place.since, id, reply, true);
      return;
    }
    await this.enterPool(params, this.settings.now(), id, reply, true);
  }

  /** `next`: leaves the room (the two are kept apart for the cooldown) and waits again. */
  async next(id: string | undefined, reply: Reply | undefined): Promise<void> {
    const place = this.place;
    if (place.kind === "waiting") {
      this.owner.answer(withId({ type: "waiting", since: place.since }, id), reply);
      return;
    }
    const params = place.join;
    if (params === undefined)
      throw new WhisperError("not_in_room", "nothing to go next from: send `join` first");
    await this.churn();
    const room = this.room();
    if (room !== undefined) {
      await this.host.store.exclusions.add(
        this.owner.identity.userId,
        room.partner.userId,
        this.settings.nextCooldownMs,
      );
      await this.leave("next");
      // When the cooldown ends the two may be eligible again: look again then.
      this.searchAgainLater(this.settings.nextCooldownMs + 1);
    }
    await this.enterPool(params, this.settings.now(), id, reply, true);
  }

  /** `block`: keeps the partner away for good (a guest: for a session's lifetime) and waits again. */
  async block(reason: string | undefined, id: string | undefined, reply: Reply | undefined): Promise<void> {
    const room = this.room();
    const params = room?.join;
    if (room === undefined || params === undefined) {
      throw new WhisperError("not_in_room", "there is nobody to block: you are not in a room");
    }
    await this.churn(); // like `next`: it rejoins the pool
    const { partner, roomId } = room;
    const { identity } = this.owner;
    // A block is forever, but a guest's user id lives only as long as its session: a block that
    // involves a guest lasts as long as a session record can (`sessionRecordTtlMs`).
    const guestInvolved =
      identity.guest === true || (await this.host.store.sessions.get(partner.sessionId))?.guest === true;
    await this.host.store.exclusions.add(
      identity.userId,
      partner.userId,
      guestInvolved ? this.settings.sessionRecordTtlMs : undefined,
    );
    this.host.events.emit("blocked", {
      ...this.owner.info(),
      roomId,
      blockedUserId: partner.userId,
      reason,
    });
    await this.leave("left", "blocked");
    await this.enterPool(params, this.settings.now(), id, reply, true);
  }

  /** Leaves the room (telling the partner `reason`) or the pool; the session becomes idle. */
  async leave(
    reason: "left" | "next" | "disconnected",
    event: "left" | "next" | "disconnected" | "blocked" = reason,
  ): Promise<void> {
    const place = this.place;
    if (place.kind === "idle") return; // nothing to leave, nothing to save
    this.becomeIdle();
    if (place.kind === "waiting") {
      await this.leavePool();
    } else {
      const { roomId } = place;
      this.host.events.emit("left", { ...this.owner.info(), roomId, reason: event });
      // Messages accepted before leaving (say, right before a normal close) go out first.
      await this.owner.relayed();
      await this.host.router.closeRoom(roomId, this.owner.id, reason);
    }
    this.owner.persist();
  }

  /** The `typing` frame to the partner (best effort: nothing outside a room). */
  async typing(active: boolean): Promise<void> {
    const room = this.room();
    if (room === undefined) return;
    await this.host.router.route(room.partner, {
      to: room.partner.sessionId,
      roomId: room.roomId,
      frame: { type: "typing", active },
    });
  }

  // ------------------------------------------------------------------------------------------
  // Away and back

  /** The connection dropped: out of the pool, and the partner is told `partner_away`. */
  async goAway(): Promise<void> {
    const place = this.place;
    if (place.kind === "waiting") await this.leavePool();
    if (place.kind === "room") await this.tellPartner(place, { type: "partner_away", roomId: place.roomId });
  }

  /**
   * Back after a resume: the partner is told `partner_back` (with the new address when the
   * session moved to this node), and a waiting session rejoins the pool with its place in the
   * queue. A session taken over while live and waiting still has its pool entry: it keeps it (a
   * second entry would let two users match it at once).
   */
  async comeBack(moved: RoomMember | undefined): Promise<void> {
    const place = this.place;
    if (place.kind === "room") {
      const back: FrameMessage = {
        to: place.partner.sessionId,
        roomId: place.roomId,
        frame: { type: "partner_back", roomId: place.roomId },
      };
      if (moved !== undefined) back.partner = moved;
      await this.host.router.route(place.partner, back);
    }
    this.owner.persist();
    if (this.place.kind === "waiting" && !this.inPool) await this.rejoin();
  }

  /** Stops here without ending (handed to another node): a live waiting session leaves the pool. */
  async handOver(wasLive: boolean): Promise<void> {
    this.clearTimers();
    if (wasLive && this.place.kind === "waiting") await this.leavePool();
  }

  /** Stops the timers that only matter while the session lives on this node. */
  clearTimers(): void {
    this.clearPartnerLost();
    this.searchTimer?.cancel();
    this.searchTimer = undefined;
    this.roomCheck?.cancel();
    this.roomCheck = undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Room frames routed to the session

  /**
   * Applies a room frame to the place. Resolves whether the client gets it: a frame of a room
   * the session is no longer in is dropped. `replaying` frames come from the mailbox on a
   * resume; they were applied when they arrived.
   */
  apply(frame: RoomFrame, message: FrameMessage | undefined, replaying: boolean): boolean {
    if (frame.type === "matched") return replaying || this.matched(frame.roomId, message?.partner);
    const roomId = message?.roomId ?? ("roomId" in frame ? frame.roomId : this.room()?.roomId);
    const room = this.room();
    if (!replaying && (this.owner.isClosed() || room === undefined || room.roomId !== roomId)) {
      if (frame.type === "partner_left" && this.place.kind === "waiting" && roomId !== undefined) {
        // A room we were claimed into closed before its `matched` arrived (frames from two
        // nodes need not arrive in order): remember it, so that `matched` is not taken.
        this.abandoned ??= [];
        this.abandoned.push(roomId);
        if (this.abandoned.length > 8) this.abandoned.shift();
      }
      return false;
    }
    if (frame.type === "partner_left") {
      this.becomeIdle();
      this.owner.persist();
    } else if (frame.type === "partner_back") {
      this.clearPartnerLost();
      if (message?.partner !== undefined && room !== undefined) {
        // The partner moved to another node: saved at once, so that a resume of this session on
        // yet another node (after this node dies) routes to where the partner is, not was.
        this.place = { ...room, partner: message.partner };
        this.owner.persist();
      }
      const current = this.room();
      if (!replaying && !this.owner.isLive() && current !== undefined) {
        // Back while this session is away: the `partner_away` it was sent may have been lost
        // with its connection (both dropped at once), so it is told again.
        this.owner.run(this.tellPartner(current, { type: "partner_away", roomId: current.roomId }));
      }
    } else if (frame.type === "typing" && !this.owner.isLive()) {
      return false; // not worth keeping
    }
    return true;
  }

  /** `matched` arrived: the session enters the room, or undoes it if it is no longer waiting. */
  private matched(roomId: string, partner: RoomMember | undefined): boolean {
    const place = this.place;
    const closed = this.owner.isClosed();
    const abandoned = this.abandoned?.indexOf(roomId) ?? -1;
    if (abandoned >= 0 && place.kind === "waiting" && !closed) {
      // The room closed before its `matched` reached us: we were claimed out of the pool for
      // nothing. Go back in (same place in the queue) and search again.
      this.abandoned?.splice(abandoned, 1);
      this.owner.schedule(() => this.rejoin());
      return false;
    }
    if (closed || place.kind !== "waiting" || partner === undefined) {
      // We left the pool (or closed) after being claimed: undo the room for the partner.
      this.owner.run(this.host.router.closeRoom(roomId, this.owner.id, closed ? "disconnected" : "left"));
      return false;
    }
    const room: InRoom = { kind: "room", roomId, partner, join: place.join, since: place.since };
    this.place = room;
    this.inPool = false; // the claim took the entry out
    this.owner.persist();
    // Matched while away: the partner learns at once that we are away.
    if (!this.owner.isLive()) this.owner.run(this.tellPartner(room, { type: "partner_away", roomId }));
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Lost rooms, lost partners, lost stores

  /**
   * The store refused a message because the room is gone. Usually the partner just left and
   * `partner_left` is on its way; if it has not come after a moment and the room is still gone,
   * the store lost it (e.g. Redis restarted empty): see {@link PlaceMachine.roomLost}.
   */
  checkRoomSoon(roomId: string): void {
    if (this.roomCheck !== undefined) return;
    this.roomCheck = this.settings.clock.after(ROOM_CHECK_DELAY_MS, () => {
      this.roomCheck = undefined;
      this.owner.schedule(() => this.checkRoom(roomId));
    });
  }

  /**
   * The store may have lost what this session keeps there (it restarted empty, or failed over to
   * an empty replica), or the other nodes took this node for dead (it was frozen) and dropped its
   * pool entries and closed its rooms: put back what is missing. A waiting session goes back in
   * the pool (same place in the queue) and searches again, and a room the store no longer has
   * ends with `lost` for both members.
   */
  async reconcile(): Promise<void> {
    const place = this.place;
    if (place.kind === "room") {
      await this.checkRoom(place.roomId);
      return;
    }
    if (place.kind !== "waiting" || !this.owner.isLive()) return;
    if ((await this.host.store.pool.get(this.poolKey)) !== undefined) return;
    if (this.owner.isClosed() || this.place !== place) return; // matched or moved meanwhile
    await this.rejoin();
  }

  /**
   * The partner's node `deadNode` stopped: tell the client, and end the room if the partner does
   * not come back. Nothing happens if the partner is no longer known on that node: the heartbeat
   * tick saw the address before its store calls, and a `partner_back` with a new address may have
   * come meanwhile (taking the new, live node for dead would tell a false `partner_away`, and the
   * room marked lost would leave the new node's real death untold).
   */
  partnerLost(deadNode: string): void {
    const room = this.room();
    if (room === undefined || room.partner.nodeId !== deadNode || this.lostRoom === room.roomId) return;
    this.lostRoom = room.roomId;
    this.owner.run(this.partnerMovedOrLost(room));
  }

  /** Ends the room with `lost` if this session is still in it and the store no longer has it. */
  private async checkRoom(roomId: string): Promise<void> {
    if (this.owner.isClosed() || this.room()?.roomId !== roomId) return;
    if ((await this.host.store.rooms.get(roomId)) === undefined) await this.roomLost(roomId);
  }

  /**
   * The store lost the room this session is in: both members are told `partner_left` with reason
   * `lost` and are idle (the partner's node may learn it from either side; the second notice
   * finds it idle and is dropped).
   */
  private async roomLost(roomId: string): Promise<void> {
    const room = this.room();
    if (this.owner.isClosed() || room === undefined || room.roomId !== roomId) return;
    this.becomeIdle();
    this.host.events.emit("left", { ...this.owner.info(), roomId, reason: "lost" });
    this.owner.persist();
    this.owner.keep({ type: "partner_left", roomId, reason: "lost" });
    await this.tellPartner(room, { type: "partner_left", roomId, reason: "lost" });
  }

  /**
   * The node this session knows its partner on is dead. The address may just be stale (the
   * partner moved to another node, and the notice never reached this session's record): its
   * session record says where it lives now. Only if it is still on the dead node is it lost.
   */
  private async partnerMovedOrLost(room: InRoom): Promise<void> {
    const { partner, roomId } = room;
    // Still in the room, with the partner at the same address: a `partner_back` that came during
    // a store call (the partner resumed elsewhere) has settled it.
    const still = () => {
      const now = this.room();
      return !this.owner.isClosed() && now?.roomId === roomId && now.partner.nodeId === partner.nodeId;
    };
    const record = await this.host.store.sessions.get(partner.sessionId);
    if (!still()) return;
    if (record !== undefined && record.nodeId !== partner.nodeId) {
      const alive = (await this.host.store.nodes.alive([record.nodeId])).has(record.nodeId);
      if (!still()) return;
      if (alive) {
        this.place = { ...(this.room() as InRoom), partner: { ...partner, nodeId: record.nodeId } };
        this.lostRoom = undefined;
        this.owner.persist();
        return;
      }
    }
    this.owner.keep({ type: "partner_away", roomId });
    // The node the partner was on when it went away: its record's, which may be newer than the
    // address this session knew (the partner moved while this session was away, and then its new
    // node died too). The grace counts from when that node stopped, not from when this node
    // noticed: a session that moved to another node (its own node died too) does not restart it.
    const lostOn = record?.nodeId ?? partner.nodeId;
    const stopped = (await this.host.store.nodes.deadSince([lostOn])).get(lostOn);
    if (!still()) return;
    const grace = this.settings.limits.resumeGraceMs;
    const left = stopped === undefined ? grace : Math.max(0, stopped + grace - this.settings.now());
    this.partnerLostTimer?.cancel();
    this.partnerLostTimer = this.settings.clock.after(left, () => {
      if (!still()) return;
      this.owner.run(this.host.router.closeRoom(roomId, partner.sessionId, "disconnected"));
      // Its grace is over: the dead node's session ends like any other (no late resume).
      this.owner.run(this.host.endOrphan(partner.sessionId, lostOn));
    });
  }

  // ------------------------------------------------------------------------------------------
  // The pool

  /** Puts the session in the pool (a new entry), answers `waiting`, then searches a partner. */
  private async enterPool(
    params: JoinParams,
    since: number,
    id: string | undefined,
    reply: Reply | undefined,
    answer: boolean,
  ): Promise<void> {
    const { owner } = this;
    if (owner.isClosed()) return;
    const place: Place = { kind: "waiting", join: params, since };
    this.place = place;
    // A fresh pool key per entry: a claim aimed at an entry this session has since replaced
    // (a location update racing with someone's search) finds nothing and fails.
    this.poolVersion++;
    this.poolKey = poolKeyOf(owner.id, this.poolVersion);
    const entry: PoolEntry = {
      sessionId: this.poolKey,
      userId: owner.identity.userId,
      nodeId: this.host.nodeId,
      name: owner.identity.name,
      lat: params.lat,
      lng: params.lng,
      rangeKm: params.rangeKm,
      since,
    };
    await this.host.store.pool.add(entry);
    this.inPool = true;
    if (owner.isClosed() || !owner.isLive()) {
      // The connection closed while the entry was being added: take it back out.
      await this.leavePool();
      return;
    }
    if (answer) {
      owner.answer(withId({ type: "waiting", since }, id), reply);
      if (this.host.events.listenerCount("waiting") > 0)
        this.host.events.emit("waiting", { ...owner.info(), since });
    }
    owner.persist();
    // Insert, then search: the answer `waiting` always precedes `matched`.
    if (this.place === place) await this.search(entry);
  }

  /** A waiting session's entry is missing: a new one, with the same place in the queue. */
  private async rejoin(): Promise<void> {
    const place = this.place;
    if (place.kind === "waiting") await this.enterPool(place.join, place.since, undefined, undefined, false);
  }

  /** Takes this session's entry out of the pool. Resolves `false` if it was already claimed. */
  private leavePool(): Promise<boolean> {
    this.inPool = false;
    return this.host.store.pool.remove(this.poolKey);
  }

  /** Searches a partner for this session's pool entry. */
  private async search(entry: PoolEntry): Promise<void> {
    // A candidate's node looked silent but is not confirmed dead: look again once it had time
    // to heartbeat, so an eligible pair is not left waiting.
    if ((await this.host.match(entry, this.owner.info())) === "later")
      this.searchAgainLater(this.settings.nodeHeartbeatMs);
  }

  /** Runs the pool search again after `delayMs`, if the session is still waiting by then. */
  private searchAgainLater(delayMs: number): void {
    this.searchTimer?.cancel();
    this.searchTimer = this.settings.clock.after(delayMs, () => {
      this.searchTimer = undefined;
      this.owner.schedule(async () => {
        if (this.owner.isClosed() || !this.owner.isLive() || this.place.kind !== "waiting") return;
        const entry = await this.host.store.pool.get(this.poolKey);
        if (entry !== undefined) await this.search(entry);
      });
    });
  }

  /** `join`, `next` and `block` pass the user's bucket (and a guest's address's bucket). */
  private async churn(): Promise<void> {
    const { identity, address, id } = this.owner;
    const { limiter } = this.host.store;
    let limit = await limiter.consume(`churn:${identity.userId}`, this.settings.churnRate, 1);
    if (limit.allowed && identity.guest === true && address !== "") {
      // Guests also share a bucket per address: each throwaway connection is a new user.
      const key = `churnaddr:${addressBucketKey(address)}`; // an IPv6 address: its /64
      limit = await limiter.consume(key, this.settings.guestChurnPerAddress, 1);
    }
    if (!limit.allowed) {
      this.host.counters.limit("churn", id);
      throw new WhisperError("rate_limited", "you are joining and skipping too fast", {
        retryAfterMs: limit.retryAfterMs,
      });
    }
  }

  private becomeIdle(): void {
    this.place = { kind: "idle", join: this.place.join, since: this.place.since };
    this.clearPartnerLost();
  }

  private async tellPartner(
    room: InRoom,
    frame: RoomFrame & { type: "partner_away" | "partner_left" },
  ): Promise<void> {
    await this.host.router.route(room.partner, { to: room.partner.sessionId, roomId: room.roomId, frame });
  }

  private clearPartnerLost(): void {
    this.partnerLostTimer?.cancel();
    this.partnerLostTimer = undefined;
    this.lostRoom = undefined;
  }
}
