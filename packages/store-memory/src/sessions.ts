import type { SessionRecord, SessionStore } from "@whisperchat/core";

interface Held {
  readonly record: SessionRecord;
  /** When the record expires (ms). */
  readonly expiresAt: number;
}

/**
 * A copy of a record that shares nothing mutable with it: its `roles`, `partner` and
 * `lastJoin` are copied too. Records are small, so they are copied on the way in and out: what a
 * caller does with its objects never changes what the store holds, as with a remote store.
 */
function copy(record: SessionRecord): SessionRecord {
  const out: SessionRecord = { ...record, roles: [...record.roles] };
  if (record.partner !== undefined) out.partner = { ...record.partner };
  if (record.lastJoin !== undefined) out.lastJoin = { ...record.lastJoin };
  return out;
}

function checkTtl(method: string, ttlMs: number): void {
  if (Number.isNaN(ttlMs)) throw new RangeError(`sessions.${method}: ttlMs must be a number of milliseconds`);
}

/**
 * Session records by id, each with its expiry. Every method does its work synchronously before
 * returning its promise, so `takeover` is atomic within the process: of several calls with one
 * token, the first to run wins. Expired records are dropped when read and by
 * {@link MemorySessions.sweep}. A ttl of 0 or less leaves nothing stored.
 */
export class MemorySessions implements SessionStore {
  readonly #held = new Map<string, Held>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  async put(record: SessionRecord, ttlMs: number): Promise<void> {
    checkTtl("put", ttlMs);
    this.#set(record.sessionId, copy(record), this.#now(), ttlMs);
  }

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    const held = this.#live(sessionId, this.#now());
    return held === undefined ? undefined : copy(held.record);
  }

  async delete(sessionId: string): Promise<boolean> {
    const live = this.#live(sessionId, this.#now()) !== undefined;
    this.#held.delete(sessionId);
    return live;
  }

  async takeover(
    sessionId: string,
    expectedTokenHash: string,
    nodeId: string,
    newTokenHash: string,
    ttlMs: number,
  ): Promise<SessionRecord | undefined> {
    checkTtl("takeover", ttlMs);
    const now = this.#now();
    const held = this.#live(sessionId, now);
    if (held === undefined || held.record.tokenHash !== expectedTokenHash) return undefined;
    // The stored record is never handed out, so it can be returned as the "before" state.
    this.#set(sessionId, { ...copy(held.record), tokenHash: newTokenHash, nodeId }, now, ttlMs);
    return held.record;
  }

  /** Drops every expired record. */
  sweep(now: number): void {
    for (const [sessionId, held] of this.#held) {
      if (held.expiresAt <= now) this.#held.delete(sessionId);
    }
  }

  /** How many records are held, including expired ones not yet swept. */
  get count(): number {
    return this.#held.size;
  }

  clear(): void {
    this.#held.clear();
  }

  #set(sessionId: string, record: SessionRecord, now: number, ttlMs: number): void {
    const expiresAt = now + ttlMs;
    if (expiresAt <= now) this.#held.delete(sessionId);
    else this.#held.set(sessionId, { record, expiresAt });
  }

  /** The unexpired entry, dropping an expired one. */
  #live(sessionId: string, now: number): Held | undefined {
    const held = this.#held.get(sessionId);
    if (held === undefined) return undefined;
    if (held.expiresAt > now) return held;
    this.#held.delete(sessionId);
    return undefined;
  }
}
