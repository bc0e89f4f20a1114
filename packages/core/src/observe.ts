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

/** Receives the duration of every store call, e.g. `("pool.candidates", 0.0004)`. */
export type StoreObserver = (operation: string, seconds: number, ok: boolean) => void;

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
 * Wraps a store so that every call of its sub-stores is timed and reported to the observer
 * returned by `observer()` (checked on each call: nothing is measured while it is `undefined`,
 * and then a call costs one extra function call). Each sub-store becomes a plain object with the
 * same methods (own or inherited), made once here; an optional sub-store the store lacks stays
 * absent.
 */
export function observedStore(store: Store, observer: () => StoreObserver | undefined): Store {
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
  observer: () => StoreObserver | undefined,
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
      out[key] = (...args: unknown[]): unknown => {
        // Looked up on each call: a method replaced on the store later (a test's fault) counts.
        const fn = sub[key] as (...a: unknown[]) => unknown;
        const observe = observer();
        if (observe === undefined) return fn.apply(sub, args);
        const start = performance.now();
        const result = fn.apply(sub, args);
        if (!(result instanceof Promise)) return result;
        return result.then(
          (v) => {
            observe(op, (performance.now() - start) / 1000, true);
            return v;
          },
          (e) => {
            observe(op, (performance.now() - start) / 1000, false);
            throw e;
          },
        );
      };
    }
  }
  return out;
}
