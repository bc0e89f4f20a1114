/**
 * Matching, end to end, against a brute-force oracle: a real hub on the memory store, driven
 * through fake connections with random and adversarial sequences of join, location update,
 * leave, next, block, disconnect and clock steps. The model is rebuilt from the frames the
 * clients receive and checked against the store after every step:
 * - every match satisfies the mutual rule, pairs two users, neither excluded nor filtered out;
 * - nobody is matched twice, and the pool holds exactly the sessions the frames say wait;
 * - no two waiting sessions are eligible for each other;
 * - with one request at a time, each search picks the longest-waiting eligible session (ties:
 *   the nearest), as a scan of the oracle's waiting set says.
 */
import {
  type Connection,
  createWhisper,
  haversineKm,
  locationGrid,
  type MatchFilter,
  type PoolEntry,
  type ServerFrame,
  type SessionLink,
  type WhisperHub,
} from "@whisperchat/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMemoryStore, type MemoryStore } from "../src/index.js";

/** The hub's location precision in these runs, and the grid the model applies with it. */
const PRECISION_KM = 1;
const GRID = locationGrid(PRECISION_KM);

/**
 * Hub bugs this file documents in `describe("known bug")`. While a flag is on, the concurrent
 * property tolerates that bug (counting it, or ending the run where the state it leaves cannot
 * be modelled) so that it keeps checking everything else. Turn a flag off once its bug is fixed.
 */
const KNOWN_BUGS = {
  /** A search claims a session with the point it checked, after the session moved away. */
  staleClaim: false,
  /** A `join` update answered `waiting` after the session was matched meanwhile. */
  joinAfterClaim: false,
  /**
   * A room closes before its second member got `matched` (e.g. the searcher disconnects during
   * its match): that member drops the `partner_left`, then takes `matched`, and sits in a dead room.
   */
  deadRoom: false,
};

const COOLDOWN_MS = 1_000;
const MAX_RANGE_KM = 20_000;
const T_START = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------------
// A hub on fake connections

class FakeConnection implements Connection {
  readonly frames: ServerFrame[] = [];
  readonly bufferedAmount = 0;
  closed: { code: number; reason: string } | undefined;
  constructor(
    private readonly trace: string[],
    private readonly name: string,
  ) {}
  send(frame: ServerFrame): void {
    this.frames.push(frame);
    if (frame.type !== "pong") this.trace.push(`${this.name} <- ${JSON.stringify(frame)}`);
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
}

interface Client {
  readonly conn: FakeConnection;
  readonly link: SessionLink;
  readonly sessionId: string;
  readonly userId: string;
  /** Frames already read by the model. */
  cursor: number;
  open: boolean;
}

type Params = { lat: number; lng: number; rangeKm: number };
type RequestKind = "join" | "next" | "block" | "leave" | "ping";

/** A session as the frames describe it. */
interface Model {
  readonly client: Client;
  state: "idle" | "waiting" | "room" | "closed";
  params: Params | undefined;
  lastJoin: Params | undefined;
  since: number;
  /** The clock when the session last entered the pool or updated its entry (and searched). */
  searchedAt: number;
  roomId: string | undefined;
  /** Points and ranges this session updated away from during the current step. */
  former: Params[];
  /** The last room the session was in, and the step in which it was told that room closed. */
  lastRoomId: string | undefined;
  leftRoomAtStep: number;
}

interface MatchEvent {
  roomId: string;
  session: Model;
  params: Params;
  /** What the session had before location updates made during the same step. */
  former: Params[];
  distanceKm: number;
}

interface Violation {
  step: string;
  message: string;
}

/**
 * The host filter of some runs: two groups of users (by the last character of the user id),
 * matched only within their group, like a language rule.
 */
const group = (userId: string) => userId.charCodeAt(userId.length - 1) % 3 === 0;
const languageFilter: MatchFilter = (a, b) => group(a.userId) === group(b.userId);

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

class World {
  clock = T_START;
  readonly store: MemoryStore;
  readonly hub: WhisperHub;
  readonly clients: Client[] = [];
  readonly models = new Map<string, Model>();
  /** Exclusions as the frames imply them: pair → until (ms; Infinity for a block). */
  readonly exclusions = new Map<string, number>();
  /** Exclusions the hub may have made: the invariant does not hold such pairs as eligible. */
  readonly maybeExclusions = new Map<string, number>();
  /** Open rooms: roomId → its two sessions. */
  readonly rooms = new Map<string, [Model, Model]>();
  readonly requests = new Map<string, { kind: RequestKind; params?: Params; session: Model }>();
  readonly violations: Violation[] = [];
  /** Rooms closed since the last check: the store must have dropped them. */
  readonly #closedRooms: string[] = [];
  /** The hub's `matched` events: roomId → the two sessions. */
  readonly hubRooms = new Map<string, [string, string]>();
  /** Answers to requests, by request id: what sequential checks compare with expectations. */
  readonly replies = new Map<string, ServerFrame>();
  /** Every frame (but pongs) in arrival order, and every request: for failure messages. */
  readonly trace: string[] = [];
  /** Matches made with a point one member had just moved away from (the known race). */
  knownRaces = 0;
  /** A known bug left a state the model cannot follow: the run ends there. */
  tainted = false;
  /** No known bug is tolerated (one request at a time, where no race is possible; the known-bug tests). */
  strict = false;
  /** The latest pool key of each session. */
  readonly poolKeys = new Map<string, string>();
  #ids = 0;
  #label = "";
  #step = 0;

  constructor(
    readonly filter: MatchFilter | undefined,
    readonly anchors: readonly Point[],
  ) {
    const now = () => this.clock;
    this.store = createMemoryStore({ now });
    // The hub keys pool entries "<sessionId>~<version>": note the latest key of each session.
    const add = this.store.pool.add.bind(this.store.pool);
    this.store.pool.add = (entry) => {
      this.poolKeys.set(entry.sessionId.slice(0, entry.sessionId.lastIndexOf("~")), entry.sessionId);
      return add(entry);
    };
    this.hub = createWhisper({
      store: this.store,
      now,
      nextCooldownMs: COOLDOWN_MS,
      maxRangeKm: MAX_RANGE_KM,
      connectRate: { capacity: 1e9, ratePerSec: 1e9 },
      churnRate: { capacity: 1e9, ratePerSec: 1e9 },
      requestRate: { capacity: 1e9, ratePerSec: 1e9 },
      guestChurnPerAddress: { capacity: 1e9, ratePerSec: 1e9 },
      locationPrecisionKm: PRECISION_KM,
      resumeGraceMs: 0,
      maxPendingRequests: 1_000,
      matchFilter: filter,
      authenticate: (hs) => {
        const user = hs.params.user;
        return typeof user === "string" ? { userId: user, name: `name-${user}`, roles: [] } : null;
      },
    });
    this.hub.on("matched", (e) => this.hubRooms.set(e.roomId, [e.sessionId, e.partner.sessionId]));
  }

  #closeRoom(roomId: string): void {
    this.rooms.delete(roomId);
    this.#closedRooms.push(roomId);
  }

  async connect(user: string | undefined): Promise<Client> {
    const admitted = await this.hub.admit({
      transport: "test",
      headers: {},
      params: user === undefined ? {} : { user },
      remoteAddress: "t",
    });
    if (!admitted.ok) throw new Error(`admit refused: ${admitted.message}`);
    const conn = new FakeConnection(this.trace, `c${this.clients.length}`);
    const link = this.hub.open(admitted, conn);
    const welcome = conn.frames[0];
    if (welcome?.type !== "welcome") throw new Error("no welcome frame");
    const client: Client = {
      conn,
      link,
      sessionId: welcome.sessionId,
      userId: welcome.user.userId,
      cursor: 1,
      open: true,
    };
    this.clients.push(client);
    this.models.set(client.sessionId, {
      client,
      state: "idle",
      params: undefined,
      lastJoin: undefined,
      since: 0,
      searchedAt: 0,
      roomId: undefined,
      former: [],
      lastRoomId: undefined,
      leftRoomAtStep: -1,
    });
    return client;
  }

  model(client: Client): Model {
    return this.models.get(client.sessionId)!;
  }

  /** Sends a request and remembers what it was; returns its id. */
  request(client: Client, kind: RequestKind, params?: Params): string {
    const id = `r${++this.#ids}`;
    const model = this.model(client);
    if (kind !== "ping")
      this.trace.push(`c${this.clients.indexOf(client)} -> ${kind} ${id} ${JSON.stringify(params ?? "")}`);
    // The model knows the points matching uses: the hub snaps each point and rounds each range
    // (location privacy) before anything else sees them, and so does the model.
    const used = params === undefined ? undefined : GRID.obfuscate(params.lat, params.lng, params.rangeKm);
    this.requests.set(
      id,
      used === undefined ? { kind, session: model } : { kind, params: used, session: model },
    );
    if (kind === "join") {
      client.link.receive({
        type: "join",
        id,
        location: { lat: params!.lat, lng: params!.lng },
        rangeKm: params!.rangeKm,
      });
    } else {
      client.link.receive({ type: kind, id });
    }
    return id;
  }

  disconnect(client: Client): void {
    this.trace.push(`c${this.clients.indexOf(client)} -> disconnect`);
    client.open = false;
    client.link.closed(1000);
  }

  /**
   * Waits until every session has handled everything sent so far: each open session answers a
   * ping after its earlier requests, and nothing in a single-node memory store waits for more
   * than microtasks, so a macrotask after the last pong sees the hub at rest.
   */
  async settle(): Promise<void> {
    const pings = this.clients.filter((c) => c.open).map((c) => this.request(c, "ping"));
    for (let i = 0; i < 10_000 && !pings.every((id) => this.replies.has(id) || this.#pongSeen(id)); i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  #pongSeen(id: string): boolean {
    const session = this.requests.get(id)!.session;
    return session.client.conn.frames.some((f) => f.type === "pong" && f.id === id);
  }

  excluded(userA: string, userB: string, at: number): boolean {
    const until = this.exclusions.get(pairKey(userA, userB));
    return until !== undefined && until > at;
  }

  /** The other user of a room, from the hub's `matched` event (its frames may be read after ours). */
  #partnerIn(roomId: string, m: Model): string | undefined {
    const room = this.hubRooms.get(roomId);
    const partnerId = room?.[0] === m.client.sessionId ? room[1] : room?.[0];
    return partnerId === undefined ? undefined : this.models.get(partnerId)?.client.userId;
  }

  /** An exclusion that the hub may or may not have made (a race the protocol leaves open). */
  #maybeExclude(userA: string, userB: string, ttl: number | undefined): void {
    const key = pairKey(userA, userB);
    const until = ttl === undefined ? Number.POSITIVE_INFINITY : this.clock + ttl;
    this.maybeExclusions.set(key, Math.max(this.maybeExclusions.get(key) ?? 0, until));
  }

  #exclude(userA: string, userB: string, ttl: number | undefined): void {
    const key = pairKey(userA, userB);
    const until = ttl === undefined ? Number.POSITIVE_INFINITY : this.clock + ttl;
    this.exclusions.set(key, Math.max(this.exclusions.get(key) ?? 0, until));
  }

  /** Whether two waiting sessions may be matched, exclusions taken at time `at`. */
  eligible(a: Model, b: Model, at: number): boolean {
    if (a === b || a.client.userId === b.client.userId) return false;
    if (a.params === undefined || b.params === undefined) return false;
    const d = haversineKm(a.params.lat, a.params.lng, b.params.lat, b.params.lng);
    if (d > a.params.rangeKm || d > b.params.rangeKm) return false;
    if (this.excluded(a.client.userId, b.client.userId, at)) return false;
    if ((this.maybeExclusions.get(pairKey(a.client.userId, b.client.userId)) ?? 0) > at) return false;
    return this.filter === undefined || this.filter(this.entry(a), this.entry(b));
  }

  entry(m: Model): PoolEntry {
    return {
      sessionId: m.client.sessionId,
      userId: m.client.userId,
      nodeId: this.hub.nodeId,
      name: "",
      lat: m.params!.lat,
      lng: m.params!.lng,
      rangeKm: m.params!.rangeKm,
      since: m.since,
    };
  }

  /** The last frames a session received, for failure messages. */
  recent(m: Model): string {
    return JSON.stringify(
      m.client.conn.frames.slice(-8).filter((f) => f.type !== "pong" && f.type !== "welcome"),
    );
  }

  fail(message: string): void {
    this.violations.push({
      step: this.#label,
      message: `${message}\n  trace of the run:\n    ${this.trace.join("\n    ")}`,
    });
  }

  /**
   * Reads the frames received since the last step into the model, and checks what can be
   * checked frame by frame. Returns the matches made during the step.
   */
  absorb(label: string, exclusionsBefore: Map<string, number>): MatchEvent[] {
    this.#label = label;
    const events: MatchEvent[] = [];
    this.#step++;
    for (const m of this.models.values()) m.former = [];
    for (const client of this.clients) {
      const m = this.model(client);
      const frames = client.conn.frames;
      for (; client.cursor < frames.length; client.cursor++) {
        const f = frames[client.cursor]!;
        if (
          "id" in f &&
          f.id !== undefined &&
          (f.type === "waiting" || f.type === "ack" || f.type === "error")
        ) {
          this.replies.set(f.id, f);
        }
        switch (f.type) {
          case "waiting": {
            const req = f.id === undefined ? undefined : this.requests.get(f.id);
            if (req === undefined || req.session !== m) {
              this.fail(`${client.sessionId}: waiting without a matching request`);
              break;
            }
            if (req.kind === "join") {
              if (m.state === "room") {
                // The known bug: the session is now both in the pool and in a room.
                if (this.strict || !KNOWN_BUGS.joinAfterClaim) {
                  this.fail(`${client.sessionId}: join answered waiting while in room ${m.roomId}`);
                }
                this.tainted = true;
              }
              if (m.state === "waiting" && f.since !== m.since) this.fail(`an update changed since`);
              if (m.state === "waiting" && m.params !== undefined) m.former.push(m.params);
              if (m.state !== "waiting" && f.since !== this.clock) this.fail(`a join's since is not now`);
              m.lastJoin = req.params;
              m.params = req.params;
            } else if (req.kind === "next" || req.kind === "block") {
              if (m.state === "waiting") {
                if (req.kind === "block") this.fail("block answered waiting outside a room");
                if (f.since !== m.since) this.fail("next while waiting changed since");
                break; // next while waiting: nothing changes, no search
              }
              if (m.state === "room") {
                const partner = this.#partnerIn(m.roomId!, m);
                if (partner === undefined) this.fail(`${req.kind} from an unknown room`);
                else this.#exclude(m.client.userId, partner, req.kind === "next" ? COOLDOWN_MS : undefined);
                this.#closeRoom(m.roomId!);
                m.roomId = undefined;
              } else if (m.leftRoomAtStep === this.#step && m.lastRoomId !== undefined) {
                // The partner left while this request was being handled. A block had already
                // excluded them; a next did if the partner left after it read its partner.
                const partner = this.#partnerIn(m.lastRoomId, m);
                if (partner !== undefined && req.kind === "block")
                  this.#exclude(m.client.userId, partner, undefined);
                if (partner !== undefined && req.kind === "next")
                  this.#maybeExclude(m.client.userId, partner, COOLDOWN_MS);
              }
              if (f.since !== this.clock) this.fail(`rejoining after ${req.kind}: since is not now`);
              m.params = m.lastJoin;
            } else {
              this.fail(`waiting answers a ${req.kind}`);
            }
            m.state = "waiting";
            m.since = f.since;
            m.searchedAt = this.clock;
            break;
          }
          case "matched": {
            if (m.state !== "waiting") {
              this.fail(`${client.sessionId} got matched while ${m.state} (matched twice?)`);
            }
            if (m.params !== undefined) {
              events.push({
                roomId: f.roomId,
                session: m,
                params: m.params,
                former: [...m.former],
                distanceKm: f.partner.distanceKm,
              });
            }
            m.state = "room";
            m.roomId = f.roomId;
            m.lastRoomId = f.roomId;
            break;
          }
          case "partner_left": {
            if (m.state !== "room" || m.roomId !== f.roomId) {
              this.fail(`${client.sessionId} got partner_left for a room it is not in`);
              break;
            }
            this.#closeRoom(f.roomId);
            m.leftRoomAtStep = this.#step;
            m.state = "idle";
            m.roomId = undefined;
            break;
          }
          case "ack": {
            const req = f.id === undefined ? undefined : this.requests.get(f.id);
            if (req?.kind === "leave") {
              if (m.roomId !== undefined) this.#closeRoom(m.roomId);
              m.state = "idle";
              m.roomId = undefined;
            }
            break;
          }
          default:
            break;
        }
        // Rooms become known when both members have their `matched`; pair them as they come.
        if (f.type === "matched") {
          const other = events.find((e) => e.roomId === f.roomId && e.session !== m);
          // Open unless the other member (whose frames were read first) already left it.
          const open = other?.session.state === "room" && other.session.roomId === f.roomId;
          if (other !== undefined && open) this.rooms.set(f.roomId, [other.session, m]);
        }
      }
      if (!client.open && m.state !== "closed") {
        // A next or block cut short by the close may have excluded the last partner, or not.
        const lastPartner = m.lastRoomId === undefined ? undefined : this.#partnerIn(m.lastRoomId, m);
        for (const [id, req] of this.requests) {
          if (req.session !== m || this.replies.has(id) || lastPartner === undefined) continue;
          if (req.kind === "next") this.#maybeExclude(m.client.userId, lastPartner, COOLDOWN_MS);
          if (req.kind === "block") this.#maybeExclude(m.client.userId, lastPartner, undefined);
        }
        if (m.roomId !== undefined) this.#closeRoom(m.roomId);
        m.state = "closed";
        m.roomId = undefined;
      }
    }

    // Every room made during the step: two sessions, a valid pair when it was made.
    const byRoom = new Map<string, MatchEvent[]>();
    for (const e of events) byRoom.set(e.roomId, [...(byRoom.get(e.roomId) ?? []), e]);
    for (const [roomId, pair] of byRoom) {
      const [a, b] = pair;
      const members = this.hubRooms.get(roomId);
      if (members === undefined || pair.some((e) => !members.includes(e.session.client.sessionId))) {
        this.fail(`room ${roomId} was announced to sessions the hub did not match`);
      }
      if (pair.length === 1 && a !== undefined) {
        // The other session left the pool between the claim and the delivery: it never saw the
        // room, and this one must have been told the room closed.
        if (a.session.roomId === roomId) {
          // The known bug: its `partner_left` came first and was dropped; it stays in a dead room.
          if (this.strict || !KNOWN_BUGS.deadRoom) {
            this.fail(`room ${roomId} was announced to one session only, which was never told it closed`);
          }
          this.tainted = true;
        }
        continue;
      }
      if (pair.length !== 2 || a === undefined || b === undefined) {
        this.fail(`room ${roomId} was announced to ${pair.length} session(s)`);
        continue;
      }
      const d = haversineKm(a.params.lat, a.params.lng, b.params.lat, b.params.lng);
      const inRange = (pa: Params, pb: Params, dist: number) =>
        dist <= pa.rangeKm && dist <= pb.rangeKm && a.distanceKm === GRID.publicDistanceKm(dist);
      if (!inRange(a.params, b.params, d) || b.distanceKm !== a.distanceKm) {
        // The known race (see "known bug"): the pair was checked with a point one of them was
        // moving away from, and claimed after the move.
        const race = [a.params, ...a.former].some((pa) =>
          [b.params, ...b.former].some((pb) => inRange(pa, pb, haversineKm(pa.lat, pa.lng, pb.lat, pb.lng))),
        );
        if (race && a.former.length + b.former.length > 0 && KNOWN_BUGS.staleClaim && !this.strict) {
          this.knownRaces++;
        } else {
          this.fail(
            `matched out of range: d=${d} km (sent ${a.distanceKm}/${b.distanceKm}), ranges ${a.params.rangeKm} and ${b.params.rangeKm} km (${JSON.stringify(a.params)} / ${JSON.stringify(b.params)})`,
          );
        }
      }
      const ua = a.session.client.userId;
      const ub = b.session.client.userId;
      if (ua === ub) this.fail(`two sessions of ${ua} were matched`);
      const until = exclusionsBefore.get(pairKey(ua, ub));
      if (until !== undefined && until > this.clock)
        this.fail(`an excluded pair was matched (until ${until})`);
      if (this.filter !== undefined) {
        const ea = { ...this.entry(a.session), ...a.params };
        const eb = { ...this.entry(b.session), ...b.params };
        if (!this.filter(ea, eb)) this.fail("the host filter was ignored");
      }
    }
    return events;
  }

  /** The model against the store, and the pool invariant. */
  async check(): Promise<void> {
    for (const m of this.models.values()) {
      if (m.state === "room" && !this.rooms.has(m.roomId!)) {
        // The known bug: a partner_left that overtook this session's matched was dropped.
        if (this.strict || !KNOWN_BUGS.deadRoom) this.fail(`${m.client.sessionId} is in a closed room`);
        this.tainted = true;
      }
    }
    if (this.tainted) return;
    const waiting = [...this.models.values()].filter((m) => m.state === "waiting");
    if ((await this.store.pool.size()) !== waiting.length) {
      this.fail(
        `the pool holds ${await this.store.pool.size()} sessions, the frames say ${waiting.length} wait`,
      );
    }
    for (const m of this.models.values()) {
      const e = await this.store.pool.get(this.poolKeys.get(m.client.sessionId) ?? m.client.sessionId);
      if (m.state !== "waiting") {
        if (e !== undefined) this.fail(`${m.client.sessionId} is ${m.state} but still in the pool`);
        continue;
      }
      if (e === undefined) {
        this.fail(`${m.client.sessionId} was told it waits but is not in the pool`);
        continue;
      }
      const p = m.params!;
      if (e.lat !== p.lat || e.lng !== p.lng || e.rangeKm !== p.rangeKm || e.since !== m.since) {
        this.fail(`${m.client.sessionId}: the pool entry differs from the last join: ${JSON.stringify(e)}`);
      }
      if (e.userId !== m.client.userId) this.fail("the pool entry has another user");
    }
    for (const [roomId, [a, b]] of this.rooms) {
      const record = await this.store.rooms.get(roomId);
      if (a.state !== "room" || b.state !== "room" || a.roomId !== roomId || b.roomId !== roomId) {
        this.fail(
          `room ${roomId}: its members are ${a.state}/${b.state}; they received ${this.recent(a)} and ${this.recent(b)}`,
        );
      }
      const ids = record?.members.map((x) => x.sessionId).sort();
      const expected = [a.client.sessionId, b.client.sessionId].sort();
      if (ids === undefined || ids[0] !== expected[0] || ids[1] !== expected[1]) {
        this.fail(`room ${roomId}: the store has ${JSON.stringify(ids)}`);
      }
    }
    for (const roomId of this.#closedRooms.splice(0)) {
      if ((await this.store.rooms.get(roomId)) !== undefined)
        this.fail(`room ${roomId} closed but still stored`);
    }
    // No two waiting sessions are eligible for each other. Exclusions are taken when the later
    // of the two last searched: a cooldown that ended since is the known bug below.
    for (let i = 0; i < waiting.length; i++) {
      for (let j = i + 1; j < waiting.length; j++) {
        const a = waiting[i]!;
        const b = waiting[j]!;
        if (this.eligible(a, b, Math.max(a.searchedAt, b.searchedAt))) {
          this.fail(
            `two waiting sessions are eligible for each other: ${JSON.stringify(this.entry(a))} and ${JSON.stringify(this.entry(b))}`,
          );
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Actions

type Point = [number, number];
/** Near one of the run's anchors (an index into them, and offsets in degrees), or anywhere. */
type PointSpec = { anchor: number; dLat: number; dLng: number } | { at: Point };
type Action =
  | { kind: "connect"; user: string | undefined }
  | { kind: "join"; who: number; point: PointSpec; range: number }
  | { kind: "joinEdge"; who: number; target: number; point: PointSpec; inside: boolean }
  | { kind: "next" | "block" | "leave" | "disconnect"; who: number }
  | { kind: "advance"; ms: number };

const clampLat = (lat: number) => Math.max(-90, Math.min(90, lat));
const wrapLng = (lng: number) => (lng > 180 ? lng - 360 : lng < -180 ? lng + 360 : lng);

/** Poles, the antimeridian (both sides and ±180 itself), a city, the origin. */
const ANCHORS: Point[] = [
  [90, 0],
  [90, 137],
  [-90, -60],
  [89.9999, 45],
  [0, 179.99],
  [0, -179.99],
  [0, 180],
  [0, -180],
  [-45.5, 179.999],
  [48.8566, 2.3522],
  [0, 0],
];
const delta = fc.constantFrom(0, 0, 1e-9, -1e-9, 1e-6, -1e-5, 1e-3, -1e-3, 0.02, -0.05, 0.5, -2);
const point: fc.Arbitrary<PointSpec> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ anchor: fc.nat(), dLat: delta, dLng: delta }) },
  {
    weight: 1,
    arbitrary: fc.record({
      at: fc.tuple(
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
      ),
    }),
  },
);
/** The anchors of one run: a few, so that its sessions meet. */
const anchors = fc.shuffledSubarray(ANCHORS, { minLength: 1, maxLength: 3 });

function resolve(w: World, p: PointSpec): Point {
  if ("at" in p) return p.at;
  const [lat, lng] = w.anchors[p.anchor % w.anchors.length]!;
  return [clampLat(lat + p.dLat), wrapLng(lng + p.dLng)];
}

/** Tiny, maximal, antimeridian-sized (179.99 to -179.99 is 2.22 km at the equator) and random ranges. */
const range = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0.001, 0.0015, 0.2, 1, 2.2, 2.3, 60, 250, 5_000, MAX_RANGE_KM) },
  { weight: 1, arbitrary: fc.double({ min: 0.001, max: MAX_RANGE_KM, noNaN: true }) },
);
const who = fc.nat({ max: 40 });
const user = fc.option(fc.constantFrom("u0", "u1", "u2"), { nil: undefined, freq: 2 });

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("connect" as const), user }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("join" as const), who, point, range }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("joinEdge" as const),
      who,
      target: who,
      point,
      inside: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("next" as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("block" as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("leave" as const), who }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("disconnect" as const), who }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.constantFrom(0, 1, COOLDOWN_MS - 1, COOLDOWN_MS, COOLDOWN_MS + 1, 7 * COOLDOWN_MS),
    }),
  },
);

/**
 * Sends one action's request without waiting for it (connections are made by the caller).
 * Returns the acting client and the request, if any.
 */
function start(w: World, a: Action): { client?: Client; id?: string; kind?: RequestKind } {
  if (a.kind === "connect") return {};
  if (a.kind === "advance") {
    w.clock += a.ms;
    return {};
  }
  const open = w.clients.filter((c) => c.open);
  const client = open[a.who % Math.max(1, open.length)];
  if (client === undefined) return {};
  switch (a.kind) {
    case "join": {
      const [lat, lng] = resolve(w, a.point);
      const params = { lat, lng, rangeKm: a.range };
      return { client, kind: "join", id: w.request(client, "join", params) };
    }
    case "joinEdge": {
      // A range of exactly the distance to another waiting session (or just short of it).
      const waiting = [...w.models.values()].filter((m) => m.state === "waiting" && m.client !== client);
      const target = waiting[a.target % Math.max(1, waiting.length)];
      const [lat, lng] = resolve(w, a.point);
      const params: Params = { lat, lng, rangeKm: 1 };
      if (target?.params !== undefined) {
        const d = haversineKm(lat, lng, target.params.lat, target.params.lng);
        const r = a.inside ? d : d * (1 - 1e-12);
        params.rangeKm = Math.min(MAX_RANGE_KM, Math.max(0.001, r));
      }
      return { client, kind: "join", id: w.request(client, "join", params) };
    }
    case "disconnect":
      w.disconnect(client);
      return { client };
    default:
      return { client, kind: a.kind, id: w.request(client, a.kind) };
  }
}

const fmtAction = (a: Action) => JSON.stringify(a);

/**
 * One action at a time. Besides the invariants, the expected outcome of each request: errors,
 * and for each search the partner a scan of the oracle's waiting set picks.
 */
async function runSequential(
  actions: Action[],
  filter: MatchFilter | undefined,
  anchorSet: readonly Point[],
): Promise<Violation[]> {
  const w = new World(filter, anchorSet);
  w.strict = true;
  try {
    for (const user of [undefined, "u0", "u0", undefined, "u1"]) await w.connect(user);
    for (const [i, a] of actions.entries()) {
      const label = `#${i} ${fmtAction(a)}`;
      const before = new Map([...w.models].map(([k, m]) => [k, { ...m }]));
      const cursors = new Map(w.clients.map((c) => [c, c.cursor]));
      const exclusionsBefore = new Map(w.exclusions);
      if (a.kind === "connect") await w.connect(a.user);
      const { client, id, kind } = start(w, a);
      await w.settle();
      const events = w.absorb(label, exclusionsBefore);
      const actor = client === undefined ? undefined : before.get(client.sessionId);
      const reply = id === undefined ? undefined : w.replies.get(id);

      // Expected answers.
      if (actor !== undefined && id !== undefined) {
        const code = reply?.type === "error" ? reply.code : undefined;
        if (kind === "join" && actor.state === "room" && code !== "in_room")
          w.fail(`${label}: join in a room answered ${reply?.type}/${code}`);
        if (kind === "block" && actor.state !== "room" && code !== "not_in_room")
          w.fail(`${label}: block outside a room answered ${reply?.type}`);
        if (
          kind === "next" &&
          actor.state === "idle" &&
          actor.lastJoin === undefined &&
          code !== "not_in_room"
        ) {
          w.fail(`${label}: next before any join answered ${reply?.type}`);
        }
        if (code !== undefined && !(code === "in_room" || code === "not_in_room"))
          w.fail(`${label}: unexpected error ${code}`);
      }
      if (
        actor?.state === "room" &&
        (kind === "next" || kind === "block" || kind === "leave" || a.kind === "disconnect")
      ) {
        const partner = [...before.values()].find((m) => m.roomId === actor.roomId && m !== actor);
        const expected = kind === "next" ? "next" : kind === undefined ? "disconnected" : "left";
        const got = partner?.client.conn.frames
          .slice(cursors.get(partner.client))
          .filter((f) => f.type === "partner_left" && f.roomId === actor.roomId);
        if (
          got === undefined ||
          got.length !== 1 ||
          (got[0]?.type === "partner_left" && got[0].reason !== expected)
        ) {
          w.fail(
            `${label}: the partner should get one partner_left (${expected}), got ${JSON.stringify(got)}`,
          );
        }
      }

      // Fairness: the search made by this request, against a scan of the waiting set before it.
      const searcher = client === undefined ? undefined : w.model(client);
      const searched =
        reply?.type === "waiting" &&
        searcher !== undefined &&
        !(kind === "next" && actor?.state === "waiting");
      if (!searched) {
        if (events.length > 0) w.fail(`${label}: a match without a search`);
      } else {
        const me = { ...searcher!, state: "waiting" as const };
        me.params =
          searcher!.state === "room" ? events.find((e) => e.session === searcher)!.params : searcher!.params;
        let best: { m: Model; d: number }[] = [];
        for (const other of before.values()) {
          if (other.state !== "waiting" || other.client === client) continue;
          if (!w.eligible(me, other, w.clock)) continue;
          const d = haversineKm(me.params!.lat, me.params!.lng, other.params!.lat, other.params!.lng);
          const top = best[0];
          if (top === undefined || other.since < top.m.since || (other.since === top.m.since && d < top.d))
            best = [{ m: other, d }];
          else if (other.since === top.m.since && d === top.d) best.push({ m: other, d });
        }
        const mine = events.find((e) => e.session === searcher);
        const theirs = mine && events.find((e) => e.roomId === mine.roomId && e.session !== searcher);
        if (best.length === 0) {
          if (events.length > 0) w.fail(`${label}: matched though nobody was eligible`);
        } else if (theirs === undefined) {
          w.fail(
            `${label}: not matched though ${best.length} session(s) were eligible, e.g. ${JSON.stringify(w.entry(best[0]!.m))}`,
          );
        } else if (!best.some((b) => b.m.client === theirs.session.client)) {
          w.fail(
            `${label}: matched ${theirs.session.client.sessionId} (since ${theirs.session.since}), expected the longest-waiting, nearest: ${best.map((b) => `${b.m.client.sessionId} since ${b.m.since} at ${b.d} km`).join(", ")}`,
          );
        }
        if (events.length > 2) w.fail(`${label}: ${events.length / 2} rooms from one search`);
      }
      await w.check();
      if (w.violations.length > 0) break;
    }
    return w.violations;
  } finally {
    await w.hub.close();
    await w.store.close();
  }
}

/**
 * Several requests from several sessions sent close together (a few microtasks apart, so that
 * they interleave inside the hub), then one settle: only the invariants can be checked, since
 * which request wins a race is not specified.
 */
async function runConcurrent(
  batches: [Action, number][][],
  filter: MatchFilter | undefined,
  anchorSet: readonly Point[],
): Promise<Violation[]> {
  const w = new World(filter, anchorSet);
  try {
    for (const user of [undefined, "u1", undefined, "u1", undefined, "u2"]) await w.connect(user);
    for (const [i, batch] of batches.entries()) {
      const label = `batch #${i} ${batch.map(([a, gap]) => `${fmtAction(a)}+${gap}`).join(" ")}`;
      // The clock moves between batches only: a `since` is the clock when the request is handled.
      for (const [a] of batch) if (a.kind === "advance") start(w, a);
      const exclusionsBefore = new Map(w.exclusions);
      for (const [a, gap] of batch) {
        if (a.kind !== "advance") start(w, a);
        for (let t = 0; t < gap; t++) await Promise.resolve();
      }
      await w.settle();
      w.absorb(label, exclusionsBefore);
      if (w.tainted) break;
      await w.check();
      if (w.tainted || w.violations.length > 0) break;
      const connect = batch.find(([a]) => a.kind === "connect")?.[0];
      if (connect?.kind === "connect" && w.clients.filter((c) => c.open).length < 8)
        await w.connect(connect.user);
    }
    return w.violations;
  } finally {
    await w.hub.close();
    await w.store.close();
  }
}

describe("matching against a brute-force oracle (hub + memory store)", () => {
  it("one request at a time: valid, exclusive, fair matches, and no eligible pair left waiting", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(action, { minLength: 1, maxLength: 60, size: "max" }),
        fc.boolean(),
        anchors,
        async (actions, filtered, anchorSet) => {
          const violations = await runSequential(actions, filtered ? languageFilter : undefined, anchorSet);
          expect(violations).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  }, 120_000);

  it("many requests in one tick: the invariants hold once the hub settles", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.tuple(action, fc.nat({ max: 8 })), { minLength: 1, maxLength: 5, size: "max" }),
          {
            minLength: 1,
            maxLength: 20,
            size: "max",
          },
        ),
        fc.boolean(),
        anchors,
        async (batches, filtered, anchorSet) => {
          const violations = await runConcurrent(batches, filtered ? languageFilter : undefined, anchorSet);
          expect(violations).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// Known bugs of the hub, shown by scenarios that fail today (`it.fails` keeps the suite green
// while they do). When one is fixed its test starts failing here: turn it into a plain `it`,
// and turn off its flag in KNOWN_BUGS.

const microtasks = async (n: number) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

/**
 * Runs `scenario` once per delay (in microtasks) between its two concurrent moves, each time on
 * a fresh hub in strict mode, and returns every violation whose message matches `pattern`.
 */
async function acrossDelays(
  pattern: RegExp,
  scenario: (w: World, first: Client, second: Client, delay: () => Promise<void>) => Promise<void>,
): Promise<string[]> {
  const found: string[] = [];
  for (let gap = 0; gap <= 24; gap++) {
    const w = new World(undefined, ANCHORS);
    w.strict = true;
    try {
      const first = await w.connect(undefined);
      const second = await w.connect(undefined);
      await scenario(w, first, second, () => microtasks(gap));
      await w.settle();
      w.absorb(`delay ${gap}`, new Map(w.exclusions));
      if (!w.tainted) await w.check();
      for (const v of w.violations)
        if (pattern.test(v.message)) found.push(`delay ${gap}: ${v.message.split("\n")[0]}`);
    } finally {
      await w.hub.close();
      await w.store.close();
    }
  }
  return found;
}

describe("fixed races (once known bugs)", () => {
  const here = { lat: 10, lng: 10, rangeKm: 50 };
  const near = { lat: 10, lng: 10.1, rangeKm: 50 }; // 11 km away
  const far = { lat: -40, lng: 100, rangeKm: 50 };

  // The matcher checks the candidate's point, then claims it by sessionId. A waiting session
  // that moves (join update: remove, then add) between the two is claimed with its new point,
  // thousands of km away. A claim should only succeed for the entry that was checked (e.g. claim
  // with the entry's since/point, or re-check the distance after the claim and undo it).
  it("a search never claims a session that moved out of range between the check and the claim", async () => {
    const found = await acrossDelays(/matched out of range/, async (w, mover, searcher, delay) => {
      w.request(mover, "join", here);
      await w.settle();
      w.request(searcher, "join", near);
      await delay();
      w.request(mover, "join", far);
    });
    expect(found).toEqual([]);
  });

  // Session.join checks for a room, then awaits the churn limiter; a match landing in that await
  // puts the session in a room, and join goes on as if it were idle: \`waiting\` (after
  // \`matched\`), back into the pool with a new since, while its partner stays in the room.
  // Re-check the state after the await (or consume the limiter before the check).
  it("a location update racing with a match does not answer waiting while the session is in a room", async () => {
    const found = await acrossDelays(
      /join answered waiting while in room/,
      async (w, mover, searcher, delay) => {
        w.request(mover, "join", here);
        await w.settle();
        w.request(searcher, "join", near);
        await delay();
        w.request(mover, "join", { ...here, rangeKm: 60 });
      },
    );
    expect(found).toEqual([]);
  });

  // The searcher's connection closes while it claims a partner: hub.match routes \`matched\` to
  // the searcher first; it is gone, so the room is closed and the partner is sent
  // \`partner_left\` -- before its own \`matched\`, so the partner drops it, then takes the
  // \`matched\` and sits in a room that no longer exists. Route the partner's \`matched\` only if
  // the searcher's was delivered (and put the partner back in the pool otherwise).
  it("a searcher that disconnects during its match does not leave the partner in a dead room", async () => {
    const found = await acrossDelays(/announced to one session only/, async (w, waiter, searcher, delay) => {
      w.request(waiter, "join", here);
      await w.settle();
      w.request(searcher, "join", near);
      await delay();
      w.disconnect(searcher);
    });
    expect(found).toEqual([]);
  });

  // After \`next\`, the two users are excluded for nextCooldownMs. If both wait meanwhile, nothing
  // searches again when the cooldown ends: an eligible pair stays in the pool until one of them
  // moves or leaves. E.g. re-run the search of the waiting members of a pair when its cooldown ends.
  it("an eligible pair is matched once their next cooldown ends", async () => {
    const w = new World(undefined, ANCHORS);
    w.strict = true;
    try {
      const a = await w.connect(undefined);
      const b = await w.connect(undefined);
      for (const [client, kind, params] of [
        [b, "join", here],
        [a, "join", near],
        [a, "next", undefined],
        [b, "next", undefined],
      ] as const) {
        w.request(client, kind, params);
        await w.settle();
        w.absorb(kind, new Map(w.exclusions));
      }
      expect(w.model(a).state).toBe("waiting");
      expect(w.model(b).state).toBe("waiting");
      const before = [a.conn.frames.length, b.conn.frames.length];
      w.clock += COOLDOWN_MS;
      // The hub looks again on a real timer when the cooldown ends.
      await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));
      await w.settle();
      const matchedA = a.conn.frames.slice(before[0]).find((f) => f.type === "matched");
      const matchedB = b.conn.frames.slice(before[1]).find((f) => f.type === "matched");
      expect(matchedA).toBeDefined();
      expect(matchedB).toBeDefined();
      expect(
        matchedA?.type === "matched" && matchedB?.type === "matched" && matchedA.roomId === matchedB.roomId,
      ).toBe(true);
    } finally {
      await w.hub.close();
      await w.store.close();
    }
  });
});
