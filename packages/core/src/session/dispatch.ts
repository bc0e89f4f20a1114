import type { Identity, Reply } from "../connection.js";
import { CloseCode, WhisperError } from "../errors.js";
import type { SessionInfo } from "../events.js";
import type { ClientFrame, MessageRequestFrame, ReplyFrame } from "../protocol.js";
import type { HubSettings } from "../settings.js";
import type { StoredMessage } from "../store.js";
import { FrameError, parseClientFrame, validateClientFrame } from "../validate.js";
import { LocalBuckets } from "./buckets.js";
import { errorFrame, internalError, requestIdOf, TOO_FAST, withId } from "./frames.js";
import type { SessionHost } from "./host.js";
import type { PlaceMachine } from "./place.js";
import { RelayQueue, type RelaySender } from "./relay-queue.js";
import type { RequestQueue } from "./requests.js";

/** What the request dispatch needs from its session. */
export interface DispatchOwner {
  readonly id: string;
  readonly identity: Identity;
  isClosed(): boolean;
  info(): SessionInfo;
  /** Sends the answer to a request (through its reply callback, or the connection). */
  answer(frame: ReplyFrame, reply: Reply | undefined): void;
  /** A failure inside the session, for the hub's `error` event. */
  reportError(error: unknown): void;
  /** Runs a background task; its failure is reported. */
  run(work: Promise<unknown>): void;
  /** Ends the session, closing the connection with `code` and `reason`. */
  terminate(code: number, reason: string): Promise<void>;
  /** `auth` checked a fresh credential: the session expires with it from now on. */
  credentialRefreshed(refreshed: Identity): void;
}

/**
 * A session's requests, from the client's frame to its answer (docs/design.md, "The path of a
 * message"): the bound on requests in flight, parsing and validation, the session's own limits
 * and the 1008 close after too many refusals in a row, the authorisation hook, then the request
 * itself (a move of the place, a chat message for the {@link RelayQueue}, `ping`, `auth`).
 * Requests run one at a time, in order, on the session's {@link RequestQueue}; a chat message
 * lets the next request start once it is queued, and every other answer waits for the queue.
 */
export class Dispatcher implements RelaySender {
  /** Chat messages on their way to the store and the partner. */
  readonly relay: RelayQueue;
  private readonly buckets: LocalBuckets;
  private readonly settings: HubSettings;
  /** `rate_limited` answers in a row (see `floodCloseAfter`). */
  private strikes = 0;

  constructor(
    private readonly host: SessionHost,
    private readonly owner: DispatchOwner,
    private readonly place: PlaceMachine,
    private readonly requests: RequestQueue,
  ) {
    this.settings = host.settings;
    this.buckets = new LocalBuckets(host.settings);
    this.relay = new RelayQueue(host, this);
  }

  get id(): string {
    return this.owner.id;
  }

  userId(): string {
    return this.owner.identity.userId;
  }

  /** A frame (or a binary-frame error) from the client: queued, or refused if too many are in flight. */
  enqueue(input: unknown, reply: Reply | undefined): void {
    if (this.owner.isClosed()) return;
    if (this.requests.pending >= this.settings.maxPendingRequests) {
      this.host.counters.limit("requests", this.owner.id);
      const message = "too many requests in flight; wait for answers";
      const refusal: ReplyFrame = { type: "error", code: "rate_limited", message, retryAfterMs: 100 };
      this.owner.answer(withId(refusal, requestIdOf(input)), reply);
      return;
    }
    this.requests.pending++;
    this.requests.schedule(async () => {
      try {
        await this.process(input, reply);
      } catch (error) {
        this.owner.reportError(error);
        this.owner.answer(internalError(undefined), reply);
      } finally {
        this.requests.pending--;
      }
    });
  }

  private async process(input: unknown, reply: Reply | undefined): Promise<void> {
    const { owner } = this;
    if (owner.isClosed()) return;
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
        this.host.counters.error(error.code, owner.id);
        owner.answer(errorFrame(error, error.requestId), reply);
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
      if (authorize !== undefined) {
        const context = { sessionId: owner.id, roomId: this.place.room()?.roomId };
        const allowed = authorize(owner.identity, frame.type, context);
        // A plain answer is taken as it is: awaiting it would cost every message a microtask.
        if (!(typeof allowed === "boolean" ? allowed : await allowed))
          throw new WhisperError("forbidden", `you are not allowed to ${frame.type}`);
      }
      await this.handle(frame, reply);
    } catch (error) {
      await this.relay.relayed();
      if (error instanceof WhisperError && error.code !== "internal") {
        this.fail(error, frame.id, reply);
        return;
      }
      this.host.counters.error("internal", owner.id);
      owner.reportError(error);
      owner.answer(internalError(frame.id), reply);
    }
  }

  private async handle(frame: ClientFrame, reply: Reply | undefined): Promise<void> {
    switch (frame.type) {
      case "ping":
        this.owner.answer(withId({ type: "pong" }, frame.id), reply);
        return;
      case "join": {
        // The exact point and range go no further: matching, the pool and the session record
        // only ever see the snapped point and the rounded range (see privacy.ts).
        const { lat, lng } = frame.location;
        const params = this.settings.grid.obfuscate(lat, lng, frame.rangeKm);
        return this.place.join(params, frame.name, frame.id, reply);
      }
      case "message":
        return this.message(frame, reply);
      case "typing":
        // Best effort: dropped outside a room (it may race with partner_left) and when limited.
        if (this.place.room() === undefined || !this.buckets.consume("typing", 1).allowed) return;
        // Dropped while a message would be refused: typing must not outlast the rate.
        if (this.buckets.consume("message", 0).level + 1 > this.settings.messageRate.capacity) return;
        return this.place.typing(frame.active);
      case "next":
        return this.place.next(frame.id, reply);
      case "leave":
        await this.place.leave("left"); // idle already: nothing to change, nothing to write
        this.owner.answer(withId({ type: "ack", ts: this.settings.now() }, frame.id), reply);
        return;
      case "block":
        return this.place.block(frame.reason, frame.id, reply);
      case "auth": {
        // Checking a token costs CPU (a signature): a few per session, then `rate_limited`.
        const limit = this.buckets.consume("auth", 1);
        if (!limit.allowed) {
          const why = "you are refreshing your token too often";
          await this.refuse("auth", why, limit.retryAfterMs, frame.id, reply);
          return;
        }
        const refreshed = await this.host.reauthenticate(frame.token, this.owner.identity);
        this.owner.credentialRefreshed(refreshed);
        this.owner.answer(withId({ type: "ack", ts: this.settings.now() }, frame.id), reply);
        return;
      }
    }
  }

  /**
   * A chat message: a resend is acked again, anything else passes the session's checks and joins
   * the relay queue, and the next request may start (see {@link RelayQueue}).
   */
  private async message(frame: MessageRequestFrame, reply: Reply | undefined): Promise<void> {
    const requestId = frame.id;
    if (requestId !== undefined && this.relay.has(requestId)) {
      await this.relay.relayed(); // a resend of a message still on its way: answer it as a resend
    }
    const seen = requestId === undefined ? undefined : this.relay.ackOf(requestId);
    if (seen !== undefined) {
      // A resend (e.g. after a reconnect) of a message that was already delivered: ack it again.
      await this.relay.relayed();
      this.owner.answer(withId({ type: "ack", messageId: seen.messageId, ts: seen.ts }, requestId), reply);
      return;
    }
    const room = this.place.room();
    if (room === undefined) {
      await this.relay.relayed();
      throw new WhisperError("not_in_room", "you are not in a room: wait for `matched`");
    }
    const local = this.buckets.consume("message", 1);
    if (!local.allowed) {
      await this.relay.relayed();
      await this.refuse("message", TOO_FAST, local.retryAfterMs, requestId, reply);
      return;
    }
    this.requests.pending++;
    const stored: StoredMessage = {
      messageId: this.host.nextMessageId(),
      from: this.owner.id,
      text: frame.text,
      ts: this.settings.now(),
    };
    if (requestId !== undefined) stored.requestId = requestId;
    this.relay.push({ frame, reply, roomId: room.roomId, partner: room.partner, stored });
  }

  // ------------------------------------------------------------------------------------------
  // The relay queue's side (see RelaySender)

  answer(frame: ReplyFrame, reply: Reply | undefined): void {
    this.owner.answer(frame, reply);
  }

  /** A chat message of this session was stored and handed to the partner. */
  sent(roomId: string, { messageId, text, ts }: StoredMessage): void {
    this.strikes = 0;
    this.host.counters.message();
    if (this.host.events.listenerCount("message") > 0) {
      this.host.events.emit("message", { ...this.owner.info(), roomId, messageId, text, ts });
    }
  }

  /** A chat message refused by the per-user bucket. */
  refuseMessage(retryAfterMs: number, id: string | undefined, reply: Reply | undefined): Promise<void> {
    return this.refuse("message", TOO_FAST, retryAfterMs, id, reply);
  }

  /** The store said the room is closed. */
  roomClosed(roomId: string): void {
    this.place.checkRoomSoon(roomId);
  }

  /** One queued chat message was answered. */
  settled(): void {
    this.requests.pending--;
  }

  /** Answers a request with an error (counted). */
  fail(error: WhisperError, id: string | undefined, reply: Reply | undefined): void {
    this.host.counters.error(error.code, this.owner.id);
    this.owner.answer(errorFrame(error, id), reply);
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
    const { owner } = this;
    if (owner.isClosed()) return;
    this.strikes++;
    this.host.counters.limit(kind, owner.id);
    if (this.strikes >= this.settings.floodCloseAfter) {
      // Not awaited: ending waits for the relay queue, which may be what is running this.
      owner.run(owner.terminate(CloseCode.Policy, "flooding after repeated rate_limited"));
      return;
    }
    this.fail(new WhisperError("rate_limited", why, { retryAfterMs }), id, reply);
  }
}
