import type { Connection, Identity, Reply, SessionLink } from "./connection.js";
import { CloseCode, WhisperError } from "./errors.js";
import type { HubSettings, SessionInfo, WhisperHub } from "./hub.js";
import { randomId } from "./ids.js";
import type {
  BlockFrame,
  ClientFrame,
  ErrorFrame,
  JoinFrame,
  LatLng,
  MessageRequestFrame,
  ReplyFrame,
  ServerFrame,
} from "./protocol.js";
import type { BusMessage, PoolEntry, RoomMember } from "./store.js";
import { FrameError, parseClientFrame, validateClientFrame } from "./validate.js";

/**
 * The states of a session (DESIGN.md, invariant 1). `away` (dropped, within the resume grace)
 * joins with resume.
 *
 * ```
 *   idle ──join──> waiting ──matched──> room
 *    ▲  <──leave──    ▲ <──next/block──  │
 *    └──────leave / partner_left─────────┘      any ──connection closed──> closed
 * ```
 */
export type SessionState = "idle" | "waiting" | "room" | "closed";

interface JoinParams {
  location: LatLng;
  rangeKm: number;
}

/** One client session on this node. Requests are handled one at a time, in order. */
export class Session {
  state: SessionState = "idle";
  readonly link: SessionLink;
  private roomId: string | undefined;
  private partner: RoomMember | undefined;
  private lastJoin: JoinParams | undefined;
  private since = 0;
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private strikes = 0;
  /** Who the session is; a guest's name changes with `join`. */
  identity: Identity;

  constructor(
    private readonly hub: WhisperHub,
    private readonly settings: HubSettings,
    identity: Identity,
    private readonly conn: Connection,
    readonly id: string,
  ) {
    this.identity = identity;
    this.link = {
      sessionId: id,
      receiveText: (text) => this.enqueue(text, undefined),
      receive: (frame, reply) => this.enqueue(frame, reply),
      receiveBinary: () =>
        this.enqueue(
          new FrameError("bad_request", "binary frames are not supported; send JSON text"),
          undefined,
        ),
      closed: (code) => {
        this.terminate(code, undefined).catch((error) =>
          this.hub.emit("error", { error, sessionId: this.id }),
        );
      },
    };
  }

  /** Whether the session ended (a method, so that checks after an `await` are not narrowed away). */
  isClosed(): boolean {
    return this.state === "closed";
  }

  info(): SessionInfo {
    return { sessionId: this.id, identity: this.identity };
  }

  // ------------------------------------------------------------------------------------------
  // Inbound requests

  private enqueue(input: unknown, reply: Reply | undefined): void {
    if (this.state === "closed") return;
    if (this.pending >= this.settings.maxPendingRequests) {
      this.answer(
        {
          type: "error",
          code: "rate_limited",
          message: "too many requests in flight; wait for answers",
          retryAfterMs: 100,
        },
        reply,
      );
      return;
    }
    this.pending++;
    this.tail = this.tail
      .then(() => this.process(input, reply))
      .catch((error: unknown) => {
        this.hub.emit("error", { error, sessionId: this.id });
        this.answer(
          { type: "error", code: "internal", message: "the server failed to handle this request" },
          reply,
        );
      })
      .finally(() => {
        this.pending--;
      });
  }

  private async process(input: unknown, reply: Reply | undefined): Promise<void> {
    if (this.state === "closed") return;
    let frame: ClientFrame;
    try {
      if (input instanceof FrameError) throw input;
      frame =
        typeof input === "string"
          ? parseClientFrame(input, this.settings.limits)
          : validateClientFrame(input, this.settings.limits);
    } catch (error) {
      if (error instanceof FrameError) {
        this.answer(errorFrame(error, error.requestId), reply);
        return;
      }
      throw error;
    }
    try {
      await this.handle(frame, reply);
    } catch (error) {
      if (error instanceof WhisperError && error.code !== "internal") {
        this.answer(errorFrame(error, frame.id), reply);
        return;
      }
      this.hub.emit("error", { error, sessionId: this.id });
      this.answer(
        withId(
          { type: "error", code: "internal", message: "the server failed to handle this request" },
          frame.id,
        ),
        reply,
      );
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
        // Best effort: dropped outside a room (it may race with partner_left).
        if (this.state === "room" && this.partner !== undefined && this.roomId !== undefined) {
          await this.hub.route(this.partner, {
            to: this.partner.sessionId,
            roomId: this.roomId,
            frame: { type: "typing", active: frame.active },
          });
        }
        return;
      case "next":
        return this.next(frame.id, reply);
      case "leave":
        await this.leaveRoomOrPool("left");
        this.answer(withId({ type: "ack", ts: this.settings.now() }, frame.id), reply);
        return;
      case "block":
        return this.block(frame, reply);
      case "auth":
        throw new WhisperError("unauthorized", "token refresh is not supported by this server yet");
    }
  }

  private async join(frame: JoinFrame, reply: Reply | undefined): Promise<void> {
    if (this.state === "room")
      throw new WhisperError("in_room", "you are in a room: send `next` or `leave` first");
    if (frame.name !== undefined && this.identity.guest === true) {
      this.identity = { ...this.identity, name: frame.name };
    }
    const params: JoinParams = { location: frame.location, rangeKm: frame.rangeKm };
    if (this.state === "waiting") {
      // An update: take the entry out first; if it is already gone, we were just claimed.
      const removed = await this.hub.store.pool.remove(this.id);
      if (!removed)
        throw new WhisperError("in_room", "you were just matched: a `matched` frame is on its way");
      await this.enterPool(params, this.since, frame.id, reply);
      return;
    }
    await this.enterPool(params, this.settings.now(), frame.id, reply);
  }

  private async enterPool(
    params: JoinParams,
    since: number,
    id: string | undefined,
    reply: Reply | undefined,
  ): Promise<void> {
    if (this.state === "closed") return;
    this.lastJoin = params;
    this.since = since;
    this.state = "waiting";
    const entry: PoolEntry = {
      sessionId: this.id,
      userId: this.identity.userId,
      nodeId: this.hub.nodeId,
      name: this.identity.name,
      lat: params.location.lat,
      lng: params.location.lng,
      rangeKm: params.rangeKm,
      since,
    };
    await this.hub.store.pool.add(entry);
    if (this.isClosed()) {
      // The connection closed while the entry was being added: take it back out.
      await this.hub.store.pool.remove(this.id);
      return;
    }
    this.answer(withId({ type: "waiting", since }, id), reply);
    this.hub.emit("waiting", { ...this.info(), since });
    // Insert, then search: the answer `waiting` always precedes `matched`.
    if (!this.isClosed() && this.state === "waiting") await this.hub.match(entry, this);
  }

  private async message(frame: MessageRequestFrame, reply: Reply | undefined): Promise<void> {
    const partner = this.partner;
    const roomId = this.roomId;
    if (this.state !== "room" || partner === undefined || roomId === undefined) {
      throw new WhisperError("not_in_room", "you are not in a room: wait for `matched`");
    }
    const limit = await this.hub.store.limiter.consume(`msg:${this.id}`, this.settings.messageRate, 1);
    if (!limit.allowed) {
      this.strikes++;
      if (this.strikes >= this.settings.floodCloseAfter) {
        await this.terminate(CloseCode.Policy, "flooding after repeated rate_limited");
        return;
      }
      throw new WhisperError("rate_limited", "you are sending messages too fast", {
        retryAfterMs: limit.retryAfterMs,
      });
    }
    this.strikes = 0;
    const ts = this.settings.now();
    const messageId = randomId(9);
    const stored = await this.hub.store.rooms.append(
      roomId,
      { messageId, from: this.id, text: frame.text, ts },
      this.settings.historyLimit,
    );
    if (!stored || this.roomId !== roomId) throw new WhisperError("not_in_room", "the room was closed");
    const delivered = await this.hub.route(partner, {
      to: partner.sessionId,
      roomId,
      frame: { type: "message", roomId, messageId, text: frame.text, ts },
    });
    if (!delivered) throw new WhisperError("not_in_room", "your partner is gone");
    this.hub.countMessage();
    this.answer(withId({ type: "ack", messageId, ts }, frame.id), reply);
    this.hub.emit("message", { ...this.info(), roomId, messageId, text: frame.text, ts });
  }

  private async next(id: string | undefined, reply: Reply | undefined): Promise<void> {
    if (this.state === "waiting") {
      this.answer(withId({ type: "waiting", since: this.since }, id), reply);
      return;
    }
    const params = this.lastJoin;
    if (params === undefined)
      throw new WhisperError("not_in_room", "nothing to go next from: send `join` first");
    const partner = this.partner;
    if (this.state === "room" && partner !== undefined) {
      await this.hub.store.exclusions.add(this.identity.userId, partner.userId, this.settings.nextCooldownMs);
      await this.leaveRoomOrPool("next");
    }
    await this.enterPool(params, this.settings.now(), id, reply);
  }

  private async block(frame: BlockFrame, reply: Reply | undefined): Promise<void> {
    const partner = this.partner;
    const roomId = this.roomId;
    const params = this.lastJoin;
    if (this.state !== "room" || partner === undefined || roomId === undefined || params === undefined) {
      throw new WhisperError("not_in_room", "there is nobody to block: you are not in a room");
    }
    await this.hub.store.exclusions.add(this.identity.userId, partner.userId);
    this.hub.emit("blocked", { ...this.info(), roomId, blockedUserId: partner.userId, reason: frame.reason });
    await this.leaveRoomOrPool("left", "blocked");
    await this.enterPool(params, this.settings.now(), frame.id, reply);
  }

  /** Leaves the room (telling the partner `reason`) or the pool; the session becomes idle. */
  private async leaveRoomOrPool(
    reason: "left" | "next" | "disconnected",
    event: "left" | "next" | "disconnected" | "blocked" = reason,
  ): Promise<void> {
    const { state, roomId } = this;
    this.state = this.state === "closed" ? "closed" : "idle";
    this.roomId = undefined;
    this.partner = undefined;
    if (state === "waiting") {
      await this.hub.store.pool.remove(this.id);
    } else if (state === "room" && roomId !== undefined) {
      this.hub.emit("left", { ...this.info(), roomId, reason: event });
      await this.hub.closeRoom(roomId, this.id, reason);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Outbound

  /** A room frame routed to this session (from its partner, or from a match). */
  deliver(message: BusMessage): void {
    const frame = message.frame;
    if (frame.type === "matched") {
      if (this.state !== "waiting" || message.partner === undefined) {
        // We left the pool (or closed) after being claimed: undo the room for the partner.
        this.hub
          .closeRoom(message.roomId, this.id, this.state === "closed" ? "disconnected" : "left")
          .catch((error) => this.hub.emit("error", { error, sessionId: this.id }));
        return;
      }
      this.state = "room";
      this.roomId = message.roomId;
      this.partner = message.partner;
      this.send(frame);
      return;
    }
    if (this.state !== "room" || this.roomId !== message.roomId) return;
    if (frame.type === "partner_left") {
      this.state = "idle";
      this.roomId = undefined;
      this.partner = undefined;
    }
    this.send(frame);
  }

  private answer(frame: ReplyFrame, reply: Reply | undefined): void {
    if (this.state === "closed") return;
    if (reply !== undefined) reply(frame);
    else this.send(frame);
  }

  private send(frame: ServerFrame): void {
    if (this.state === "closed") return;
    this.conn.send(frame);
    if (this.conn.bufferedAmount > this.settings.maxBufferedBytes) {
      this.terminate(CloseCode.Policy, "send buffer overflow: the client does not read").catch((error) =>
        this.hub.emit("error", { error, sessionId: this.id }),
      );
    }
  }

  /** Ends the session: closes the connection (when `code` is given by the server) and cleans up. */
  async terminate(code: number | undefined, reason: string | undefined): Promise<void> {
    if (this.state === "closed") return;
    if (reason !== undefined && code !== undefined) this.conn.close(code, reason);
    // Leaving takes the state synchronously; only then is the session marked closed.
    const leaving = this.leaveRoomOrPool("disconnected");
    this.state = "closed";
    this.hub.forget(this);
    this.hub.emit("sessionClosed", { ...this.info(), code });
    await leaving;
  }
}

function withId<T extends ReplyFrame>(frame: T, id: string | undefined): T {
  if (id !== undefined) frame.id = id;
  return frame;
}

function errorFrame(error: WhisperError, id: string | undefined): ErrorFrame {
  const frame: ErrorFrame = { type: "error", code: error.code, message: error.message };
  if (id !== undefined) frame.id = id;
  if (error.retryAfterMs !== undefined) frame.retryAfterMs = error.retryAfterMs;
  return frame;
}
