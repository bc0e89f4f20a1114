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
  connectPerSec: number;
  connectBurst: number;
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

const positive = (n: number) => n > 0;

/** Reads and checks every setting; throws {@link ConfigError} on the first bad one. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  return {
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
    connectPerSec: num(env, "WHISPER_CONNECT_PER_SEC", 5, positive, "a positive number"),
    connectBurst: num(env, "WHISPER_CONNECT_BURST", 20, positive, "a positive number"),
  };
}
