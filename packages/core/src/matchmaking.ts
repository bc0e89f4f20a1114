import type { EventEmitter } from "eventemitter3";
import type { HubEvents, SessionInfo } from "./events.js";
import { randomId } from "./ids.js";
import type { Liveness } from "./liveness.js";
import { searchAndClaim } from "./matcher.js";
import type { Router } from "./router.js";
import type { HubSettings } from "./settings.js";
import type { PoolEntry, RoomMember, RoomRecord, Store } from "./store.js";

/** Separates a session id from the version in a pool key; never part of a session id. */
const POOL_KEY_SEPARATOR = "~";

/**
 * The pool key of a session's `version`-th entry. A fresh key per entry: a claim aimed at an
 * entry the session has since replaced (a location update racing with someone's search) finds
 * nothing and fails.
 */
export function poolKeyOf(sessionId: string, version: number): string {
  return `${sessionId}${POOL_KEY_SEPARATOR}${version.toString(36)}`;
}

/** The session id behind a pool key. */
export function sessionOfPoolKey(poolKey: string): string {
  const i = poolKey.lastIndexOf(POOL_KEY_SEPARATOR);
  return i < 0 ? poolKey : poolKey.slice(0, i);
}

/**
 * What a search found: a pair (both were told `matched`), nobody, or nobody yet because a
 * candidate's node looked silent but is not confirmed dead (search again after a heartbeat, so
 * that an eligible pair is not left waiting).
 */
export type MatchOutcome = "matched" | "none" | "later";

/** Turns a pool entry into a room: the search, the claim, the room record and both `matched`. */
export class Matchmaker {
  constructor(
    private readonly store: Store,
    private readonly settings: HubSettings,
    private readonly router: Router,
    private readonly liveness: Liveness,
    private readonly events: EventEmitter<HubEvents>,
    private readonly nodeId: string,
    /** Ends a dead node's session at its grace unless it resumed elsewhere. */
    private readonly endOrphanLater: (sessionId: string, nodeId: string) => void,
  ) {}

  /** Searches a partner for `me` (just put in the pool by the session `who`). */
  async match(me: PoolEntry, who: SessionInfo): Promise<MatchOutcome> {
    const deferred = { later: false };
    const found = await searchAndClaim(this.store, me, this.settings.matchFilter, (entries) =>
      this.liveEntries(entries, deferred),
    );
    if (found === undefined) return deferred.later ? "later" : "none";
    const { partner, distanceKm } = found;
    const roomId = randomId(12);
    const mine: RoomMember = {
      sessionId: who.sessionId,
      userId: me.userId,
      nodeId: me.nodeId,
      name: me.name,
    };
    const theirs: RoomMember = {
      sessionId: sessionOfPoolKey(partner.sessionId),
      userId: partner.userId,
      nodeId: partner.nodeId,
      name: partner.name,
    };
    const room: RoomRecord = { roomId, members: [mine, theirs], createdAt: this.settings.now() };
    await this.store.rooms.create(room);
    const km = this.settings.grid.publicDistanceKm(distanceKm);
    if (this.events.listenerCount("matched") > 0) {
      const now = this.settings.now();
      this.events.emit("matched", {
        ...who,
        roomId,
        partner: theirs,
        distanceKm: km,
        waitedMs: [now - me.since, now - partner.since],
      });
    }
    await this.router.route(mine, {
      to: mine.sessionId,
      roomId,
      frame: { type: "matched", roomId, partner: { name: theirs.name, distanceKm: km } },
      partner: theirs,
    });
    await this.router.route(theirs, {
      to: theirs.sessionId,
      roomId,
      frame: { type: "matched", roomId, partner: { name: mine.name, distanceKm: km } },
      partner: mine,
    });
    return "matched";
  }

  /** Drops pool entries owned by dead nodes (they can never answer a match) and keeps the rest. */
  private async liveEntries(entries: PoolEntry[], deferred: { later: boolean }): Promise<PoolEntry[]> {
    const foreign = new Set<string>();
    for (const e of entries) if (e.nodeId !== this.nodeId) foreign.add(e.nodeId);
    if (foreign.size === 0) return entries;
    const dead = await this.liveness.dead(foreign);
    if (dead.confirmed.size === 0 && dead.suspected.size === 0) return entries;
    const keep: PoolEntry[] = [];
    for (const e of entries) {
      if (dead.confirmed.has(e.nodeId)) {
        await this.store.pool.remove(e.sessionId);
        // The session waited on a dead node: it ends at its grace unless it resumes elsewhere.
        this.endOrphanLater(sessionOfPoolKey(e.sessionId), e.nodeId);
      } else if (dead.suspected.has(e.nodeId)) deferred.later = true;
      else keep.push(e);
    }
    return keep;
  }
}
