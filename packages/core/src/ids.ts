import { randomBytes } from "node:crypto";

/** A random URL-safe id with `bytes` bytes of entropy. */
export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString("base64url");
}
