import type { BanRecord, BanStore } from "@whisperchat/core";

/**
 * Bans by user id. A ban with `until` is dropped once that time has passed: when read, and by
 * {@link MemoryBans.sweep}; a ban without `until` lasts until removed. Records are copied on
 * the way in and out.
 */
export class MemoryBans implements BanStore {
  readonly #bans = new Map<string, BanRecord>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  async add(ban: BanRecord): Promise<void> {
    if (ban.until !== undefined && Number.isNaN(ban.until)) {
      throw new RangeError("bans.add: until must be a time in milliseconds or undefined (forever)");
    }
    // A ban that has already ended still replaces the earlier one: it leaves no ban in force.
    if (ban.until !== undefined && ban.until <= this.#now()) this.#bans.delete(ban.userId);
    else this.#bans.set(ban.userId, { ...ban });
  }

  async get(userId: string): Promise<BanRecord | undefined> {
    const ban = this.#live(userId);
    return ban === undefined ? undefined : { ...ban };
  }

  async remove(userId: string): Promise<boolean> {
    const inForce = this.#live(userId) !== undefined;
    this.#bans.delete(userId);
    return inForce;
  }

  /** Drops every ban that has ended. */
  sweep(now: number): void {
    for (const [userId, ban] of this.#bans) {
      if (ban.until !== undefined && ban.until <= now) this.#bans.delete(userId);
    }
  }

  /** How many bans are held, including ended ones not yet swept. */
  get count(): number {
    return this.#bans.size;
  }

  clear(): void {
    this.#bans.clear();
  }

  /** The ban in force, dropping an ended one. */
  #live(userId: string): BanRecord | undefined {
    const ban = this.#bans.get(userId);
    if (ban === undefined) return undefined;
    if (ban.until === undefined || ban.until > this.#now()) return ban;
    this.#bans.delete(userId);
    return undefined;
  }
}
