/**
 * Where the client keeps the session's resume token between page loads, so that a reload
 * resumes the session (the token is single-use and replaced at every `welcome`).
 */
export interface ResumeStorage {
  /** The stored token, if any. */
  get(): string | null | undefined | Promise<string | null | undefined>;
  /** Stores a token, or forgets it (`undefined`: the session ended). */
  set(token: string | undefined): void | Promise<void>;
}

/** The part of the Web Storage API (`sessionStorage`, `localStorage`) that {@link webStorage} uses. */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * A {@link ResumeStorage} on a Web Storage object. Use `sessionStorage`: it is per tab, so two
 * tabs keep two sessions, and a reload of a tab resumes its own.
 *
 * ```js
 * createClient({ url, resumeStorage: webStorage(sessionStorage) });
 * ```
 *
 * @param key the storage key @default "whisperchat.resume"
 */
export function webStorage(storage: WebStorageLike, key = "whisperchat.resume"): ResumeStorage {
  return {
    get: () => {
      try {
        return storage.getItem(key);
      } catch {
        return undefined; // storage disabled (private mode, sandboxed frame)
      }
    },
    set: (token) => {
      try {
        if (token === undefined) storage.removeItem(key);
        else storage.setItem(key, token);
      } catch {
        // storage full or disabled: resuming after a reload will not work, the rest does
      }
    },
  };
}

/** What a device id must look like (the server refuses anything else with 400). */
const DEVICE_ID = /^[A-Za-z0-9_-]{16,128}$/;

/** Whether `id` is a well-formed device id: 16 to 128 characters of `A-Z a-z 0-9 _ -`. */
export function isDeviceId(id: unknown): id is string {
  return typeof id === "string" && DEVICE_ID.test(id);
}

/** A fresh random device id: 128 bits from `crypto.getRandomValues`, 22 base64url characters. */
export function randomDeviceId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  const b64 = btoa(String.fromCharCode(...bytes));
  return b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * This device's id (the client option `deviceId`), kept in a Web Storage object: the one stored
 * under `key` if there is a well-formed one, or else a new random one, stored for next time.
 * With `localStorage` every tab of the browser is one guest (two tabs are never matched with
 * each other); with `sessionStorage` each tab is one guest across its reloads. When the storage
 * is disabled the id is new on every call (a guest is then a new user on every page load).
 *
 * ```js
 * createClient({ url, deviceId: webDeviceId(localStorage) });
 * ```
 *
 * @param key the storage key @default "whisperchat.device"
 */
export function webDeviceId(storage: WebStorageLike, key = "whisperchat.device"): string {
  try {
    const stored = storage.getItem(key);
    if (isDeviceId(stored)) return stored;
  } catch {
    // storage disabled (private mode, sandboxed frame): a new id, not kept
  }
  const id = randomDeviceId();
  try {
    storage.setItem(key, id);
  } catch {
    // storage full or disabled: the id is not kept
  }
  return id;
}
