import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import type { Algorithm } from "@node-rs/argon2";
import { hash, parseOptions, verify } from "@node-rs/argon2";
import { randomId } from "../ids.js";
import { assertBucketRule } from "../limiter.js";
import { findHiddenCharacters, hasVisibleCharacter, mixesScripts, trimWhiteSpace } from "../names.js";
import type { AccountRecord, BucketRule, Store } from "../store.js";
import type { SignTokenFunction, SignTokenOptions } from "./jwt.js";

/** The `code` of an {@link AccountError}. */
export type AccountErrorCode = "invalid_input" | "name_taken" | "invalid_credentials" | "rate_limited";

/** The HTTP status that goes with each {@link AccountErrorCode}. */
export const ACCOUNT_ERROR_STATUS = {
  invalid_input: 400,
  name_taken: 409,
  invalid_credentials: 401,
  rate_limited: 429,
} as const satisfies Record<AccountErrorCode, number>;

/** An HTTP status of an {@link AccountError}. */
export type AccountErrorStatus = (typeof ACCOUNT_ERROR_STATUS)[AccountErrorCode];

/**
 * A refused registration or login. `code` is stable; `status` is the HTTP status to answer
 * with; `message` is safe to show to the client.
 */
export class AccountError extends Error {
  override readonly name = "AccountError";
  /** A stable, machine-readable code. */
  readonly code: AccountErrorCode;
  /** The HTTP status: 400, 409, 401 or 429. */
  readonly status: AccountErrorStatus;
  /** For `rate_limited`: milliseconds until trying again makes sense (`Retry-After`, rounded up to seconds). */
  readonly retryAfterMs: number | undefined;

  constructor(code: AccountErrorCode, message: string, retryAfterMs?: number) {
    super(message);
    this.code = code;
    this.status = ACCOUNT_ERROR_STATUS[code];
    this.retryAfterMs = retryAfterMs;
  }
}

/** True when `value` is an {@link AccountError}, optionally with the given code. */
export function isAccountError(value: unknown, code?: AccountErrorCode): value is AccountError {
  return value instanceof AccountError && (code === undefined || value.code === code);
}

/** Argon2id parameters. Lowering them below the defaults is for tests only. */
export interface PasswordHashOptions {
  /** Memory per hash, in KiB. @default 19456 (19 MiB, the OWASP minimum for argon2id) */
  memoryCost?: number;
  /** Passes over the memory. @default 2 */
  timeCost?: number;
  /** Lanes (threads) per hash. @default 1 */
  parallelism?: number;
}

/**
 * Login attempt limits (leaky buckets in `store.limiter`), after OWASP's advice against
 * brute force without letting strangers lock an account out:
 *
 * - `perIp` and `perNameAndIp` count every attempt and are checked before any password work,
 *   so nobody makes the server verify more argon2 hashes than they allow. They only refuse
 *   the address that spent them: a stranger's attempts never use up the owner's.
 * - `perName` counts only failed attempts, from every address, and is checked after the
 *   password: once it is full, a wrong password is answered `rate_limited` instead of
 *   `invalid_credentials`, but a correct one is still accepted.
 *
 * Pass `ip` to `login`: without it, every attempt at a name shares one `perNameAndIp` bucket,
 * and whoever fills it refuses the owner too.
 */
export interface LoginRateOptions {
  /**
   * Attempts per (account name, client address), correct or not, checked before the password
   * is verified. Unknown and invalid names are counted too (invalid ones all in one bucket per
   * address). @default { capacity: 5, ratePerSec: 0.1 } (5 at once, then 1 per 10 s)
   */
  perNameAndIp?: BucketRule;
  /**
   * Failed attempts per account name (normalised), from all addresses together: the slower,
   * global back-off. Counted after a wrong password (or an unknown name); when full, the wrong
   * password is answered `rate_limited` with `retryAfterMs`. A correct password is never
   * refused by it. (It used to count every attempt before the password was checked, which let
   * anyone lock any account out; bounding the hashing work is now `perNameAndIp`'s job.)
   * @default { capacity: 10, ratePerSec: 1 / 60 } (10 failures, then 1 per minute)
   */
  perName?: BucketRule;
  /** Attempts per client address, across names, checked before any password work. @default { capacity: 20, ratePerSec: 1 } */
  perIp?: BucketRule;
}

/**
 * What a valid account name is, checked on the normalised name. Whatever the rules, a name is
 * refused when it has bidi controls (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069) or
 * invisible characters (zero-width space and joiners, word joiner, soft hyphen, BOM, variation
 * selectors, Hangul fillers, other format, private-use and unassigned code points), has no
 * letter, digit, symbol or punctuation mark, or mixes scripts (say Latin with Cyrillic, as in
 * "aliсe" with a Cyrillic "с"; digits, spaces and punctuation go with any script, and Japanese
 * or Korean Han with kana or Hangul, possibly with Latin, is one writing system).
 */
export interface NameRules {
  /** Fewest characters (Unicode code points). @default 3 */
  minLength?: number;
  /** Most characters (Unicode code points). @default 32 */
  maxLength?: number;
  /**
   * The whole normalised name must match it.
   * @default /^[\p{L}\p{M}\p{N}_.\- ]+$/u (letters, marks, digits, `_`, `.`, `-` and single spaces)
   */
  pattern?: RegExp;
}

/** What a valid password is, checked after NFKC normalisation. No composition rules (NIST SP 800-63B). */
export interface PasswordRules {
  /** Fewest characters (Unicode code points). @default 8 */
  minLength?: number;
  /** Most characters (Unicode code points): bounds the hashing work. @default 1024 */
  maxLength?: number;
}

/** Options of {@link createAccounts}. */
export interface AccountsOptions {
  /** Where accounts (`store.accounts`) and attempt buckets (`store.limiter`) live. */
  store: Pick<Store, "accounts" | "limiter">;
  /**
   * Issues the token of `login`: the object from `createJwtAuth` (with a secret or private key),
   * or a sign function. Without it, `login` throws; `verifyCredentials` still works.
   * @default none
   */
  jwt?: { sign: SignTokenFunction } | SignTokenFunction;
  /** Lifetime of tokens from `login`, in seconds. @default the signer's default */
  tokenTtlSec?: number;
  /** Argon2id parameters for new hashes; stored hashes with other parameters are re-hashed at login. @default OWASP's */
  hashOptions?: PasswordHashOptions;
  /**
   * Most argon2 computations (hash or verify) running at once; more wait their turn. Each runs on
   * libuv's thread pool and uses `memoryCost` of memory; keeping one core free for the event loop
   * keeps it responsive under a burst of logins. @default max(1, availableParallelism() - 1)
   */
  maxConcurrentHashes?: number;
  /**
   * Most argon2 computations waiting for their turn; past it, `register` and `login` are refused
   * with `rate_limited` (retry after 1 s), which bounds memory under a flood. @default 256
   */
  maxQueuedHashes?: number;
  /** Login attempt limits. @default see {@link LoginRateOptions} */
  loginRate?: LoginRateOptions;
  /** Registrations per client address (a leaky bucket). @default { capacity: 10, ratePerSec: 0.05 } (10 at once, then 1 per 20 s) */
  registerRate?: BucketRule;
  /** Account name rules. @default see {@link NameRules} */
  nameRules?: NameRules;
  /** Password rules. @default see {@link PasswordRules} */
  passwordRules?: PasswordRules;
  /** Roles of a new account when `register` is not given any. @default [] */
  defaultRoles?: readonly string[];
  /** The clock, in ms since the epoch (for `createdAt`). @default Date.now */
  now?: () => number;
}

/** Input of {@link Accounts.register}. */
export interface RegisterInput {
  name: string;
  password: string;
  /** The client address, for the per-address registration limit. @default no limit */
  ip?: string;
  /** The new account's roles, chosen by the app (never from the client's request). @default the `defaultRoles` option */
  roles?: readonly string[];
}

/** Input of {@link Accounts.login} and {@link Accounts.verifyCredentials}. */
export interface LoginInput {
  name: string;
  password: string;
  /**
   * The client address, for the per-address and per-(name, address) attempt limits. Without
   * it, all attempts at a name share one bucket, so a stranger can lock the owner out.
   * @default none: no per-address limit, one shared per-(name, address) bucket
   */
  ip?: string;
}

/** A registered account, as `register` returns it (HTTP 201). */
export interface RegisteredAccount {
  userId: string;
  /** The name as registered (normalised for display: NFKC, trimmed, spaces collapsed). */
  name: string;
}

/** An account whose credentials were checked. */
export interface AccountIdentity {
  userId: string;
  name: string;
  roles: readonly string[];
}

/** The answer of `login` (HTTP 200). */
export interface LoginResult extends AccountIdentity {
  /** A token for the WhisperChat handshake (`?token=`) and the `auth` frame. */
  token: string;
  /** When the token expires, in ms since the epoch. */
  expiresAt: number;
}

/** Accounts for apps that keep their own users. */
export interface Accounts {
  /**
   * Creates an account. Rejects with an {@link AccountError}: `invalid_input` (400) for a name or
   * password outside the rules, `name_taken` (409), `rate_limited` (429).
   */
  register(input: RegisterInput): Promise<RegisteredAccount>;
  /**
   * Checks the credentials and issues a token. Rejects with an {@link AccountError}:
   * `invalid_credentials` (401) for an unknown name and for a wrong password alike (same
   * message, about the same time), `rate_limited` (429, with `retryAfterMs`) when this address
   * made too many attempts or, for a wrong password, when the name had too many failures (see
   * {@link LoginRateOptions}: other addresses' failures never refuse a correct password),
   * `invalid_input` (400) when name or password is not a string. Throws a `TypeError` when no
   * `jwt` is configured.
   */
  login(input: LoginInput): Promise<LoginResult>;
  /** `login` without the token: for apps that keep their own sessions. */
  verifyCredentials(input: LoginInput): Promise<AccountIdentity>;
}

const DEFAULT_HASH = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
const ARGON2ID = 2 as Algorithm;
const ARGON2_V13 = 1;
const DEFAULT_NAME_PATTERN = /^[\p{L}\p{M}\p{N}_.\- ]+$/u;

/**
 * Normalises an account name for display: NFKC, trimmed, runs of white space collapsed to one
 * space. (A U+FEFF is not white space here: it stays, and the name is refused.)
 */
export function normalizeAccountName(name: string): string {
  return trimWhiteSpace(name.normalize("NFKC")).replace(/\p{White_Space}+/gu, " ");
}

/**
 * The unique key of an account name: the display form ({@link normalizeAccountName}) case-folded
 * (upper case then lower case, which folds e.g. `ß` to `ss`) and normalised again. `" Alice "`,
 * `"alice"` and `"ALICE"` share one key.
 */
export function accountNameKey(name: string): string {
  return normalizeAccountName(name).toUpperCase().toLowerCase().normalize("NFKC");
}

/**
 * Registration and login for apps that keep their own users: argon2id hashes (through
 * @node-rs/argon2, off the event loop) in `store.accounts`, login attempts limited in
 * `store.limiter`, tokens issued by `jwt`.
 *
 * @example
 * const jwt = createJwtAuth({ secret: process.env.JWT_SECRET });
 * const accounts = createAccounts({ store, jwt });
 * await accounts.register({ name: "alice", password: "correct horse battery staple" });
 * const { token } = await accounts.login({ name: "alice", password: "correct horse battery staple", ip });
 */
export function createAccounts(options: AccountsOptions): Accounts {
  const { store } = options;
  if (store?.accounts === undefined || store.limiter === undefined) {
    throw new TypeError("createAccounts: store must have accounts and limiter");
  }
  const hashOptions = {
    memoryCost: options.hashOptions?.memoryCost ?? DEFAULT_HASH.memoryCost,
    timeCost: options.hashOptions?.timeCost ?? DEFAULT_HASH.timeCost,
    parallelism: options.hashOptions?.parallelism ?? DEFAULT_HASH.parallelism,
  };
  for (const [key, value] of Object.entries(hashOptions)) {
    if (!(Number.isInteger(value) && value >= 1)) {
      throw new TypeError(`createAccounts: hashOptions.${key} must be a positive integer`);
    }
  }
  if (hashOptions.memoryCost < 8 * hashOptions.parallelism) {
    throw new TypeError("createAccounts: hashOptions.memoryCost must be at least 8 KiB per lane");
  }
  const argon = { ...hashOptions, algorithm: ARGON2ID };
  const maxConcurrent = options.maxConcurrentHashes ?? Math.max(1, availableParallelism() - 1);
  const maxQueued = options.maxQueuedHashes ?? 256;
  if (!(Number.isInteger(maxConcurrent) && maxConcurrent >= 1)) {
    throw new TypeError("createAccounts: maxConcurrentHashes must be a positive integer");
  }
  if (!(Number.isInteger(maxQueued) && maxQueued >= 0)) {
    throw new TypeError("createAccounts: maxQueuedHashes must be a non-negative integer");
  }
  const gate = new Gate(maxConcurrent, maxQueued);
  const hashPassword = (password: string): Promise<string> => gate.run(() => hash(password, argon));
  const verifyPassword = (passwordHash: string, password: string): Promise<boolean> =>
    gate.run(() => verify(passwordHash, password));
  const perNameAndIp = options.loginRate?.perNameAndIp ?? { capacity: 5, ratePerSec: 0.1 };
  const perName = options.loginRate?.perName ?? { capacity: 10, ratePerSec: 1 / 60 };
  const perIp = options.loginRate?.perIp ?? { capacity: 20, ratePerSec: 1 };
  const registerRate = options.registerRate ?? { capacity: 10, ratePerSec: 0.05 };
  assertBucketRule(perNameAndIp, "createAccounts: loginRate.perNameAndIp");
  assertBucketRule(perName, "createAccounts: loginRate.perName");
  assertBucketRule(perIp, "createAccounts: loginRate.perIp");
  assertBucketRule(registerRate, "createAccounts: registerRate");
  const nameMin = options.nameRules?.minLength ?? 3;
  const nameMax = options.nameRules?.maxLength ?? 32;
  const namePattern = options.nameRules?.pattern ?? DEFAULT_NAME_PATTERN;
  const passwordMin = options.passwordRules?.minLength ?? 8;
  const passwordMax = options.passwordRules?.maxLength ?? 1024;
  checkLengths(nameMin, nameMax, "nameRules");
  checkLengths(passwordMin, passwordMax, "passwordRules");
  const defaultRoles = [...(options.defaultRoles ?? [])];
  const tokenTtlSec = options.tokenTtlSec;
  const now = options.now ?? Date.now;
  const sign: SignTokenFunction | undefined =
    typeof options.jwt === "function"
      ? options.jwt
      : options.jwt === undefined
        ? undefined
        : options.jwt.sign.bind(options.jwt);

  // Verified against when the name is unknown, so that such a login costs what a real one does.
  const dummyHash = hash(randomBytes(32).toString("base64url"), argon);
  dummyHash.catch(() => {});

  const nameRulesMessage = `name must be ${nameMin} to ${nameMax} characters: letters, digits, spaces, "_", "." or "-"`;

  /**
   * The display name and key, or why the name breaks the rules. Used at login too, so that a
   * name that could not be registered now (one mixing scripts, say) finds no account.
   */
  const checkName = (raw: string): { name: string; nameKey: string } | { problem: string } => {
    const name = normalizeAccountName(raw);
    const hidden = findHiddenCharacters(name, false);
    if (hidden === "bidi_control") {
      return { problem: "name must not contain text-direction controls (such as U+202E)" };
    }
    if (hidden === "invisible") {
      return { problem: "name must not contain invisible characters (such as U+200B, zero-width space)" };
    }
    const length = codePoints(name);
    if (length < nameMin || length > nameMax || !namePattern.test(name) || !hasVisibleCharacter(name)) {
      return { problem: nameRulesMessage };
    }
    if (mixesScripts(name)) {
      return { problem: "name must not mix scripts (such as Latin and Cyrillic letters)" };
    }
    return { name, nameKey: accountNameKey(name) };
  };

  const limit = async (key: string, rule: BucketRule, what: string): Promise<void> => {
    const result = await store.limiter.consume(key, rule, 1);
    if (!result.allowed) {
      throw new AccountError("rate_limited", `too many ${what}; try again later`, result.retryAfterMs);
    }
  };

  const needsRehash = (passwordHash: string): boolean => {
    try {
      const p = parseOptions(passwordHash);
      return (
        p.algorithm !== ARGON2ID ||
        p.version !== ARGON2_V13 ||
        p.memoryCost !== hashOptions.memoryCost ||
        p.timeCost !== hashOptions.timeCost ||
        p.parallelism !== hashOptions.parallelism
      );
    } catch {
      return true;
    }
  };

  const register = async (input: RegisterInput): Promise<RegisteredAccount> => {
    const { name: rawName, password: rawPassword } = requireStrings(input);
    if (input.ip !== undefined) await limit(`auth:register:ip:${input.ip}`, registerRate, "registrations");
    const checked = checkName(rawName);
    if ("problem" in checked) throw new AccountError("invalid_input", checked.problem);
    const password = rawPassword.normalize("NFKC");
    const length = codePoints(password);
    if (length < passwordMin || length > passwordMax) {
      throw new AccountError("invalid_input", `password must be ${passwordMin} to ${passwordMax} characters`);
    }
    const roles = input.roles ?? defaultRoles;
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string")) {
      throw new TypeError("register: roles must be an array of strings");
    }
    if ((await store.accounts.get(checked.nameKey)) !== undefined) {
      throw new AccountError("name_taken", "this name is taken; pick another");
    }
    const account: AccountRecord = {
      userId: randomId(16),
      name: checked.name,
      nameKey: checked.nameKey,
      passwordHash: await hashPassword(password),
      roles: [...roles],
      createdAt: now(),
    };
    if (!(await store.accounts.create(account))) {
      throw new AccountError("name_taken", "this name is taken; pick another");
    }
    return { userId: account.userId, name: account.name };
  };

  /** Counts a failed login at the name; refused once the name's back-off bucket is full. */
  const failed = async (nameKey: string | undefined): Promise<AccountError> => {
    if (nameKey === undefined) return invalidCredentials();
    const result = await store.limiter.consume(`auth:login:failed:${nameKey}`, perName, 1);
    if (result.allowed) return invalidCredentials();
    return new AccountError(
      "rate_limited",
      "too many failed login attempts for this name; try again later",
      result.retryAfterMs,
    );
  };

  const verifyCredentials = async (input: LoginInput): Promise<AccountIdentity> => {
    const { name: rawName, password: rawPassword } = requireStrings(input);
    const ip = input.ip;
    if (ip !== undefined) await limit(`auth:login:ip:${ip}`, perIp, "login attempts");
    const checked = nameOrUndefined(checkName(rawName));
    // Before any password work, and keyed by the address too: it bounds the argon2 work one
    // address can cause for a name, and a stranger filling it does not refuse the owner. The
    // name part is escaped so that no (address, name) pair shares a key with another.
    const namePart = checked === undefined ? "" : encodeURIComponent(checked.nameKey);
    await limit(`auth:login:ip-name:${ip ?? ""}:${namePart}`, perNameAndIp, "login attempts");
    const password = rawPassword.normalize("NFKC");
    if (codePoints(password) > passwordMax) throw await failed(checked?.nameKey);
    const account = checked === undefined ? undefined : await store.accounts.get(checked.nameKey);
    const ok = await verifyPassword(account?.passwordHash ?? (await dummyHash), password);
    // Unknown names count as failures too, so that the answers do not tell which names exist.
    if (account === undefined || !ok) throw await failed(checked?.nameKey);
    if (needsRehash(account.passwordHash)) {
      await store.accounts.update({ ...account, passwordHash: await hashPassword(password) });
    }
    return { userId: account.userId, name: account.name, roles: [...account.roles] };
  };

  const login = async (input: LoginInput): Promise<LoginResult> => {
    if (sign === undefined) {
      throw new TypeError("Accounts.login needs the jwt option of createAccounts to issue tokens");
    }
    const identity = await verifyCredentials(input);
    const signOptions: SignTokenOptions = {};
    if (tokenTtlSec !== undefined) signOptions.expiresInSec = tokenTtlSec;
    const { token, expiresAt } = await sign(identity, signOptions);
    return { ...identity, token, expiresAt };
  };

  return { register, login, verifyCredentials };
}

/** Runs at most `limit` tasks at once; up to `maxQueued` more wait, further ones are refused. */
class Gate {
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(
    private readonly limit: number,
    private readonly maxQueued: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit) {
      if (this.#queue.length >= this.maxQueued) {
        throw new AccountError("rate_limited", "the server is busy; try again shortly", 1000);
      }
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      if (next === undefined) this.#running--;
      else next();
    }
  }
}

function nameOrUndefined<T extends object>(checked: T | { problem: string }): T | undefined {
  return "problem" in checked ? undefined : checked;
}

function invalidCredentials(): AccountError {
  return new AccountError("invalid_credentials", "wrong name or password");
}

function requireStrings(input: { name: unknown; password: unknown } | undefined): {
  name: string;
  password: string;
} {
  const name = input?.name;
  const password = input?.password;
  if (typeof name !== "string" || typeof password !== "string") {
    throw new AccountError("invalid_input", "name and password must be strings");
  }
  return { name, password };
}

function checkLengths(min: number, max: number, what: string): void {
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max >= min)) {
    throw new TypeError(`createAccounts: ${what} needs integers 1 <= minLength <= maxLength`);
  }
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
