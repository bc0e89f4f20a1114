/** A listener of event `K` of map `M`. */
export type Listener<M, K extends keyof M> = (payload: M[K]) => void;

/** A small typed event emitter: no dependencies, listeners called in the order they were added. */
export class Emitter<M> {
  private readonly listeners = new Map<keyof M, Set<(payload: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(event: K, listener: Listener<M, K>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => this.off(event, listener);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once<K extends keyof M>(event: K, listener: Listener<M, K>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Removes a listener. */
  off<K extends keyof M>(event: K, listener: Listener<M, K>): void {
    this.listeners.get(event)?.delete(listener as (payload: never) => void);
  }

  /**
   * Calls every listener of `event`. A listener that throws does not stop the others or the
   * client: the error is rethrown asynchronously, where the host reports uncaught errors.
   */
  protected emit<K extends keyof M>(event: K, payload: M[K]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<M, K>)(payload);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
