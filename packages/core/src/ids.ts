import { randomBytes } from "node:crypto";

/** A random URL-safe id with `bytes` bytes of entropy. */
export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString("base64url");
}

/**
 * Message ids unique across nodes and restarts: a random per-process prefix and a counter
 * (cheaper than fresh random bytes on the relay's hot path; message ids need not be secret).
 */
export function messageIds(): () => string {
  const prefix = randomId(6);
  let counter = 0;
  return () => {
    counter++;
    return `${prefix}${counter.toString(36)}`;
  };
}
