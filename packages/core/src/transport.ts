import type { Duplex } from "node:stream";
import type { Admission, Handshake, Refusal } from "./connection.js";
import { answerUpgrade } from "./upgrades.js";

// What every transport adapter does the same way (docs/design.md, "Transports"): refusals,
// admission with a deadline, corking per tick, close reasons. The adapters keep only what is
// specific to their library.

/** A refused handshake (see {@link Refusal}); `retryAfterSec` is at least 1 when given. */
export function refusal(
  status: Refusal["status"],
  code: Refusal["code"],
  message: string,
  retryAfterSec?: number,
): Refusal {
  const r: Refusal = { ok: false, status, code, message };
  if (retryAfterSec !== undefined) r.retryAfterSec = Math.max(1, retryAfterSec);
  return r;
}

/** The 503 a client gets when it may simply try again in a second. */
export function unavailable(message: string): Refusal {
  return refusal(503, "internal", message, 1);
}

/**
 * Answers a refused WebSocket upgrade with a plain HTTP response (the JSON body `{code,
 * message}` and `Retry-After` when known), never an accepted socket.
 */
export function refuseUpgrade(socket: Duplex, refused: Refusal): void {
  const headers: Record<string, string> = {};
  if (refused.retryAfterSec !== undefined) headers["Retry-After"] = String(refused.retryAfterSec);
  answerUpgrade(socket, refused.status, { code: refused.code, message: refused.message }, headers);
}

/** What {@link admitHandshake} needs of the hub. */
export interface Admitter {
  admit(handshake: Handshake): Promise<Admission>;
  cancel(admission: Admission): void;
}

/** Options of {@link admitHandshake}. */
export interface AdmitOptions {
  /** Whether the endpoint stopped accepting (its adapter is closing): answered 503. @default never */
  closed?: () => boolean;
  /**
   * The longest an admission may take (a slow hook, a store that does not answer), in ms; past
   * it the handshake is refused with 503, and the admission, if it comes later, is given back
   * with `hub.cancel`. @default no deadline
   */
  timeoutMs?: number;
}

/**
 * Asks the hub to admit a handshake, the way adapters must: refused while the endpoint is
 * closed, refused with 503 if the admission fails or takes longer than `timeoutMs`. Never
 * rejects. An accepted admission must reach `hub.open`, or `hub.cancel` when the client is gone.
 */
export function admitHandshake(
  hub: Admitter,
  handshake: Handshake,
  options: AdmitOptions = {},
): Promise<Admission> {
  if (options.closed?.() === true) return Promise.resolve(unavailable("the endpoint is closed"));
  const admission = hub.admit(handshake).catch(() => unavailable("admission failed"));
  const { timeoutMs } = options;
  if (timeoutMs === undefined) return admission;
  return new Promise((resolve) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      resolve(unavailable("the handshake took too long; try again"));
    }, timeoutMs);
    timer.unref();
    admission.then((answer) => {
      clearTimeout(timer);
      if (late) hub.cancel(answer);
      else resolve(answer);
    });
  });
}

/** A socket that can batch writes (a `net.Socket`). */
export interface Corkable {
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
}

/** Sockets corked until the end of this tick. */
const corked = new WeakSet<Corkable>();

/**
 * Corks a TCP socket until the end of the current tick, once per tick: what a turn of the event
 * loop writes to one client (the partner's messages, the answers to its own requests) leaves in
 * one write instead of one per frame.
 */
export function corkForTick(socket: Corkable): void {
  if (corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    if (!socket.destroyed) socket.uncork();
  });
}

/** A close reason cut to the 123 bytes a WebSocket close frame allows (on a character boundary). */
export function closeReason(reason: string): string {
  if (reason.length <= 41 || Buffer.byteLength(reason) <= 123) return reason; // 3 bytes a code unit at most
  const bytes = Buffer.from(reason);
  let end = 123;
  while (((bytes[end] ?? 0) & 0xc0) === 0x80) end--; // a UTF-8 continuation byte: mid-character
  return bytes.toString("utf8", 0, end);
}
