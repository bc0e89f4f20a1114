import { randomBytes } from "node:crypto";
import { createWhisper, rolePolicy, type WhisperHub, type WhisperOptions } from "@whisperchat/core";
import { createJwtAuth } from "@whisperchat/core/jwt";
import { createMemoryStore } from "@whisperchat/store-memory";

const UNLIMITED = { capacity: 1e9, ratePerSec: 1e9 };

/**
 * The hub's rate limits raised out of the way, for benchmarks that measure something else: every
 * client comes from 127.0.0.1, and a bench sends as fast as it can.
 */
export const NO_LIMITS = {
  messageRate: UNLIMITED,
  userMessageRate: UNLIMITED,
  churnRate: UNLIMITED,
  requestRate: UNLIMITED,
  guestChurnPerAddress: UNLIMITED,
  typingRate: UNLIMITED,
  connectRate: UNLIMITED,
} satisfies Partial<WhisperOptions>;

/**
 * A hub on the memory store with the limits out of the way: bare, or (`demo`) with the demo's
 * hooks (the JWT authentication with guest clients and the role policy). Observers and
 * transports are the caller's to add.
 */
export function benchHub(demo: boolean): WhisperHub {
  const jwt = demo ? createJwtAuth({ secret: randomBytes(32).toString("base64url") }) : undefined;
  return createWhisper({
    store: createMemoryStore(),
    ...(jwt === undefined
      ? {}
      : { authenticate: jwt.authenticate, reauthenticate: jwt.reauthenticate, authorize: rolePolicy({}) }),
    ...NO_LIMITS,
  });
}
