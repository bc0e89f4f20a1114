import type { Reply } from "../connection.js";
import { WhisperError } from "../errors.js";
import type { MessageRequestFrame, ReplyFrame } from "../protocol.js";
import type { RelayOutcome } from "../router.js";
import type { RoomMember, StoredMessage } from "../store.js";
import { internalError, withId } from "./frames.js";
import type { SessionHost } from "./host.js";

/** How many message ids a session remembers to recognise a resend. */
const RECENT_ACKS = 64;

/** At most this many messages go to the store in one batch. */
const RELAY_BATCH = 32;

/** Resolves in the event loop's next check phase, after the pending I/O callbacks. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A message past the session's own checks, on its way to the store and the partner. */
export interface Outgoing {
  frame: MessageRequestFrame;
  reply: Reply | undefined;
  roomId: string;
  partner: RoomMember;
  stored: StoredMessage;
}

/** What an ack said: the message's id and time. */
export interface Ack {
  messageId: string;
  ts: number;
}

/** The session side of a relay queue: where answers and outcomes go. */
export interface RelaySender {
  readonly id: string;
  /** The sending user (the per-user bucket's key). */
  userId(): string;
  /** Sends the answer to a request. */
  answer(frame: ReplyFrame, reply: Reply | undefined): void;
  /** A message refused by a limit (`rate_limited`, or the close after too many in a row). */
  refuseMessage(retryAfterMs: number, id: string | undefined, reply: Reply | undefined): Promise<void>;
  /** A message refused with an error (counted). */
  fail(error: WhisperError, id: string | undefined, reply: Reply | undefined): void;
  /** The store said the room is closed: check whether it was lost (see `Session.checkRoomSoon`). */
  roomClosed(roomId: string): void;
  /** A message was stored and handed to the partner. */
  sent(roomId: string, message: StoredMessage): void;
  /** One queued request was answered. */
  settled(): void;
}

/**
 * A session's outgoing chat messages (docs/design.md, "The path of a message"). Once the
 * session's own checks pass, a message joins the queue and the next request may start: the queue
 * goes to the store in batches (one batch while the previous one is on its way), so a networked
 * store costs one round trip per batch, not three per message. With a store relay, a batch leaves
 * at the end of the event-loop turn, so that the messages read from the socket together also go
 * to the store together. Answers still go out in request order: every other request, and every
 * refusal, waits for the queue first (see {@link RelayQueue.relayed}).
 */
export class RelayQueue {
  private readonly queue: Outgoing[] = [];
  /** The batch on its way to the store. */
  private batch: Outgoing[] | undefined;
  /** Set while the queue is being sent. */
  private relaying: Promise<void> | undefined;
  /** The acks of the latest request ids, so that a resent message is not delivered twice. */
  private acks: Map<string, Ack> | undefined;

  constructor(
    private readonly host: SessionHost,
    private readonly sender: RelaySender,
  ) {}

  /** Queues a message; the queue starts moving if it was still. */
  push(message: Outgoing): void {
    this.queue.push(message);
    this.relaying ??=
      this.host.store.relay === undefined ? this.relay() : nextTurn().then(() => this.relay());
  }

  /** Resolves once every queued message was stored and answered. */
  async relayed(): Promise<void> {
    while (this.relaying !== undefined) await this.relaying;
  }

  /** Whether a message with this request id is queued or on its way. */
  has(requestId: string): boolean {
    if (this.relaying === undefined) return false;
    return (
      this.queue.some((o) => o.frame.id === requestId) ||
      (this.batch?.some((o) => o.frame.id === requestId) ?? false)
    );
  }

  /** The ack given to a message sent with this request id, if it is among the latest. */
  ackOf(requestId: string): Ack | undefined {
    return this.acks?.get(requestId);
  }

  /** Remembers the ack of a message (for resends). */
  remember(requestId: string, ack: Ack): void {
    this.acks ??= new Map();
    this.acks.set(requestId, ack);
    if (this.acks.size > RECENT_ACKS) this.acks.delete(this.acks.keys().next().value as string);
  }

  /**
   * Learns the acks of this session's own messages in a room's history (after a move to another
   * node the window of recent acks starts empty): a resend of one is acked again, not delivered
   * twice.
   */
  rememberFrom(history: readonly StoredMessage[]): void {
    for (const m of history) {
      if (m.from === this.sender.id && m.requestId !== undefined)
        this.remember(m.requestId, { messageId: m.messageId, ts: m.ts });
    }
  }

  /** Sends the queue to the store, a batch (one room, at most {@link RELAY_BATCH}) at a time. */
  private async relay(): Promise<void> {
    try {
      const queue = this.queue;
      while (queue.length > 0) {
        const roomId = (queue[0] as Outgoing).roomId;
        let n = 1;
        while (n < queue.length && n < RELAY_BATCH && (queue[n] as Outgoing).roomId === roomId) n++;
        const batch = queue.splice(0, n);
        this.batch = batch;
        await this.relayOne(batch).catch((error) =>
          this.host.events.emit("error", { error, sessionId: this.sender.id }),
        );
      }
    } finally {
      this.batch = undefined;
      this.relaying = undefined;
    }
  }

  private async relayOne(batch: Outgoing[]): Promise<void> {
    const { sender, host } = this;
    const { roomId, partner } = batch[0] as Outgoing;
    let outcomes: RelayOutcome[];
    try {
      outcomes = await host.router.relay(
        sender.userId(),
        roomId,
        partner,
        batch.map((o) => o.stored),
      );
    } catch (error) {
      host.events.emit("error", { error, sessionId: sender.id });
      for (const o of batch) {
        sender.settled();
        host.counters.error("internal", sender.id);
        sender.answer(internalError(o.frame.id), o.reply);
      }
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const o = batch[i] as Outgoing;
      const outcome = outcomes[i] as RelayOutcome;
      sender.settled();
      if (outcome.status === "limited") {
        await sender.refuseMessage(outcome.retryAfterMs, o.frame.id, o.reply);
        continue;
      }
      if (outcome.status !== "sent") {
        const why = outcome.status === "closed" ? "the room was closed" : "your partner is gone";
        sender.fail(new WhisperError("not_in_room", why), o.frame.id, o.reply);
        if (outcome.status === "closed") sender.roomClosed(o.roomId);
        continue;
      }
      const { messageId, ts } = o.stored;
      if (o.frame.id !== undefined) this.remember(o.frame.id, { messageId, ts });
      sender.answer(withId({ type: "ack", messageId, ts }, o.frame.id), o.reply);
      sender.sent(roomId, o.stored);
    }
  }
}
