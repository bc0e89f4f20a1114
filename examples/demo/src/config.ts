/** The demo's settings, read from the environment (see the table in the README). */
export interface DemoConfig {
  port: number;
  host: string;
  store: "memory" | "redis";
  redisUrl: string;
  keyPrefix: string;
  auth: "guest" | "required";
  jwtSecret: string | undefined;
  resumeGraceMs: number;
  msgPerSec: number;
  msgBurst: number;
  /** After `next`, how long the two users are kept apart, in ms (the hub's `nextCooldownMs`). */
  nextCooldownMs: number;
  connectPerSec: number;
  connectBurst: number;
  /** Most time to receive a request's headers (Node's `server.headersTimeout`), in ms. */
  httpHeadersTimeoutMs: number;
  /** Most time to receive a whole request, body included (`server.requestTimeout`), in ms. */
  httpRequestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open (`server.keepAliveTimeout`), in ms. */
  httpKeepAliveTimeoutMs: number;
}

/**
 * The HTTP server's timeouts unless set: a client that sends its headers or body slowly (or
 * not at all) is cut off after these, instead of after Node's 60 s (headers) and 300 s
 * (request) defaults, so slow clients cannot hold many sockets open for long.
 */
export const HTTP_TIMEOUT_DEFAULTS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
} as const;

/** A setting with a bad value: the demo prints the message and exits 1. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function num(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  check: (n: number) => boolean,
  what: string,
) {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !check(n))
    throw new ConfigError(`${name} must be ${what}, got ${JSON.stringify(raw)}`);
  return n;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  if (!(values as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${values.join(", ")}, got ${JSON.stringify(raw)}`);
  }
  return raw as T;
}

const positive = (n: number) => n > 0;
const positiveInteger = (n: number) => Number.isInteger(n) && n > 0;

/** Reads and checks every setting; throws {@link ConfigError} on the first bad one. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const ms = "a whole number of milliseconds > 0";
  const config: DemoConfig = {
    port: num(
      env,
      "PORT",
      3000,
      (n) => Number.isInteger(n) && n >= 0 && n <= 65535,
      "a port number (0 picks a free one)",
    ),
    host: env.HOST?.trim() || "127.0.0.1",
    store: oneOf(env, "WHISPER_STORE", ["memory", "redis"] as const, "memory"),
    redisUrl: env.REDIS_URL?.trim() || "redis://127.0.0.1:6379",
    keyPrefix: env.WHISPER_KEY_PREFIX ?? "whisper:",
    auth: oneOf(env, "WHISPER_AUTH", ["guest", "required"] as const, "guest"),
    jwtSecret: env.JWT_SECRET?.trim() || undefined,
    resumeGraceMs: num(
      env,
      "WHISPER_RESUME_GRACE_MS",
      30_000,
      (n) => n >= 0,
      "a number of milliseconds >= 0",
    ),
    msgPerSec: num(env, "WHISPER_MSG_PER_SEC", 5, positive, "a positive number"),
    msgBurst: num(env, "WHISPER_MSG_BURST", 10, positive, "a positive number"),
    // Short, unlike the hub's 60 s: someone trying the demo alone in two tabs sees the two
    // matched again soon after a `next`.
    nextCooldownMs: num(
      env,
      "WHISPER_NEXT_COOLDOWN_MS",
      10_000,
      (n) => Number.isInteger(n) && n >= 0,
      "a whole number of milliseconds >= 0",
    ),
    connectPerSec: num(env, "WHISPER_CONNECT_PER_SEC", 5, positive, "a positive number"),
    connectBurst: num(env, "WHISPER_CONNECT_BURST", 20, positive, "a positive number"),
    httpHeadersTimeoutMs: num(
      env,
      "WHISPER_HTTP_HEADERS_TIMEOUT_MS",
      HTTP_TIMEOUT_DEFAULTS.headersTimeoutMs,
      positiveInteger,
      ms,
    ),
    httpRequestTimeoutMs: num(
      env,
      "WHISPER_HTTP_REQUEST_TIMEOUT_MS",
      HTTP_TIMEOUT_DEFAULTS.requestTimeoutMs,
      positiveInteger,
      ms,
    ),
    httpKeepAliveTimeoutMs: num(
      env,
      "WHISPER_HTTP_KEEPALIVE_TIMEOUT_MS",
      HTTP_TIMEOUT_DEFAULTS.keepAliveTimeoutMs,
      positiveInteger,
      ms,
    ),
  };
  if (config.httpHeadersTimeoutMs > config.httpRequestTimeoutMs) {
    throw new ConfigError(
      `WHISPER_HTTP_HEADERS_TIMEOUT_MS (${config.httpHeadersTimeoutMs}) must not exceed WHISPER_HTTP_REQUEST_TIMEOUT_MS (${config.httpRequestTimeoutMs})`,
    );
  }
  return config;
}
