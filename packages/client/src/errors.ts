import type { ProtocolErrorCode } from "./protocol.js";

/**
 * Codes of errors raised by the client itself, next to the server's {@link ProtocolErrorCode}s:
 *
 * - `timeout`: no reply within `requestTimeoutMs` (or no `welcome` within `connectTimeoutMs`);
 *   the outcome of the request is unknown.
 * - `not_connected`: the request was made while the client had no session (before `connect()`,
 *   or while reconnecting, for requests other than messages).
 * - `connection_lost`: the connection dropped before the reply came; the outcome is unknown.
 *   Messages are not rejected this way: they are kept and resent after a resume.
 * - `session_lost`: a message waited for a resume, but the server started a fresh session, so it
 *   was never delivered.
 * - `connect_failed`: the connection could not be opened, or closed before `welcome`.
 * - `closed`: `close()` was called, or the connection closed for good (see `closeCode`).
 */
export type ClientSideErrorCode =
  | "timeout"
  | "not_connected"
  | "connection_lost"
  | "session_lost"
  | "connect_failed"
  | "closed";

/** Every `code` a {@link WhisperClientError} can carry. */
export type ClientErrorCode = ProtocolErrorCode | ClientSideErrorCode;

/** Options of {@link WhisperClientError}. */
export interface WhisperClientErrorOptions {
  /** For `rate_limited`: how long to wait before trying again, in ms. @default undefined */
  retryAfterMs?: number;
  /** The `id` of the request that failed. @default undefined */
  requestId?: string;
  /** The WebSocket close code, when a close caused the error. @default undefined */
  closeCode?: number;
  /** The underlying error. @default undefined */
  cause?: unknown;
}

/**
 * The one error type the client rejects with. `code` is stable and safe to branch on: a
 * protocol error code from the server, or one of {@link ClientSideErrorCode}.
 */
export class WhisperClientError extends Error {
  override readonly name = "WhisperClientError";
  /** A stable, machine-readable code. */
  readonly code: ClientErrorCode;
  /** For `rate_limited`: milliseconds until the request may succeed. */
  readonly retryAfterMs: number | undefined;
  /**
   * The `id` of the failed request. For a message, `send(text, { id })` with this id retries it
   * without risking a duplicate (the server drops a repeated id and repeats its `ack`).
   */
  readonly requestId: string | undefined;
  /** The WebSocket close code, when a close caused the error. */
  readonly closeCode: number | undefined;

  constructor(code: ClientErrorCode, message: string, options: WhisperClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
    this.requestId = options.requestId;
    this.closeCode = options.closeCode;
  }
}

/** True when `value` is a {@link WhisperClientError}, optionally with the given code. */
export function isWhisperClientError(value: unknown, code?: ClientErrorCode): value is WhisperClientError {
  return value instanceof WhisperClientError && (code === undefined || value.code === code);
}
