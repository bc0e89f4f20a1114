import { createHash } from "node:crypto";
import type { EventEmitter } from "eventemitter3";
import type { Timer } from "./clock.js";
import type { Admission, Handshake, Identity, Refusal, ResumeTicket } from "./connection.js";
import type { Counters } from "./counters.js";
import { WhisperError } from "./errors.js";
import type { HubEvents } from "./events.js";
import { reachable } from "./handover.js";
import { randomId } from "./ids.js";
import { addressBucketKey } from "./privacy.js";
import type { SessionHost } from "./session/host.js";
import { readTokenHash, storedTokenHash, type TokenHashes } from "./session/resume.js";
import { Session } from "./session/session.js";
import type {
  AuthenticateHook,
  AuthorizeHook,
  HubAction,
  HubActionContext,
  HubSettings,
} from "./settings.js";
import type { BanRecord, LimitResult, SessionRecord, Store } from "./store.js";
import { refusal } from "./transport.js";

const MAX_PARAM_CHARS = 8192;
/** The roles of every guest: one shared, frozen empty list. */
const NO_ROLES: readonly string[] = Object.freeze([]);

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
  /** The hash of the token the client resumed with (still taken until the client shows it got the new one). */
  presented: string;
  /** The session's token hashes before this resume: given back if the resume is cancelled. */
  before: TokenHashes;
  /** For a session rebuilt here from its record: the node that owned it (asked to hand it over at `open`). */
  fromNode?: string;
  /** The client's message cursor (handshake parameter `last`). */
  lastSeen?: string;
  timer: Timer;
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

/** A device id a client keeps (handshake parameter `device`): random, long enough to be unguessable. */
const DEVICE = /^[A-Za-z0-9_-]{16,128}$/;

/** The user id of a guest whose client keeps `device`: derived, so the id never reveals it. */
function guestOfDevice(device: string): string {
  return `guest-${createHash("sha256").update(`device:${device}`).digest("base64url").slice(0, 16)}`;
}

/** The stored form of a resume token: its SHA-256, so a leaked store does not leak tokens. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/** May `identity` do `action`? Without a hook, everything is allowed. */
export async function allowed(
  hook: AuthorizeHook | undefined,
  identity: Identity,
  action: HubAction,
  context: HubActionContext,
): Promise<boolean> {
  return hook === undefined ? true : hook(identity, action, context);
}

/** The app's hooks and rules that admission applies. */
export interface AdmissionRules {
  authenticate: AuthenticateHook | undefined;
  authorize: AuthorizeHook | undefined;
  allowGuests: boolean;
  originAllowed: (origin: string | undefined) => boolean;
}

/** A resume admitted and redeemed by `open`: the session and how it comes back. */
export interface Redeemed {
  session: Session;
  /** The fresh resume token `welcome` carries. */
  token: string;
  /** For a session rebuilt here from its record: the node that owned it. */
  fromNode?: string;
  /** The client's message cursor (handshake parameter `last`). */
  lastSeen?: string;
}

/**
 * Admission of connections (docs/protocol.md section 6, "Handshake"): the gates before a
 * session exists (draining, cap, origin, parameters, connection limiter, authentication, bans),
 * and resumes, whose single-use token is swapped here and whose ticket waits for `open`.
 */
export class Admissions {
  /** Resumes admitted but not opened yet (see {@link Admissions.cancel}). */
  private readonly tickets = new Map<ResumeTicket, Ticket>();

  constructor(
    private readonly nodeId: string,
    private readonly store: Store,
    private readonly settings: HubSettings,
    private readonly host: SessionHost,
    /** This node's sessions: a resume may find its session here, or adopt it here. */
    private readonly sessions: Map<string, Session>,
    private readonly events: EventEmitter<HubEvents>,
    private readonly counters: Counters,
    private readonly hooks: AdmissionRules,
    private readonly clientAddress: (remoteAddress: string, headers: Handshake["headers"]) => string,
    private readonly isClosing: () => boolean,
    private readonly whenReady: () => Promise<void>,
  ) {}

  /**
   * Takes the ticket of an admitted resume for `open`. `undefined` when there is none (a fresh
   * session) or its session ended meanwhile.
   */
  redeem(ticket: ResumeTicket | undefined): Redeemed | undefined {
    if (ticket === undefined) return undefined;
    const entry = this.tickets.get(ticket);
    if (entry === undefined) return undefined;
    this.tickets.delete(ticket);
    entry.timer.cancel();
    if (entry.session.isClosed()) return undefined;
    const redeemed: Redeemed = { session: entry.session, token: entry.token };
    if (entry.fromNode !== undefined) redeemed.fromNode = entry.fromNode;
    if (entry.lastSeen !== undefined) redeemed.lastSeen = entry.lastSeen;
    return redeemed;
  }

  /** The hub closes: pending resumes are dropped. */
  clear(): void {
    for (const ticket of this.tickets.values()) ticket.timer.cancel();
    this.tickets.clear();
  }

  /**
   * The cheap first gate of a transport handshake, before the transport keeps any state for it
   * (Socket.IO's `allowRequest`, before the engine creates its socket): draining, the connection
   * cap, and a connection-attempt bucket per client address. That bucket is a backstop against
   * floods, twice as large and fast as `connectRate`: a client slightly over the limit meets the
   * full admission's bucket first, which answers with a proper 429. Resolves a
   * {@link Refusal} to answer, or `undefined` to go on.
   */
  async throttle(remoteAddress: string, headers: Handshake["headers"]): Promise<Refusal | undefined> {
    const closed = this.closedGate();
    if (closed !== undefined) return closed;
    const address = this.clientAddress(remoteAddress, headers);
    try {
      const { capacity, ratePerSec } = this.settings.connectRate;
      const rule = { capacity: capacity * 2, ratePerSec: ratePerSec * 2 };
      return this.connectLimited(
        await this.store.limiter.consume(`handshake:${addressBucketKey(address)}`, rule, 1),
      );
    } catch (error) {
      this.events.emit("error", { error, sessionId: undefined });
      return refusal(503, "internal", "the server could not admit the connection; try again", 1);
    }
  }

  /** Draining or at the connection cap: the refusal, else `undefined`. */
  private closedGate(): Refusal | undefined {
    if (this.isClosing())
      return refusal(503, "internal", "the server is shutting down; reconnect to another node", 1);
    if (this.sessions.size >= this.settings.maxSessions) {
      return refusal(503, "internal", "the server is at its connection cap; try again later", 5);
    }
    return undefined;
  }

  /** A refused connection attempt as a 429 (counted), or `undefined` when allowed. */
  private connectLimited(limit: LimitResult): Refusal | undefined {
    if (limit.allowed) return undefined;
    this.counters.limit("connect", undefined);
    return refusal(
      429,
      "rate_limited",
      "too many connection attempts; slow down",
      Math.ceil(limit.retryAfterMs / 1000),
    );
  }

  async decide(handshake: Handshake): Promise<Admission> {
    const closed = this.closedGate();
    if (closed !== undefined) return closed;
    try {
      await this.whenReady();
    } catch (error) {
      this.events.emit("error", { error, sessionId: undefined });
      return refusal(503, "internal", "the server cannot reach its store", 1);
    }
    const origin = firstHeader(handshake.headers.origin);
    if (!this.hooks.originAllowed(origin)) return refusal(403, "forbidden", "this origin is not allowed");
    const token = param(handshake.params.token);
    const resume = param(handshake.params.resume);
    const last = param(handshake.params.last);
    const device = param(handshake.params.device);
    if (token === null || resume === null || last === null || device === null) {
      return refusal(
        400,
        "bad_request",
        "`token`, `resume`, `last` and `device` must each be given at most once, as short strings",
      );
    }
    if (device !== undefined && !DEVICE.test(device)) {
      return refusal(400, "bad_request", "`device` must be 16 to 128 characters of A-Z, a-z, 0-9, _ and -");
    }
    try {
      const limited = this.connectLimited(
        await this.store.limiter.consume(
          `connect:${addressBucketKey(handshake.remoteAddress)}`,
          this.settings.connectRate,
          1,
        ),
      );
      if (limited !== undefined) return limited;
      let bearer = token;
      if (bearer === undefined) {
        const auth = firstHeader(handshake.headers.authorization);
        const m = auth === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(auth);
        bearer = m?.[1];
        if (bearer !== undefined && bearer.length > MAX_PARAM_CHARS) {
          return refusal(400, "bad_request", `a bearer token must be at most ${MAX_PARAM_CHARS} characters`);
        }
      }
      let identity: Identity | null = null;
      if (this.hooks.authenticate !== undefined) identity = await this.hooks.authenticate(handshake, bearer);
      if (identity === null) {
        if (!this.hooks.allowGuests)
          return refusal(401, "unauthorized", "this server requires a valid token");
        identity = {
          // A guest is a new user per connection, unless its client keeps a device id: then it is
          // the same user again (its exclusions and churn bucket follow it across reloads).
          userId: device === undefined ? `guest-${randomId(12)}` : guestOfDevice(device),
          name: `Guest ${randomId(3).slice(0, 4)}`,
          roles: NO_ROLES,
          guest: true,
        };
      }
      if (!identity.guest) {
        const ban = await this.store.bans.get(identity.userId);
        if (ban !== undefined) return refusal(403, "forbidden", bannedMessage(ban));
      }
      if (!(await allowed(this.hooks.authorize, identity, "connect", {}))) {
        return refusal(403, "forbidden", "you are not allowed to connect");
      }
      const ticket = resume === undefined ? undefined : await this.takeBack(resume, identity, last);
      return { ok: true, identity, resume: ticket, address: handshake.remoteAddress };
    } catch (error) {
      if (error instanceof WhisperError && error.code === "unauthorized")
        return refusal(401, "unauthorized", error.message);
      if (error instanceof WhisperError && error.code === "forbidden")
        return refusal(403, "forbidden", error.message);
      this.events.emit("error", { error, sessionId: undefined });
      return refusal(503, "internal", "the server could not admit the connection; try again", 1);
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
    const presented = hashToken(token);
    const fresh = `${sessionId}.${randomId(24)}`;
    // The token the client resumed with stays taken until it shows it got the fresh one.
    const next: TokenHashes = { current: hashToken(fresh), previous: presented };
    const local = this.sessions.get(sessionId);
    if (local !== undefined && !local.persisted && !local.isClosed() && local.takes(presented)) {
      // A session that never changed state has no record yet (idle sessions cost no store
      // write): it can only be taken over on its own node, which is this one. Swapping the
      // hash here, before any await, keeps the token single-use.
      if (!mayResume(identity, local.identity)) return undefined;
      const before = local.tokenHashes();
      local.reissue(next);
      return this.issueTicket({ session: local, token: fresh, presented, before }, lastSeen);
    }
    // The owner first (a session's user never changes), then the compare-and-set: a token of
    // another identity is refused before it can burn anything.
    const current = await this.store.sessions.get(sessionId);
    const before = current === undefined ? undefined : readTokenHash(current.tokenHash);
    if (
      current === undefined ||
      before === undefined ||
      !mayResume(identity, current) ||
      !(
        before.current === presented ||
        (before.previous === presented && (await this.previousStillTaken(current, presented)))
      ) ||
      (await this.endedWithItsNode(current))
    ) {
      this.events.emit("resume", { sessionId, identity, ok: false });
      return undefined;
    }
    // Both hashes are one stored string: of several resumes with either token, one wins.
    const record = await this.store.sessions.takeover(
      sessionId,
      current.tokenHash,
      this.nodeId,
      storedTokenHash(next),
      this.settings.sessionRecordTtlMs,
    );
    if (record === undefined) {
      this.events.emit("resume", { sessionId, identity, ok: false });
      return undefined;
    }
    const session = this.sessions.get(sessionId);
    if (session !== undefined) {
      const mine = session.tokenHashes();
      session.reissue(next);
      return this.issueTicket({ session, token: fresh, presented, before: mine }, lastSeen);
    }
    // Kept here (away) from now on: a frame routed by the record's new node id finds it.
    const adopted = Session.fromRecord(this.host, record, next);
    this.sessions.set(sessionId, adopted);
    adopted.goAwayQuietly();
    return this.issueTicket(
      { session: adopted, token: fresh, presented, before, fromNode: record.nodeId },
      lastSeen,
    );
  }

  /**
   * Whether the token of the session's previous resume (the record holds its hash: the client
   * has sent nothing since) may take the session once more, because the session has no
   * connection: on this node, its session here has none; elsewhere, the node its record names is
   * gone from the bus (a crashed node leaves it at once, long before its heartbeat expires). A
   * node that is there may hold a live connection of the session, which an old token must never
   * take over: the resume is refused.
   */
  private async previousStillTaken(record: SessionRecord, presented: string): Promise<boolean> {
    if (record.nodeId === this.nodeId) return this.sessions.get(record.sessionId)?.takes(presented) === true;
    return !(await reachable(this.store, record.nodeId));
  }

  /**
   * Whether a session whose node died has ended all the same: its node stopped longer ago than
   * the resume grace (whatever the session's state: an idle or waiting session of a crashed node
   * ends at its grace like any other), or its room was closed (its partner was told
   * `partner_left` at the grace). Its record and mailbox are removed; a resume gets a fresh
   * session.
   */
  private async endedWithItsNode(record: SessionRecord): Promise<boolean> {
    if (record.nodeId === this.nodeId) return false;
    const { nodes, rooms } = this.store;
    const stopped = (await nodes.deadSince([record.nodeId])).get(record.nodeId);
    // Its node stopped longer ago than the grace: the session ended with it, whatever its state.
    let ended = stopped !== undefined && this.settings.now() - stopped > this.settings.limits.resumeGraceMs;
    if (!ended && record.state === "room" && record.roomId !== undefined) {
      // Its room was closed (its partner was told `partner_left` at the grace).
      ended =
        (await rooms.get(record.roomId)) === undefined &&
        !(await nodes.alive([record.nodeId])).has(record.nodeId);
    }
    if (ended)
      await Promise.all([
        this.store.sessions.delete(record.sessionId),
        this.store.mailbox.drain(record.sessionId),
      ]);
    return ended;
  }

  private issueTicket(entry: Omit<Ticket, "timer">, lastSeen: string | undefined): ResumeTicket {
    const ticket: ResumeTicket = { sessionId: entry.session.id };
    const timer = this.settings.clock.after(TICKET_TTL_MS, () => this.giveBack(ticket));
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
    entry.timer.cancel();
    const { session } = entry;
    if (session.isClosed()) return;
    const freshHash = hashToken(entry.token);
    if (entry.fromNode === undefined) {
      session.resumeAbandoned(freshHash, entry.before);
      return;
    }
    // Rebuilt here for nothing: the record goes back to its node, with the token the client has.
    session.halt();
    this.host.forget(session);
    const swapped = storedTokenHash({ current: freshHash, previous: entry.presented });
    this.store.sessions
      .takeover(
        session.id,
        swapped,
        entry.fromNode,
        storedTokenHash(entry.before),
        this.settings.sessionRecordTtlMs,
      )
      .catch((error) => this.events.emit("error", { error, sessionId: session.id }));
  }
}

function bannedMessage(ban: BanRecord): string {
  const until = ban.until === undefined ? "" : ` until ${new Date(ban.until).toISOString()}`;
  return `you are banned${until}`;
}

/** One handshake parameter: `undefined` when absent, `null` when malformed. */
function param(value: string | string[] | undefined): string | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_PARAM_CHARS) return null;
  return value;
}
