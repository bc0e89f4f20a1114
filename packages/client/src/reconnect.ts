import { CloseCode } from "./protocol.js";

/** When and how fast the client reconnects after an abnormal close. */
export interface ReconnectOptions {
  /** Whether the client reconnects (and resumes) by itself. @default true */
  enabled?: boolean;
  /** The delay before the first attempt, in ms (before jitter). @default 500 */
  initialDelayMs?: number;
  /** The longest delay between two attempts, in ms. @default 15000 */
  maxDelayMs?: number;
  /** Each failed attempt multiplies the delay by this. @default 2 */
  factor?: number;
  /**
   * The share of each delay that is random, from 0 to 1: a delay `d` becomes a random value in
   * `[d × (1 − jitter), d]`, so clients dropped together do not come back together. @default 0.5
   */
  jitter?: number;
  /** Attempts after one drop before the client gives up (state `closed`). @default Infinity */
  maxAttempts?: number;
}

/** {@link ReconnectOptions} with every default applied. */
export type ResolvedReconnectOptions = Required<ReconnectOptions>;

/** The defaults of {@link ReconnectOptions}. */
export const DEFAULT_RECONNECT: ResolvedReconnectOptions = Object.freeze({
  enabled: true,
  initialDelayMs: 500,
  maxDelayMs: 15_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Number.POSITIVE_INFINITY,
});

/** Applies the defaults and checks the numbers; throws a `TypeError` for a bad one. */
export function resolveReconnect(options: ReconnectOptions | boolean | undefined): ResolvedReconnectOptions {
  const given: ReconnectOptions =
    options === undefined || options === true ? {} : options === false ? { enabled: false } : options;
  const r = { ...DEFAULT_RECONNECT };
  for (const [key, value] of Object.entries(given) as [keyof ReconnectOptions, unknown][]) {
    if (value !== undefined) (r as Record<string, unknown>)[key] = value;
  }
  const check = (name: keyof ReconnectOptions, ok: boolean) => {
    if (!ok) throw new TypeError(`createClient: reconnect.${name} is out of range: ${String(r[name])}`);
  };
  check("initialDelayMs", Number.isFinite(r.initialDelayMs) && r.initialDelayMs >= 0);
  check("maxDelayMs", Number.isFinite(r.maxDelayMs) && r.maxDelayMs >= r.initialDelayMs);
  check("factor", Number.isFinite(r.factor) && r.factor >= 1);
  check("jitter", r.jitter >= 0 && r.jitter <= 1);
  check("maxAttempts", r.maxAttempts >= 1);
  return r;
}

/**
 * The delay before reconnect attempt `attempt` (1 for the first), in ms:
 * `min(maxDelayMs, initialDelayMs × factor^(attempt−1))`, of which the `jitter` share is random.
 */
export function backoffDelay(
  options: ResolvedReconnectOptions,
  attempt: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    options.maxDelayMs,
    options.initialDelayMs * options.factor ** Math.max(0, attempt - 1),
  );
  return Math.round(base * (1 - options.jitter * random()));
}

/**
 * Close codes after which the client reconnects and resumes (when `reconnect.enabled`):
 *
 * | code | meaning | reconnect |
 * |---|---|---|
 * | 1000 | normal close: the session ended | no |
 * | 1001 | going away: server shutdown or proxy restart | yes (resume may fail: then `sessionLost`) |
 * | 1005 | closed without a status | yes |
 * | 1006 | dropped without a closing handshake (network) | yes |
 * | 1008 | policy: flooding, kicked, banned | no |
 * | 1009 | a frame was too large | no |
 * | 1011 | internal server error | yes |
 * | 1012 | server restarting or draining | yes |
 * | 1013, 1014 | try again later, bad gateway | yes |
 * | 4000 | this client gave up on a silent connection (heartbeat) | yes |
 * | 4001 | another connection took the session over | no |
 * | 4401 | the token expired and was not refreshed | no |
 * | any other | | no |
 */
export const RECONNECT_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.GoingAway,
  CloseCode.NoStatus,
  CloseCode.Abnormal,
  CloseCode.Internal,
  CloseCode.Restart,
  CloseCode.TryAgainLater,
  CloseCode.BadGateway,
  CloseCode.ClientTimeout,
]);

/** Whether a close with this code is followed by a reconnect (see {@link RECONNECT_CLOSE_CODES}). */
export function shouldReconnect(code: number): boolean {
  return RECONNECT_CLOSE_CODES.has(code);
}
