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
