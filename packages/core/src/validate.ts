import { WhisperError } from "./errors.js";
import { findHiddenCharacters, hasVisibleCharacter, trimWhiteSpace } from "./names.js";
import type { ClientFrame, ClientFrameType, LatLng } from "./protocol.js";
import { CLIENT_FRAME_TYPES } from "./protocol.js";

/** The limits that validation enforces. */
export interface ValidationLimits {
  maxMessageChars: number;
  maxRangeKm: number;
  maxNameChars: number;
}

/** Longest request `id` accepted (and echoed back). */
export const MAX_ID_CHARS = 64;
/** Longest token accepted by `auth`. */
export const MAX_TOKEN_CHARS = 8192;
/** Longest block `reason` kept. */
export const MAX_REASON_CHARS = 200;
/** How much of an offending input an error message may quote. */
const QUOTE_CHARS = 24;

const TYPES: ReadonlySet<string> = new Set(CLIENT_FRAME_TYPES);
// C0 and C1 control characters, DEL, and the Unicode line/paragraph separators.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** A short, safe quotation of untrusted input for an error message. */
export function quote(value: string): string {
  const cut = value.length > QUOTE_CHARS ? `${value.slice(0, QUOTE_CHARS)}…` : value;
  return JSON.stringify(cut);
}

/** A validation failure, carrying the request `id` when the frame had a usable one. */
export class FrameError extends WhisperError {
  /** The `id` of the offending request, to echo in the error frame. */
  readonly requestId: string | undefined;
  constructor(code: WhisperError["code"], message: string, requestId?: string) {
    super(code, message);
    this.requestId = requestId;
  }
}

function bad(message: string, id?: string): FrameError {
  return new FrameError("bad_request", message, id);
}

function fail(code: WhisperError["code"], message: string, id: string | undefined): FrameError {
  return new FrameError(code, message, id);
}

/** Counts Unicode code points, stopping early once past `max`. */
function codePointsOver(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let n = 0;
  for (const _ of text) {
    n++;
    if (n > max) return true;
  }
  return false;
}

/** Whether a value is a plain object (`{}` or `Object.create(null)`): what a JSON object decodes to. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Parses one text frame. Throws a {@link WhisperError} `bad_request` when it is not JSON or
 * not an object; otherwise validates it as {@link validateClientFrame} does.
 */
export function parseClientFrame(text: string, limits: ValidationLimits): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad(`frame is not valid JSON (starts with ${quote(text)})`);
  }
  return validateClientFrame(value, limits);
}

/**
 * Validates a decoded client frame and returns it normalised (only the known fields, names
 * NFKC-normalised and trimmed, see {@link validateName}). Throws a {@link WhisperError} whose
 * code follows docs/protocol.md: wrong JSON types are `bad_request`; a location or range of the
 * right type but out of bounds (or not finite) is `invalid_location` / `invalid_range`; text
 * over the limit is `too_large`. The request `id`, when usable, is kept in
 * {@link FrameError.requestId}.
 */
export function validateClientFrame(value: unknown, limits: ValidationLimits): ClientFrame {
  if (!isPlainObject(value)) throw bad("a request must be an object with a string field `type`");
  const rawId = value.id;
  let id: string | undefined;
  if (rawId !== undefined) {
    if (typeof rawId !== "string") throw bad("`id` must be a string");
    if (rawId.length > MAX_ID_CHARS) throw bad(`\`id\` must be at most ${MAX_ID_CHARS} characters`);
    id = rawId;
  }
  const type = value.type;
  if (typeof type !== "string") throw bad("a frame needs a string field `type`", id);
  if (!TYPES.has(type)) {
    throw fail("unknown_type", `unknown frame type ${quote(type)}; see the protocol for the types`, id);
  }
  const withId = <T extends object>(frame: T): T => (id === undefined ? frame : { ...frame, id });
  switch (type as ClientFrameType) {
    case "join": {
      const location = validateLocation(value.location, id);
      const rangeKm = validateRange(value.rangeKm, limits.maxRangeKm, id);
      const frame: ClientFrame = { type: "join", location, rangeKm };
      if (value.name !== undefined) frame.name = validateName(value.name, limits.maxNameChars, id);
      return withId(frame);
    }
    case "message": {
      const text = value.text;
      if (typeof text !== "string") throw bad("`message` needs a string field `text`", id);
      if (text.trim().length === 0) throw bad("`text` must not be empty", id);
      if (codePointsOver(text, limits.maxMessageChars)) {
        throw fail("too_large", `\`text\` is longer than ${limits.maxMessageChars} characters`, id);
      }
      return withId({ type: "message", text });
    }
    case "typing": {
      if (typeof value.active !== "boolean") throw bad("`typing` needs a boolean field `active`", id);
      return withId({ type: "typing", active: value.active });
    }
    case "block": {
      const reason = value.reason;
      if (reason !== undefined && typeof reason !== "string") throw bad("`reason` must be a string", id);
      const frame: ClientFrame = { type: "block" };
      if (typeof reason === "string") frame.reason = reason.slice(0, MAX_REASON_CHARS);
      return withId(frame);
    }
    case "auth": {
      const token = value.token;
      if (typeof token !== "string" || token.length === 0) {
        throw bad("`auth` needs a non-empty string field `token`", id);
      }
      if (token.length > MAX_TOKEN_CHARS) {
        throw fail("too_large", `\`token\` is longer than ${MAX_TOKEN_CHARS} characters`, id);
      }
      return withId({ type: "auth", token });
    }
    case "next":
    case "leave":
    case "ping":
      return withId({ type } as ClientFrame);
  }
}

function validateLocation(value: unknown, id: string | undefined): LatLng {
  if (!isPlainObject(value)) throw bad("`location` must be an object `{lat, lng}`", id);
  const { lat, lng } = value;
  if (typeof lat !== "number" || typeof lng !== "number") {
    throw bad("`location.lat` and `location.lng` must be numbers", id);
  }
  if (!Number.isFinite(lat) || lat < -90 || lat > 90) {
    throw fail("invalid_location", "`location.lat` must be a finite number within [-90, 90]", id);
  }
  if (!Number.isFinite(lng) || lng < -180 || lng > 180) {
    throw fail("invalid_location", "`location.lng` must be a finite number within [-180, 180]", id);
  }
  return { lat, lng };
}

function validateRange(value: unknown, maxRangeKm: number, id: string | undefined): number {
  if (typeof value !== "number") throw bad("`rangeKm` must be a number", id);
  if (!Number.isFinite(value) || value <= 0 || value > maxRangeKm) {
    throw fail("invalid_range", `\`rangeKm\` must be greater than 0 and at most ${maxRangeKm}`, id);
  }
  return value;
}

/**
 * Validates a display name and returns it normalised: NFKC, then trimmed; then 1 to `max` code
 * points with at least one letter, digit, symbol or punctuation mark. Refused (`bad_request`):
 * control characters, bidi controls (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069),
 * invisible characters (zero-width space and joiners, word joiner, soft hyphen, BOM, Hangul
 * fillers, other format, private-use and unassigned code points), and variation selectors
 * except right after a visible character (as in "❤️"). Scripts may be mixed: a guest's name is
 * neither unique nor checked against anyone's, so a look-alike gains nothing an exact copy
 * would not.
 */
export function validateName(value: unknown, max: number, id?: string): string {
  if (typeof value !== "string") throw bad("`name` must be a string", id);
  const name = trimWhiteSpace(value.normalize("NFKC"));
  if (name.length === 0) throw bad("`name` must not be empty", id);
  if (CONTROL.test(name)) throw bad("`name` must not contain control characters", id);
  const hidden = findHiddenCharacters(name, true);
  if (hidden === "bidi_control") {
    throw bad("`name` must not contain text-direction controls (such as U+202E)", id);
  }
  if (hidden === "invisible") {
    throw bad("`name` must not contain invisible characters (such as U+200B, zero-width space)", id);
  }
  if (!hasVisibleCharacter(name)) throw bad("`name` must contain a letter, digit or symbol", id);
  if (codePointsOver(name, max)) throw bad(`\`name\` must be at most ${max} characters`, id);
  return name;
}
