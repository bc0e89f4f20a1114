import type { WhisperError } from "../errors.js";
import type { ErrorFrame, ReplyFrame } from "../protocol.js";
import { FrameError } from "../validate.js";

/** How sessions build their answers: ids, error frames, the fixed refusals. */

export const TOO_FAST = "you are sending messages too fast";

/**
 * The `id` of a request refused before it was parsed (too many in flight), so that the client
 * can tell which one: a short string `id` of an object frame, else none.
 */
export function requestIdOf(input: unknown): string | undefined {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== "object" || value === null) return undefined;
  const id = (value as { id?: unknown }).id;
  return typeof id === "string" && id.length <= 64 ? id : undefined;
}

/** The one error every binary frame gets. */
export const BINARY = new FrameError("bad_request", "binary frames are not supported; send JSON text");

export function withId<T extends ReplyFrame>(frame: T, id: string | undefined): T {
  if (id !== undefined) frame.id = id;
  return frame;
}

/** The answer to a request the server failed to handle (the cause goes to the hub's `error`). */
export function internalError(id: string | undefined): ErrorFrame {
  return withId({ type: "error", code: "internal", message: "the server failed to handle this request" }, id);
}

export function errorFrame(error: WhisperError, id: string | undefined): ErrorFrame {
  const frame: ErrorFrame = { type: "error", code: error.code, message: error.message };
  if (id !== undefined) frame.id = id;
  if (error.retryAfterMs !== undefined) frame.retryAfterMs = error.retryAfterMs;
  return frame;
}
