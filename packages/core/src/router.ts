import type { PartnerLeftReason } from "./protocol.js";
import type { HubSettings } from "./settings.js";
import type { FrameMessage, RelayBatch, RoomMember, Store, StoredMessage } from "./store.js";

/** What became of one message of a batch (see {@link Router.relay}). */
export type RelayOutcome =
  | { status: "sent" }
  | { status: "limited"; retryAfterMs: number }
  /** The room closed: nothing stored. */
  | { status: "closed" }
  /** Stored, but the partner's session is gone. */
  | { status: "gone" };

/** A session of this node, as the router sees it: something frames are delivered to. */
export interface Recipient {
  /**
   * Takes a room frame addressed to the session. Resolves once it was written to the connection
   * or, while the session is away, kept in its mailbox.
   */
  deliver(message: FrameMessage): Promise<void>;
}

/**
 * Where room frames go: to a session of this node, over the bus to the node that owns it, or into
 * its mailbox when its node is gone. Also stores chat messages on their way (see
 * {@link Router.relay}) and closes rooms. The path of a message is in docs/design.md.
 */
export class Router {
  /** Sessions handed to another node, for forwarding frames still addressed here. */
  private readonly moved = new Map<string, string>();

  constructor(
    private readonly nodeId: string,
    private readonly store: Store,
    private readonly settings: HubSettings,
    /** This node's sessions, by id. */
    private readonly local: ReadonlyMap<string, Recipient>,
  ) {}

  /**
   * Hands a room frame to a session on whichever node owns it. Resolves `true` once delivered
   * locally (written, or kept in its mailbox while away) or handed to the owning node.
   */
  async route(member: RoomMember, message: FrameMessage): Promise<boolean> {
    if (member.nodeId === this.nodeId) return this.deliverHere(message);
    if (await this.store.bus.publish(member.nodeId, message)) return true;
    return this.routeElsewhere(member, message);
  }

  /** A frame for a session of this node (from the bus, or from a local sender). */
  async deliverHere(message: FrameMessage): Promise<boolean> {
    const target = this.local.get(message.to);
    if (target !== undefined) {
      await target.deliver(message);
      return true;
    }
    const movedTo = this.moved.get(message.to);
    if (movedTo !== undefined)
      return this.route({ sessionId: message.to, userId: "", name: "", nodeId: movedTo }, message);
    await this.undeliverable(message);
    return false;
  }

  /** A session left for `nodeId`: frames still addressed here follow it for `ttlMs`. */
  forward(sessionId: string, nodeId: string, ttlMs: number): void {
    this.moved.set(sessionId, nodeId);
    this.settings.clock.after(ttlMs, () => this.moved.delete(sessionId));
  }

  /**
   * Stores and routes one sender's messages to one room, in order: the per-user bucket, the
   * history append and the hand-over to the partner, through the store's `relay` when it has one
   * (one round trip for the batch), else step by step. A message is stored and routed while the
   * room exists (a closed room refuses the append).
   */
  async relay(
    userId: string,
    roomId: string,
    partner: RoomMember,
    messages: readonly StoredMessage[],
  ): Promise<RelayOutcome[]> {
    const bucket = { key: `msgu:${userId}`, rule: this.settings.userMessageRate };
    const frames = messages.map(
      (m): FrameMessage => ({
        to: partner.sessionId,
        roomId,
        frame: { type: "message", roomId, messageId: m.messageId, text: m.text, ts: m.ts },
      }),
    );
    const relay = this.store.relay;
    if (relay === undefined) return this.relayStepByStep(bucket, roomId, partner, messages, frames);
    const remote = partner.nodeId !== this.nodeId;
    const batch: RelayBatch = { roomId, messages, historyLimit: this.settings.historyLimit, bucket };
    if (remote) batch.route = { nodeId: partner.nodeId, frames };
    const result = await relay.send(batch);
    const outcomes: RelayOutcome[] = [];
    for (let i = 0; i < messages.length; i++) {
      if (i >= result.allowed) outcomes.push({ status: "limited", retryAfterMs: result.retryAfterMs });
      else if (!result.stored) outcomes.push({ status: "closed" });
      else if (remote && result.routed) outcomes.push({ status: "sent" });
      else {
        // Local partner, or its node did not answer: deliver (or keep) each one as `route` does.
        const frame = frames[i] as FrameMessage;
        const ok = remote ? await this.routeElsewhere(partner, frame) : await this.deliverHere(frame);
        outcomes.push({ status: ok ? "sent" : "gone" });
      }
    }
    return outcomes;
  }

  /**
   * Closes a room on behalf of one member and tells the other member why. Only the caller that
   * actually deletes the room notifies, so a partner is told once.
   */
  async closeRoom(roomId: string, leaverSessionId: string, reason: PartnerLeftReason): Promise<void> {
    const record = await this.store.rooms.delete(roomId);
    if (record === undefined) return;
    const other = record.members[0].sessionId === leaverSessionId ? record.members[1] : record.members[0];
    await this.route(other, { to: other.sessionId, roomId, frame: { type: "partner_left", roomId, reason } });
  }

  /** A frame whose publish to `member.nodeId` reached nobody: find where the session lives now. */
  private async routeElsewhere(member: RoomMember, message: FrameMessage): Promise<boolean> {
    // The node is gone: find where the session lives now, or keep the frame for its resume.
    const record = await this.store.sessions.get(message.to);
    if (record !== undefined && record.nodeId !== member.nodeId) {
      if (record.nodeId === this.nodeId) return this.deliverHere(message);
      if (await this.store.bus.publish(record.nodeId, message)) return true;
    }
    if (record !== undefined && message.frame.type !== "matched") {
      await this.store.mailbox.push(
        message.to,
        message.frame,
        this.settings.maxMailbox,
        this.settings.limits.resumeGraceMs,
      );
      return true;
    }
    await this.undeliverable(message);
    return false;
  }

  private async relayStepByStep(
    bucket: { key: string; rule: HubSettings["userMessageRate"] },
    roomId: string,
    partner: RoomMember,
    messages: readonly StoredMessage[],
    frames: readonly FrameMessage[],
  ): Promise<RelayOutcome[]> {
    const outcomes: RelayOutcome[] = [];
    let closed = false;
    for (let i = 0; i < messages.length; i++) {
      if (closed) {
        outcomes.push({ status: "closed" });
        continue;
      }
      const limit = await this.store.limiter.consume(bucket.key, bucket.rule, 1);
      if (!limit.allowed) {
        outcomes.push({ status: "limited", retryAfterMs: limit.retryAfterMs });
        continue;
      }
      if (
        !(await this.store.rooms.append(roomId, messages[i] as StoredMessage, this.settings.historyLimit))
      ) {
        closed = true; // the room is gone: nothing more is stored
        outcomes.push({ status: "closed" });
        continue;
      }
      const ok = await this.route(partner, frames[i] as FrameMessage);
      outcomes.push({ status: ok ? "sent" : "gone" });
    }
    return outcomes;
  }

  /** A room frame for a session that is gone: a `matched` must not leave the partner hanging. */
  private async undeliverable(message: FrameMessage): Promise<void> {
    if (message.frame.type === "matched") await this.closeRoom(message.roomId, message.to, "disconnected");
  }
}
