import type { Logger } from "./observe.js";
import type { HubSettings } from "./settings.js";
import type { Store } from "./store.js";

/** Nodes missing from the store's heartbeats, sorted by how sure we are that they are dead. */
export interface DeadNodes {
  /** Silent for at least a heartbeat interval since first seen silent. */
  confirmed: Set<string>;
  /** Seen silent once: maybe dead, maybe the store just lost the heartbeats. */
  suspected: Set<string>;
}

/**
 * This node's heartbeat and its view of the other nodes' (docs/protocol.md section 6, "Store
 * outages and lost data"): a node silent for three intervals is dead, a single miss is only
 * suspected, and a store that lost this node's own heartbeat lost its data.
 */
export class Liveness {
  /** Nodes seen without a heartbeat, and since when. */
  private readonly silentSince = new Map<string, number>();
  /** When the last heartbeat that reached the store was sent. */
  private lastBeatAt: number | undefined;
  /** Set when a heartbeat failed: once the store answers again, sessions check what it kept. */
  private storeTrouble = false;

  constructor(
    private readonly nodeId: string,
    private readonly store: Store,
    private readonly settings: HubSettings,
    private readonly logger: Logger,
  ) {}

  /**
   * Tells the store this node is alive. Resolves `true` when what this node keeps in the store
   * must be put back: its own heartbeat vanished before its ttl (the store lost its data), this
   * node was silent past its ttl (frozen, e.g. SIGSTOP or a long GC pause: the other nodes took
   * it for dead, dropped its pool entries and closed its rooms), or the store could not be
   * reached for a while.
   */
  async beat(): Promise<boolean> {
    const interval = this.settings.nodeHeartbeatMs;
    const ttl = interval * 3;
    const startedAt = this.settings.now();
    let lost = false;
    const last = this.lastBeatAt;
    const silent = last !== undefined && startedAt - last >= ttl;
    try {
      if (last !== undefined && startedAt - last < ttl - interval / 2) {
        lost = !(await this.store.nodes.alive([this.nodeId])).has(this.nodeId);
      }
      await this.store.nodes.heartbeat(this.nodeId, ttl);
    } catch (error) {
      this.storeTrouble = true;
      throw error;
    }
    this.lastBeatAt = startedAt;
    if (!lost && !silent && !this.storeTrouble) return false;
    this.storeTrouble = false;
    if (lost) this.logger.warn({ nodeId: this.nodeId }, "the store lost its data: restoring sessions");
    if (silent) this.logger.warn({ nodeId: this.nodeId }, "this node was silent past its heartbeat ttl");
    return true;
  }

  /** Sorts `nodes` by the store's heartbeats into dead, suspected and (left out) alive. */
  async dead(nodes: Iterable<string>): Promise<DeadNodes> {
    const list = [...nodes];
    return this.deadAmong(list, await this.store.nodes.alive(list));
  }

  /**
   * Ends a session of a dead node whose grace is over: its record and mailbox go, so a late
   * resume gets a fresh session. Nothing happens if it resumed elsewhere meanwhile (its record
   * names another node) or its node is alive after all.
   */
  async endOrphan(sessionId: string, deadNode: string): Promise<void> {
    const record = await this.store.sessions.get(sessionId);
    if (record === undefined || record.nodeId !== deadNode) return;
    if ((await this.store.nodes.alive([deadNode])).has(deadNode)) return;
    await Promise.all([this.store.sessions.delete(sessionId), this.store.mailbox.drain(sessionId)]);
  }

  /**
   * Sorts nodes missing from `alive` into suspected (first seen silent) and confirmed (silent
   * for at least a heartbeat interval since). A single miss is not death: after a store restart
   * every node looks silent until its next heartbeat.
   */
  private deadAmong(nodes: Iterable<string>, alive: Set<string>): DeadNodes {
    const now = this.settings.now();
    const confirmed = new Set<string>();
    const suspected = new Set<string>();
    for (const node of nodes) {
      if (alive.has(node)) {
        this.silentSince.delete(node);
        continue;
      }
      const since = this.silentSince.get(node);
      if (since === undefined) {
        this.silentSince.set(node, now);
        suspected.add(node);
      } else if (now - since >= this.settings.nodeHeartbeatMs * 0.9) {
        // Seen missing one heartbeat ago (a little less: ticks jitter, and a tick that confirms
        // late would push the partner's notice a whole interval past the documented bound).
        confirmed.add(node);
      } else suspected.add(node);
    }
    if (this.silentSince.size > 10_000) this.silentSince.clear(); // bounded; rebuilt as needed
    return { confirmed, suspected };
  }
}
