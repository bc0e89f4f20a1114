/**
 * Error codes of the wire protocol (docs/protocol.md section 2), also used as the `code` of
 * {@link WhisperError}.
 */
export type ErrorCode =
  | "bad_request"
  | "unknown_type"
  | "invalid_location"
  | "invalid_range"
  | "too_large"
  | "not_in_room"
  | "in_room"
  | "rate_limited"
  | "forbidden"
  | "unauthorized"
  | "internal";

/** Every error code of the protocol, in the order of docs/protocol.md. */
export const ERROR_CODES: readonly ErrorCode[] = [
  "bad_request",
  "unknown_type",
  "invalid_location",
  "invalid_range",
  "too_large",
  "not_in_room",
  "in_room",
  "rate_limited",
  "forbidden",
  "unauthorized",
  "internal",
];

/** WebSocket close codes of the protocol (docs/protocol.md section 2, "Close codes"). */
export const CloseCode = {
  /** Normal close. */
  Normal: 1000,
  /** The server is shutting down for good. */
  GoingAway: 1001,
  /** Policy: flooding after repeated `rate_limited`, kicked or banned. */
  Policy: 1008,
  /** A frame larger than the transport maximum. */
  TooLarge: 1009,
  /** An internal error. */
  Internal: 1011,
  /** The server is restarting or draining: reconnect with `resume`, maybe to another node. */
  Restart: 1012,
  /** This session was resumed by another connection. */
  Replaced: 4001,
  /** The token expired during the session and was not replaced with `auth`. */
  TokenExpired: 4401,
} as const;

/** One of the close codes in {@link CloseCode}. */
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Options of {@link WhisperError}. */
export interface WhisperErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** For `rate_limited`: how long to wait before trying again, in milliseconds. */
  retryAfterMs?: number;
}

/**
 * The one error type WhisperChat throws and reports. `code` is stable and safe to branch
 * on; `message` says what to do about it.
 */
export class WhisperError extends Error {
  override readonly name = "WhisperError";
  /** A stable, machine-readable code. */
  readonly code: ErrorCode;
  /** For `rate_limited`: milliseconds until the action may succeed. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: WhisperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** True when `value` is a {@link WhisperError}, optionally with the given code. */
export function isWhisperError(value: unknown, code?: ErrorCode): value is WhisperError {
  return value instanceof WhisperError && (code === undefined || value.code === code);
}
