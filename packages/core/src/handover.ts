import type { Router } from "./router.js";
import type { HubSettings } from "./settings.js";
import type { ReleasedMessage, SessionSnapshot, Store } from "./store.js";

/** How long a resuming node waits for the old node to hand a session over. */
const RELEASE_TIMEOUT_MS = 2000;

/**
 * Whether a node holds its bus subscription: it is sent an answer to a hand-over nobody waits for
 * (`released` for no session, which a node ignores). A killed node's subscription goes with its
 * store connection at once, long before its heartbeat expires. A failed publish counts as there.
 */
export async function reachable(store: Store, nodeId: string): Promise<boolean> {
  return store.bus.publish(nodeId, { kind: "released", to: "", snapshot: null }).catch(() => true);
}

/** A session as the hand-over sees it on the node that gives it up. */
export interface Releasable {
  /** Stops it here without ending it; resolves the state to carry over. */
  release(): Promise<SessionSnapshot>;
}

/**
 * The hand-over of a session resumed on another node (docs/protocol.md section 5): the new node
 * asks the old one with a `release` on the bus; the old one stops the session, keeps forwarding
 * frames still addressed to it, and answers `released` with its state (`null` when it no longer
 * has it). A dead or silent old node answers nothing: the new node goes on from the stored
 * record after {@link RELEASE_TIMEOUT_MS}.
 */
export class Handover {
  private readonly waiting = new Map<string, (snapshot: SessionSnapshot | null) => void>();

  constructor(
    private readonly nodeId: string,
    private readonly store: Store,
    private readonly settings: HubSettings,
    private readonly router: Router,
    /** Takes a session off this node's books (it moves); `undefined` if it is not here. */
    private readonly takeLocal: (sessionId: string) => Releasable | undefined,
  ) {}

  /** Asks the old node to hand the session over; resolves its snapshot, or `null` if it is gone. */
  request(sessionId: string, oldNode: string): Promise<SessionSnapshot | null> {
    if (oldNode === this.nodeId) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = this.settings.clock.after(RELEASE_TIMEOUT_MS, () => {
        this.waiting.delete(sessionId);
        resolve(null);
      });
      this.waiting.set(sessionId, (snapshot) => {
        timer.cancel();
        this.waiting.delete(sessionId);
        resolve(snapshot);
      });
      this.store.bus.publish(oldNode, { kind: "release", to: sessionId, nodeId: this.nodeId }).then(
        (routed) => {
          if (!routed) this.waiting.get(sessionId)?.(null);
        },
        () => this.waiting.get(sessionId)?.(null),
      );
    });
  }

  /** The old node's answer. */
  released(message: ReleasedMessage): void {
    this.waiting.get(message.to)?.(message.snapshot);
  }

  /** Another node resumed one of our sessions: hand it over and forward what still comes here. */
  async release(sessionId: string, nodeId: string): Promise<void> {
    const session = this.takeLocal(sessionId);
    // Forwarding is only needed while frames addressed here are in flight.
    this.router.forward(sessionId, nodeId, this.settings.sessionRecordTtlMs);
    const snapshot = session === undefined ? null : await session.release();
    await this.store.bus.publish(nodeId, { kind: "released", to: sessionId, snapshot });
  }
}
