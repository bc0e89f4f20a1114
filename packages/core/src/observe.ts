import type { Store } from "./store.js";

/**
 * A structured logger, compatible with pino's interface: `logger.info({ sessionId }, "msg")`.
 * Pass `pino()` itself, or anything with these four methods.
 */
export interface Logger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

const noop = (): void => undefined;

/** The default logger: says nothing. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Receives the duration of a store call, e.g. `("pool.candidates", 0.0004, true)`. */
export type StoreObserver = (operation: string, seconds: number, ok: boolean) => void;

/** Options of `hub.observeStore`. */
export interface StoreObserverOptions {
  /**
   * Time one call in this many, per operation (the first call of each is always timed): timing
   * costs a clock read and a promise reaction per call, which a store on the relay's hot path
   * feels. `1` times every call. @default 1
   */
  sampleEvery?: number;
}

/** An observer with its sampling, as {@link observedStore} reads it. */
export interface StoreObservation {
  observe: StoreObserver;
  sampleEvery: number;
}

const SUBSTORES = [
  "pool",
  "rooms",
  "exclusions",
  "bus",
  "limiter",
  "sessions",
  "mailbox",
  "accounts",
  "bans",
  "nodes",
  "relay",
] as const;

/**
 * Wraps a store so that the calls of its sub-stores are timed and reported to the observer
 * returned by `observer()` (checked on each call: nothing is measured while it is `undefined`,
 * and then a call costs one extra function call), one call in `sampleEvery` per operation. Each sub-store becomes a plain object with the
 * same methods (own or inherited), made once here; an optional sub-store the store lacks stays
 * absent.
 */
export function observedStore(store: Store, observer: () => StoreObservation | undefined): Store {
  const wrapped: Record<string, unknown> = {};
  for (const name of SUBSTORES) {
    const sub = store[name] as unknown as Record<string, unknown> | undefined;
    if (sub === undefined) continue;
    wrapped[name] = observedSubStore(name, sub, observer);
  }
  wrapped.close = () => store.close();
  return wrapped as unknown as Store;
}

/** Every method of `sub` (own or inherited), timed; other members are read through. */
function observedSubStore(
  name: string,
  sub: Record<string, unknown>,
  observer: () => StoreObservation | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (let o: object | null = sub; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key === "constructor" || seen.has(key)) continue;
      seen.add(key);
      const value = sub[key];
      if (typeof value !== "function") {
        Object.defineProperty(out, key, { get: () => sub[key], enumerable: true });
        continue;
      }
      const op = `${name}.${key}`;
      let calls = 0;
      out[key] = (...args: unknown[]): unknown => {
        // Looked up on each call: a method replaced on the store later (a test's fault) counts.
        const fn = sub[key] as (...a: unknown[]) => unknown;
        const observation = observer();
        if (observation === undefined || calls++ % observation.sampleEvery !== 0) return fn.apply(sub, args);
        const observe = observation.observe;
        const start = performance.now();
        const result = fn.apply(sub, args);
        if (!(result instanceof Promise)) return result;
        // Timed on a side branch: the caller gets the store's own promise, so a timed call
        // settles for it in the same microtask as an untimed one. Returning `result.then(...)`
        // gave one call in `sampleEvery` an extra hop, and the mix cost the relay far more than
        // the timing (bench/metrics-cost.ts: 1.29x the bare hub's CPU per message with metrics
        // attached, 1.05-1.07x this way). The branch handles a rejection; the caller sees it.
        result.then(
          () => observe(op, (performance.now() - start) / 1000, true),
          () => observe(op, (performance.now() - start) / 1000, false),
        );
        return result;
      };
    }
  }
  return out;
}
