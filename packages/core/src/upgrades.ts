import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/**
 * Every HTTP upgrade must be answered. Node leaves an upgrade request that no `upgrade` listener
 * answers open forever (the socket stays in CLOSE-WAIT after the client left, holding a file
 * descriptor), so a flood of upgrades on a path nobody serves can exhaust a node's descriptors.
 * The transport adapters register the paths they serve here, and one guard per HTTP server
 * answers the rest: at once with 404 when WhisperChat owns every upgrade of the server
 * (`refuseUnclaimed`), or, when other handlers may claim them, once nothing was written to the
 * socket for a while (`unclaimedTimeoutMs`), the way engine.io's `destroyUpgrade` does.
 */

/** The part of a Node HTTP server the guard needs (`http.Server` and `https.Server` both fit). */
export interface UpgradeEmitter {
  on(event: "upgrade", listener: (req: UpgradeRequest, socket: Duplex, head: Buffer) => void): unknown;
  off(event: "upgrade", listener: (req: UpgradeRequest, socket: Duplex, head: Buffer) => void): unknown;
}

/** The part of an upgrade request the guard reads. */
export interface UpgradeRequest {
  url?: string | undefined;
}

/** Options of {@link guardUpgrades}. */
export interface UpgradeGuardOptions {
  /**
   * Answer an upgrade on a path no registered handler serves with 404 at once, and destroy the
   * socket. Right for a server whose upgrades all belong to WhisperChat's adapters. When several
   * adapters on one server ask, one asking is enough. @default false
   */
  refuseUnclaimed?: boolean;
  /**
   * Without `refuseUnclaimed`: an upgrade on a path no registered handler serves, to which
   * nothing was written after this many ms, gets 404 and is destroyed (another handler on the
   * server had its chance). `0` leaves such sockets alone (not recommended). When adapters ask
   * for different values, the smallest non-zero one wins. @default 10000
   */
  unclaimedTimeoutMs?: number;
}

/** Says whether an upgrade request belongs to a registered handler. */
export type UpgradeClaim = (req: UpgradeRequest) => boolean;

interface Guard {
  claims: Set<UpgradeClaim>;
  refuseUnclaimed: number;
  timeouts: number[];
  listener: (req: UpgradeRequest, socket: Duplex) => void;
}

const guards = new WeakMap<UpgradeEmitter, Guard>();

/** What {@link guardUpgrades} returns: releases this registration. */
export interface UpgradeRegistration {
  /** Unregisters the claim and the options; the guard goes when its last registration does. */
  release(): void;
}

/**
 * Registers `claim` (the upgrades one adapter serves) on `server` and makes sure every other
 * upgrade request on it is answered (see {@link UpgradeGuardOptions}). Used by WhisperChat's
 * transport adapters; apps that add their own upgrade handler to a guarded server register it
 * too, so that the guard leaves its requests alone:
 *
 * ```ts
 * guardUpgrades(server, (req) => req.url?.startsWith("/my-ws") === true);
 * ```
 */
export function guardUpgrades(
  server: UpgradeEmitter,
  claim: UpgradeClaim,
  options: UpgradeGuardOptions = {},
): UpgradeRegistration {
  const timeout = options.unclaimedTimeoutMs ?? 10_000;
  if (!Number.isFinite(timeout) || timeout < 0)
    throw new RangeError(`unclaimedTimeoutMs must be a non-negative number, got ${timeout}`);
  let guard = guards.get(server);
  if (guard === undefined) {
    const g: Guard = { claims: new Set(), refuseUnclaimed: 0, timeouts: [], listener: () => undefined };
    g.listener = (req, socket) => onUpgrade(g, req, socket);
    guard = g;
    guards.set(server, g);
    server.on("upgrade", g.listener);
  }
  const g = guard;
  g.claims.add(claim);
  if (options.refuseUnclaimed === true) g.refuseUnclaimed++;
  g.timeouts.push(timeout);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      g.claims.delete(claim);
      if (options.refuseUnclaimed === true) g.refuseUnclaimed--;
      const i = g.timeouts.indexOf(timeout);
      if (i >= 0) g.timeouts.splice(i, 1);
      if (g.claims.size === 0) {
        server.off("upgrade", g.listener);
        guards.delete(server);
      }
    },
  };
}

function onUpgrade(g: Guard, req: UpgradeRequest, socket: Duplex): void {
  for (const claim of g.claims) {
    let mine = false;
    try {
      mine = claim(req);
    } catch {
      mine = false;
    }
    if (mine) return;
  }
  socket.on("error", destroySelf);
  if (g.refuseUnclaimed > 0) {
    answerUpgrade(socket, 404, { code: "not_found", message: "no WebSocket endpoint at this path" });
    return;
  }
  let timeout = 0;
  for (const t of g.timeouts) if (t > 0 && (timeout === 0 || t < timeout)) timeout = t;
  if (timeout === 0) return;
  const timer = setTimeout(() => {
    const written = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0;
    if (!socket.destroyed && written === 0) {
      answerUpgrade(socket, 404, { code: "not_found", message: "no WebSocket endpoint at this path" });
    }
  }, timeout);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

function destroySelf(this: Duplex): void {
  this.destroy();
}

/** The JSON body of an HTTP refusal: a protocol error code and a readable reason. */
export interface RefusalBody {
  code: string;
  message: string;
}

/**
 * Answers an upgrade request with a plain HTTP response and closes the socket (destroying it if
 * the peer does not take the response within a second). Never throws; a socket that is
 * destroyed or already answered is left alone.
 */
export function answerUpgrade(
  socket: Duplex,
  status: number,
  body: RefusalBody,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (socket.destroyed || socket.writableEnded) return;
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
    "Connection: close",
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(text)}`,
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  socket.end(`${lines.join("\r\n")}\r\n\r\n${text}`);
  // A peer that never reads would keep the half-closed socket: cut it off.
  const cutoff = setTimeout(() => socket.destroy(), 1000);
  cutoff.unref();
  socket.once("close", () => clearTimeout(cutoff));
}
