import type { Store } from "./store.js";

/**
 * The store `store` with another `close`: `close` gets the store's own close to call (or not).
 * Every other member of `store` is kept as it is, its own and inherited ones alike, optional
 * capabilities such as `relay` and members a later version of a store adds included: reading a
 * member of the result reads it from `store` (methods are bound to `store`, so they work with
 * private fields). Use it instead of copying the sub-stores into a new object, which drops every
 * member that is not copied by hand.
 *
 * @example
 * // The app opened the Redis client, so closing the store quits it too.
 * const store = withStoreClose(createRedisStore({ client }), async (closeStore) => {
 *   await closeStore();
 *   await client.quit();
 * });
 */
export function withStoreClose<S extends Store>(
  store: S,
  close: (closeStore: () => Promise<void>) => Promise<void>,
): S {
  if (typeof close !== "function") throw new TypeError("withStoreClose: close must be a function");
  const closeStore = () => store.close();
  const wrappedClose = () => close(closeStore);
  const bound = new Map<PropertyKey, { of: unknown; fn: unknown }>();
  return new Proxy(store, {
    get(target, key) {
      if (key === "close") return wrappedClose;
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      // The same bound function for as long as the member is the same function.
      let entry = bound.get(key);
      if (entry === undefined || entry.of !== value) {
        entry = { of: value, fn: value.bind(target) };
        bound.set(key, entry);
      }
      return entry.fn;
    },
  });
}
