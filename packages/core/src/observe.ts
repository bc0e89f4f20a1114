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
 * returned by `observer()` (checked on each call: nothing is measured while it is `undefined`).
 */
export function observedStore(store: Store, observer: () => StoreObserver | undefined): Store {
  const wrapped: Record<string, unknown> = {};
  for (const name of SUBSTORES) {
    const sub = store[name] as unknown as Record<string, unknown> | undefined;
    if (sub === undefined) continue; // an optional sub-store the store does not have
    const cache = new Map<PropertyKey, unknown>();
    wrapped[name] = new Proxy(sub, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        let fn = cache.get(prop);
        if (fn === undefined) {
          const op = `${name}.${String(prop)}`;
          fn = (...args: unknown[]) => {
            const observe = observer();
            if (observe === undefined) return (value as (...a: unknown[]) => unknown).apply(target, args);
            const start = performance.now();
            const result = (value as (...a: unknown[]) => unknown).apply(target, args);
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
          cache.set(prop, fn);
        }
        return fn;
      },
    });
  }
  wrapped.close = () => store.close();
  return wrapped as unknown as Store;
}
