import type { BusMessage, BusStore } from "@whisperchat/core";

interface Subscription {
  readonly handler: (message: BusMessage) => void;
  active: boolean;
}

/**
 * Routing between the hubs of one process: a Map nodeId → handler. Messages are delivered in a
 * microtask, never during `publish`, and in the order they were published (microtasks run
 * first in, first out).
 */
export class MemoryBus implements BusStore {
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #onHandlerError: (error: unknown, nodeId: string) => void;

  constructor(onHandlerError: (error: unknown, nodeId: string) => void) {
    this.#onHandlerError = onHandlerError;
  }

  async subscribe(nodeId: string, handler: (message: BusMessage) => void): Promise<() => Promise<void>> {
    if (this.#subscriptions.has(nodeId)) {
      throw new Error(
        `bus.subscribe: node "${nodeId}" is already subscribed on this store; give each hub its own nodeId`,
      );
    }
    const subscription: Subscription = { handler, active: true };
    this.#subscriptions.set(nodeId, subscription);
    return async () => {
      if (!subscription.active) return;
      subscription.active = false;
      if (this.#subscriptions.get(nodeId) === subscription) this.#subscriptions.delete(nodeId);
    };
  }

  publish(nodeId: string, message: BusMessage): Promise<boolean> {
    const subscription = this.#subscriptions.get(nodeId);
    if (subscription === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      queueMicrotask(() => {
        // Unsubscribed between publish and delivery: not handed over.
        if (!subscription.active) {
          resolve(false);
          return;
        }
        try {
          subscription.handler(message);
        } catch (error) {
          this.#onHandlerError(error, nodeId);
        }
        resolve(true);
      });
    });
  }

  /** How many nodes are subscribed. */
  get count(): number {
    return this.#subscriptions.size;
  }

  clear(): void {
    for (const subscription of this.#subscriptions.values()) subscription.active = false;
    this.#subscriptions.clear();
  }
}
