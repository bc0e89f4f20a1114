import type { Timer } from "../clock.js";
import type { RoomFrame, ServerFrame } from "../protocol.js";
import type { FrameMessage, StoredMessage } from "../store.js";
import type { SessionHost } from "./host.js";

/** One settled promise shared by every session that was never away. */
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * What a session keeps while its client is away and hands back on a resume (docs/protocol.md
 * section 5): frames go to the store's mailbox in order, deliveries arriving during a resume wait
 * until the mailbox was replayed, and messages replayed from the room's history are not
 * delivered a second time when they also arrive by their route.
 */
export class AwayState {
  /** Mailbox pushes while away, in order. */
  private outbox: Promise<void> = RESOLVED;
  /** Deliveries held while a resume replays the mailbox. */
  private held: FrameMessage[] | undefined;
  /**
   * The ids of the messages the last resume replayed from the room history (at most the
   * history's length), so that one arriving later by its route is not delivered twice.
   */
  private replayed: Set<string> | undefined;
  private graceTimer: Timer | undefined;

  constructor(
    private readonly host: SessionHost,
    private readonly sessionId: string,
  ) {}

  /** Keeps a frame for the resume, in the store's mailbox (after the frames kept before it). */
  keep(frame: RoomFrame): void {
    const { maxMailbox, limits } = this.host.settings;
    this.outbox = this.outbox
      .then(() => this.host.store.mailbox.push(this.sessionId, frame, maxMailbox, limits.resumeGraceMs))
      .catch((error) => {
        this.host.events.emit("error", { error, sessionId: this.sessionId });
      });
  }

  /** Resolves once every frame kept while away is in the store. */
  flushed(): Promise<void> {
    return this.outbox;
  }

  /** Starts (or restarts) the resume grace; `expire` runs when it ends. */
  startGrace(expire: () => void): void {
    this.clearGrace();
    this.graceTimer = this.host.settings.clock.after(this.host.settings.limits.resumeGraceMs, expire);
  }

  clearGrace(): void {
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
  }

  /** A resume starts: deliveries wait until the missed frames went out. */
  hold(): void {
    this.held ??= [];
  }

  /** Holds a delivery if a resume is replaying; resolves whether it did. */
  holdIfResuming(message: FrameMessage): boolean {
    if (this.held === undefined) return false;
    this.held.push(message);
    return true;
  }

  /** The deliveries held during the replay; holding stops. */
  release(): FrameMessage[] {
    const held = this.held ?? [];
    this.held = undefined;
    return held;
  }

  /** The messages the resume replayed from the history (see {@link AwayState.duplicate}). */
  replayedFromHistory(ids: Set<string>): void {
    this.replayed = ids.size > 0 ? ids : undefined;
  }

  /** Whether a frame is a message the last resume already replayed from the history. */
  duplicate(frame: ServerFrame): boolean {
    return frame.type === "message" && this.replayed?.has(frame.messageId) === true;
  }
}

/**
 * The partner's messages of a room that come after the client's cursor (`<roomId>:<messageId>`,
 * or `<roomId>:` when it got none in that room), from the room's history. An id no longer in the
 * bounded history is older than all of it. `undefined` when the cursor is of another room.
 */
export function missedMessages(
  history: readonly StoredMessage[],
  cursor: string | undefined,
  roomId: string,
  partnerSessionId: string,
): StoredMessage[] | undefined {
  if (!cursorIn(cursor, roomId) || cursor === undefined) return undefined;
  const after = cursor.slice(roomId.length + 1);
  const start = after === "" ? 0 : history.findIndex((m) => m.messageId === after) + 1;
  return history.slice(start).filter((m) => m.from === partnerSessionId);
}

/**
 * Whether the message a client's cursor names (`<roomId>:<messageId>`) is in the room's history.
 * Then every message of the room stored before that history was read is accounted for: after the
 * cursor it is in the history (and replayed from it), at or before it the client has it, and one
 * no longer in the bounded history is older than the cursor.
 */
export function cursorHeld(
  history: readonly StoredMessage[],
  cursor: string | undefined,
  roomId: string,
): boolean {
  if (!cursorIn(cursor, roomId) || cursor === undefined) return false;
  const after = cursor.slice(roomId.length + 1);
  return after !== "" && history.some((m) => m.messageId === after);
}

/** Whether a client's cursor points into `roomId`. */
export function cursorIn(cursor: string | undefined, roomId: string): boolean {
  if (cursor === undefined) return false;
  const colon = cursor.indexOf(":");
  return colon > 0 && cursor.slice(0, colon) === roomId;
}

/**
 * A session's resume token hashes: the current token's, and while the client has not shown that
 * it got that token, the one it resumed with (docs/protocol.md, "Resume": a `welcome` lost with
 * its node or its connection).
 */
export interface TokenHashes {
  current: string;
  previous: string | undefined;
}

/**
 * The `tokenHash` of a session record: the current hash, then a space and the previous one while
 * it is still taken. Stores keep it as one opaque string, so a takeover's compare-and-set swaps
 * both at once.
 */
export function storedTokenHash({ current, previous }: TokenHashes): string {
  return previous === undefined ? current : `${current} ${previous}`;
}

/** The hashes in a session record's `tokenHash` (see {@link storedTokenHash}). */
export function readTokenHash(stored: string): TokenHashes {
  const space = stored.indexOf(" ");
  return space < 0
    ? { current: stored, previous: undefined }
    : { current: stored.slice(0, space), previous: stored.slice(space + 1) };
}
