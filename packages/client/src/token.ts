/**
 * Reads the `exp` claim of a JWT, in ms since the epoch, WITHOUT verifying the token (only the
 * server can). Returns `undefined` when the token is not a JWT or has no numeric `exp`.
 */
export function tokenExpiry(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined || parts[1] === "") return undefined;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const payload: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof payload !== "object" || payload === null) return undefined;
    const exp = (payload as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long to wait before refreshing a token that expires at `expiresAt`: `leadMs` before the
 * expiry, but never later than half of the remaining lifetime (short-lived tokens), and never
 * negative.
 */
export function refreshDelay(expiresAt: number, now: number, leadMs: number): number {
  const remaining = expiresAt - now;
  if (remaining <= 0) return 0;
  return Math.max(0, remaining - Math.min(leadMs, remaining / 2));
}
