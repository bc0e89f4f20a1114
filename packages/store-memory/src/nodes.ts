import { NODE_MEMORY_MS, type NodeStore } from "@whisperchat/core";

/**
 * Node heartbeats: nodeId → when the node is seen as dead. Expired heartbeats are dropped when
 * read and by {@link MemoryNodes.sweep}.
 */
export class MemoryNodes implements NodeStore {
  readonly #until = new Map<string, number>();
  /** When each node's last heartbeat expires (or expired), kept {@link NODE_MEMORY_MS} past it. */
  readonly #lastUntil = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  async heartbeat(nodeId: string, ttlMs: number): Promise<void> {
    if (Number.isNaN(ttlMs)) throw new RangeError("nodes.heartbeat: ttlMs must be a number of milliseconds");
    const now = this.#now();
    const until = now + ttlMs;
    if (until <= now) {
      this.#until.delete(nodeId);
      this.#lastUntil.delete(nodeId);
    } else {
      this.#until.set(nodeId, until);
      this.#lastUntil.set(nodeId, until);
    }
  }

  async alive(nodeIds: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    if (nodeIds.length === 0) return out;
    const now = this.#now();
    for (const nodeId of nodeIds) {
      const until = this.#until.get(nodeId);
      if (until === undefined) continue;
      if (until > now) out.add(nodeId);
      else this.#until.delete(nodeId);
    }
    return out;
  }

  async remove(nodeId: string): Promise<void> {
    this.#until.delete(nodeId);
    this.#lastUntil.delete(nodeId);
  }

  async deadSince(nodeIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const now = this.#now();
    for (const nodeId of nodeIds) {
      const until = this.#lastUntil.get(nodeId);
      if (until !== undefined && until <= now && now - until < NODE_MEMORY_MS) out.set(nodeId, until);
    }
    return out;
  }

  /** Drops every expired heartbeat. */
  sweep(now: number): void {
    for (const [nodeId, until] of this.#until) {
      if (until <= now) this.#until.delete(nodeId);
    }
    for (const [nodeId, until] of this.#lastUntil) {
      if (now - until >= NODE_MEMORY_MS) this.#lastUntil.delete(nodeId);
    }
  }

  /** How many nodes are held, including expired ones not yet swept. */
  get count(): number {
    return this.#until.size;
  }

  clear(): void {
    this.#until.clear();
    this.#lastUntil.clear();
  }
}
