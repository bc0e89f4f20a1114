import type { NodeStore } from "@whisperchat/core";

/**
 * Node heartbeats: nodeId → when the node is seen as dead. Expired heartbeats are dropped when
 * read and by {@link MemoryNodes.sweep}.
 */
export class MemoryNodes implements NodeStore {
  readonly #until = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  async heartbeat(nodeId: string, ttlMs: number): Promise<void> {
    if (Number.isNaN(ttlMs)) throw new RangeError("nodes.heartbeat: ttlMs must be a number of milliseconds");
    const now = this.#now();
    const until = now + ttlMs;
    if (until <= now) this.#until.delete(nodeId);
    else this.#until.set(nodeId, until);
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
  }

  /** Drops every expired heartbeat. */
  sweep(now: number): void {
    for (const [nodeId, until] of this.#until) {
      if (until <= now) this.#until.delete(nodeId);
    }
  }

  /** How many nodes are held, including expired ones not yet swept. */
  get count(): number {
    return this.#until.size;
  }

  clear(): void {
    this.#until.clear();
  }
}
