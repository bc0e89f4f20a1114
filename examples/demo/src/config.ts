/** The demo's settings, read from the environment (see the table in the README). */
export interface DemoConfig {
  /** HTTP port (`PORT`); `0` picks a free one. Default `3000`. */
  port: number;
  /** Interface to bind (`HOST`). Default `"127.0.0.1"`. */
  host: string;
  /** Where sessions, rooms and the pool live (`WHISPER_STORE`). Default `"memory"`. */
  store: "memory" | "redis";
  /** One Redis server, when the store is `redis` (`REDIS_URL`). Default `"redis://127.0.0.1:6379"`. */
  redisUrl: string;
  /**
   * The seed nodes of a Redis Cluster (`REDIS_CLUSTER`), used instead of `redisUrl` when the
   * store is `redis`; `undefined` (the default) for one Redis server at `redisUrl`.
   */
  redisCluster: readonly RedisSeed[] | undefined;
  /** Redis key prefix (`WHISPER_KEY_PREFIX`), without `{` or `}`. Default `"whisper:"`. */
  keyPrefix: string;
  /** `guest`: guests allowed, a token honoured when given; `required`: a valid token needed (`WHISPER_AUTH`). Default `"guest"`. */
  auth: "guest" | "required";
  /** HS256 secret for the demo's tokens (`JWT_SECRET`); `undefined` (the default): random per process. */
  jwtSecret: string | undefined;
  /** How long a dropped session can be resumed, in ms (`WHISPER_RESUME_GRACE_MS`). Default `30000`. */
  resumeGraceMs: number;
  /** Chat messages per second per session (`WHISPER_MSG_PER_SEC`). Default `5`. */
  msgPerSec: number;
  /** Chat messages a session may send at once (`WHISPER_MSG_BURST`). Default `10`. */
  msgBurst: number;
  /**
   * After `next`, how long the two users are kept apart, in ms (`WHISPER_NEXT_COOLDOWN_MS`, the
   * hub's `nextCooldownMs`). Default `10000`: short, so two tabs of one person meet again soon.
   */
  nextCooldownMs: number;
  /** Connection attempts per second per client IP (`WHISPER_CONNECT_PER_SEC`). Default `5`. */
  connectPerSec: number;
  /** Connection attempts a client IP may make at once (`WHISPER_CONNECT_BURST`). Default `20`. */
  connectBurst: number;
  /** Most time to receive a request's headers (Node's `server.headersTimeout`), in ms. Default `10000`. */
  httpHeadersTimeoutMs: number;
  /** Most time to receive a whole request, body included (`server.requestTimeout`), in ms. Default `30000`. */
  httpRequestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open (`server.keepAliveTimeout`), in ms. Default `5000`. */
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

/** One seed node of a Redis Cluster: the client learns the others from it. */
export interface RedisSeed {
  host: string;
  port: number;
}

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

/**
 * `REDIS_CLUSTER`: comma-separated `host:port` seed nodes (an IPv6 host in brackets,
 * `[::1]:7000`), or `undefined` when unset.
 */
function seeds(env: NodeJS.ProcessEnv): RedisSeed[] | undefined {
  const raw = env.REDIS_CLUSTER;
  if (raw === undefined || raw.trim() === "") return undefined;
  return raw.split(",").map((part) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@]+)):(\d{1,5})$/.exec(part.trim());
    const port = Number(m?.[3]);
    const host = m?.[1] ?? m?.[2];
    if (host === undefined || !(port >= 1 && port <= 65535)) {
      throw new ConfigError(
        `REDIS_CLUSTER must be seed nodes as host:port separated by commas (e.g. 10.0.0.1:7000,10.0.0.2:7000), got ${JSON.stringify(part.trim())} in ${JSON.stringify(raw)}`,
      );
    }
    return { host, port };
  });
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
    redisCluster: seeds(env),
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
  if (config.redisCluster !== undefined) {
    if (config.store !== "redis")
      throw new ConfigError("REDIS_CLUSTER is used only with WHISPER_STORE=redis: set both, or neither");
    if (env.REDIS_URL?.trim())
      throw new ConfigError("set REDIS_URL (one Redis server) or REDIS_CLUSTER (a Redis Cluster), not both");
  }
  // Braces would make the prefix a hash tag of its own (docs in packages/store-redis/README.md).
  if (/[{}]/.test(config.keyPrefix)) {
    throw new ConfigError(
      `WHISPER_KEY_PREFIX must not contain "{" or "}", got ${JSON.stringify(config.keyPrefix)}`,
    );
  }
  if (config.httpHeadersTimeoutMs > config.httpRequestTimeoutMs) {
    throw new ConfigError(
      `WHISPER_HTTP_HEADERS_TIMEOUT_MS (${config.httpHeadersTimeoutMs}) must not exceed WHISPER_HTTP_REQUEST_TIMEOUT_MS (${config.httpRequestTimeoutMs})`,
    );
  }
  return config;
}
