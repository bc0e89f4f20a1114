import type { MailboxStore, RoomFrame } from "@whisperchat/core";

interface Mailbox {
  /** Oldest first, at most the last `limit` given to `push`. */
  readonly frames: RoomFrame[];
  /** When the mailbox expires (ms): `ttlMs` after the last push. */
  expiresAt: number;
}

/**
 * Mailboxes by session id. Frames are kept as given (not copied): `drain` hands them back and
 * forgets them. Expired mailboxes are dropped when drained and by {@link MemoryMailbox.sweep}.
 */
export class MemoryMailbox implements MailboxStore {
  readonly #boxes = new Map<string, Mailbox>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  async push(sessionId: string, frame: RoomFrame, limit: number, ttlMs: number): Promise<void> {
    if (Number.isNaN(limit) || Number.isNaN(ttlMs)) {
      throw new RangeError("mailbox.push: limit and ttlMs must be numbers");
    }
    const now = this.#now();
    const keep = Math.max(0, Math.floor(limit));
    const expiresAt = now + ttlMs;
    let box = this.#boxes.get(sessionId);
    if (box !== undefined && box.expiresAt <= now) {
      this.#boxes.delete(sessionId);
      box = undefined;
    }
    if (keep === 0 || expiresAt <= now) {
      // Nothing is kept: the mailbox is empty (or expires at once).
      if (box !== undefined) this.#boxes.delete(sessionId);
      return;
    }
    if (box === undefined) {
      box = { frames: [], expiresAt };
      this.#boxes.set(sessionId, box);
    }
    box.frames.push(frame);
    box.expiresAt = expiresAt;
    const excess = box.frames.length - keep;
    if (excess > 0) box.frames.splice(0, excess);
  }

  async drain(sessionId: string): Promise<RoomFrame[]> {
    const box = this.#boxes.get(sessionId);
    if (box === undefined) return [];
    this.#boxes.delete(sessionId);
    return box.expiresAt > this.#now() ? box.frames : [];
  }

  /** Drops every expired mailbox. */
  sweep(now: number): void {
    for (const [sessionId, box] of this.#boxes) {
      if (box.expiresAt <= now) this.#boxes.delete(sessionId);
    }
  }

  /** How many mailboxes are held, including expired ones not yet swept. */
  get count(): number {
    return this.#boxes.size;
  }

  clear(): void {
    this.#boxes.clear();
  }
}
