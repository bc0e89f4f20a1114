import type { WhisperOptions } from "@whisperchat/core";

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
