import { AssertionError } from "node:assert";
import type { ErrorCode } from "../errors.js";
import { WhisperError } from "../errors.js";
import type {
  AckFrame,
  LatLng,
  PongFrame,
  ReplyFrame,
  ServerFrame,
  WaitingFrame,
  WelcomeFrame,
} from "../protocol.js";
import type { OutboundFrame } from "./transport-suite.js";

// The client side of the app test kit (docs/design.md, "Transports"): one typed, test-oriented
// client over any wire, in-process (in-process.ts) or a real WebSocket (ws-client.ts).

// Taken when this module loads, so that fake timers installed later by a test (vitest's
// `vi.useFakeTimers()`, node:test's `mock.timers`) do not stop the kit's own timeouts.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

/** How long a client waits for a frame, a reply or its welcome, by default, in ms. */
export const DEFAULT_TIMEOUT_MS = 2000;

/** Options shared by every way of connecting a test client. */
export interface ConnectOptions {
  /** The token for the app's `authenticate` hook (the `token` handshake parameter). @default none (a guest) */
  token?: string;
  /** A resume token from an earlier `welcome` (the `resume` parameter). @default none */
  resume?: string;
  /** Further handshake parameters, e.g. `last`. @default none */
  params?: Record<string, string>;
  /**
   * How long the client waits for its `welcome`, for a reply to a request and, unless told
   * otherwise, for `nextFrame` and `expectFrame`, in real milliseconds (fake timers do not
   * touch it). @default 2000
   */
  timeoutMs?: number;
}

/** The options of a request helper or a wait. */
export interface WaitOptions {
  /** How long to wait, in real milliseconds. @default the client's `timeoutMs` (2000) */
  timeoutMs?: number;
}

/** What `join` sends, and how long it waits for `waiting`. */
export interface JoinOptions extends WaitOptions {
  /** Where the user is. */
  location: LatLng;
  /** How far the user accepts a partner to be, in km. */
  rangeKm: number;
  /** The name to show to partners (guests only). @default the identity's name */
  name?: string;
}

/** How a connection ended, as the client saw it. */
export interface CloseInfo {
  /** The close code: the server's (e.g. 1008, 4001, 4401), the client's own, or 1006 when cut. */
  code: number;
  /** The close reason; empty when there was none. */
  reason: string;
}

/** A frame of the given type. */
export type FrameOf<T extends ServerFrame["type"]> = Extract<ServerFrame, { type: T }>;

/**
 * A chat client for tests, the same in-process (`connectInProcess`, `createTestHub`) and over a
 * real WebSocket (`connectWs`), so that one test body runs both ways.
 *
 * Request helpers (`join`, `send`, `next`, `leave`, `block`, `ping`, `auth`, `request`) give the
 * request an `id` and resolve with its reply, which they take: it is not left for `nextFrame`.
 * An `error` reply rejects with a `WhisperError` carrying its `code` (and `retryAfterMs`).
 * Every other frame waits in arrival order for `nextFrame` / `expectFrame`.
 */
export interface TestChatClient {
  /** The `welcome` the connection opened with. */
  readonly welcome: WelcomeFrame;
  /** The session's id (from `welcome`). */
  readonly sessionId: string;
  /** Every frame received so far, in order, `welcome` and replies included. */
  readonly frames: readonly ServerFrame[];
  /** Frames received and not yet taken by `nextFrame` / `expectFrame`. */
  pending(): readonly ServerFrame[];

  /** Enters the pool (or moves while waiting); resolves with `waiting`. */
  join(options: JoinOptions): Promise<WaitingFrame>;
  /** Sends a chat message to the partner; resolves with its `ack`. */
  send(text: string, options?: WaitOptions): Promise<AckFrame>;
  /** Sends the typing indicator (no reply). */
  typing(active: boolean): void;
  /** Leaves the partner and waits again; resolves with `waiting`. */
  next(options?: WaitOptions): Promise<WaitingFrame>;
  /** Leaves the room or the pool; resolves with the `ack`. */
  leave(options?: WaitOptions): Promise<AckFrame>;
  /** Blocks the partner and waits again; resolves with `waiting`. */
  block(reason?: string, options?: WaitOptions): Promise<WaitingFrame>;
  /** Resolves with the `pong`: every frame the server sent before it has arrived by then. */
  ping(options?: WaitOptions): Promise<PongFrame>;
  /** Sends a fresh token; resolves with the `ack`. */
  auth(token: string, options?: WaitOptions): Promise<AckFrame>;
  /** Sends any frame with a fresh `id` and resolves with its reply (an `error` reply rejects). */
  request(frame: OutboundFrame, options?: WaitOptions): Promise<ReplyFrame>;

  /** Sends a frame as it is (no `id` added, nothing awaited), e.g. to test bad input. */
  sendFrame(frame: OutboundFrame): void;
  /** Sends raw text, e.g. text that is not JSON. */
  sendText(text: string): void;
  /** Sends a binary frame (the protocol answers `bad_request`). @default data: one zero byte */
  sendBinary(data?: Uint8Array): void;

  /** Takes the next frame; rejects after the timeout, or if the connection closed first. */
  nextFrame(options?: WaitOptions): Promise<ServerFrame>;
  /**
   * Takes frames until one of `type` comes and resolves with it. Rejects with a message listing
   * the frames seen when none comes in time, when the connection closes first, or when an
   * `error` frame comes while waiting for another type.
   */
  expectFrame<T extends ServerFrame["type"]>(type: T, options?: WaitOptions): Promise<FrameOf<T>>;

  /**
   * Resolves with how the connection ended once it is closed; rejects, listing the frames
   * received, when it is still open after the timeout.
   */
  expectClose(options?: WaitOptions): Promise<CloseInfo>;
  /** Resolves once the connection is closed, by either side or cut (no timeout: see `expectClose`). */
  readonly closed: Promise<CloseInfo>;
  /** How the connection ended; `undefined` while it is open. */
  readonly closeInfo: CloseInfo | undefined;
  /**
   * Closes the connection (1000, the default, ends the session; another code leaves it
   * resumable) and resolves once closed. Reading resumes if it was paused.
   */
  close(code?: number, reason?: string): Promise<CloseInfo>;
  /** Cuts the connection as a lost network would: nothing in flight arrives, the server sees 1006. */
  drop(): Promise<void>;
  /** Stops reading: frames pile up on the server's side (its `bufferedAmount` grows). */
  pause(): void;
  /** Reads again, delivering what piled up. */
  resume(): void;
}

/** A handshake the server refused. */
export class ConnectionRefusedError extends Error {
  override readonly name = "ConnectionRefusedError";
  /**
   * The HTTP status (400, 401, 403, 429 or 503). `undefined` when the WebSocket implementation
   * does not tell it (the standard `WebSocket` of browsers and Node 22; `ws` does).
   */
  readonly status: number | undefined;
  /** The protocol error code of the refusal, when known. */
  readonly code: ErrorCode | undefined;
  /** For 429 and 503: seconds after which trying again makes sense, when known. */
  readonly retryAfterSec: number | undefined;

  constructor(
    message: string,
    refusal: {
      status?: number | undefined;
      code?: ErrorCode | undefined;
      retryAfterSec?: number | undefined;
    },
  ) {
    super(message);
    this.status = refusal.status;
    this.code = refusal.code;
    this.retryAfterSec = refusal.retryAfterSec;
  }
}

/** What a client drives: one transport connection, from the client's side. */
export interface ClientWire {
  sendText(text: string): void;
  sendBinary(data: Uint8Array): void;
  close(code: number, reason: string): void;
  drop(): void;
  pause(): void;
  resume(): void;
}

/** Options of {@link KitClient}, set by whoever connects it. */
export interface KitClientOptions {
  timeoutMs: number;
  /** A line added to every failure message (e.g. that the hub's clock is manual). */
  hint?: string | undefined;
}

let requestSeq = 0;
/** Request ids unique in the process: a resumed session never sees one again (a resend would be acked, not delivered). */
const nextRequestId = (): string => `kit-${(++requestSeq).toString(36)}`;

const REPLY_TYPES: ReadonlySet<string> = new Set(["ack", "pong", "waiting", "error"]);

interface PendingRequest {
  resolve(frame: ReplyFrame): void;
  reject(error: Error): void;
}

/** One frame, short, for a failure message. */
function describeFrame(frame: ServerFrame): string {
  const { type, ...rest } = frame;
  const json = JSON.stringify(rest);
  return `${type} ${json.length > 100 ? `${json.slice(0, 97)}...` : json}`;
}

/** A timer on the real clock: `expired` resolves `"timeout"` after `ms`. */
function deadline(ms: number): { expired: Promise<"timeout">; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"timeout">((resolve) => {
    timer = realSetTimeout(() => resolve("timeout"), ms);
  });
  return { expired, cancel: () => realClearTimeout(timer) };
}

/** A timeout in ms, checked: a positive finite number, or a `RangeError`. */
export function checkTimeout(ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`timeoutMs must be a positive number, got ${ms}`);
  return ms;
}

/**
 * The transport-independent part of a test client: the queue of frames, replies matched to
 * requests by `id`, waits with clear failures. A wire feeds it with `receive` and `ended`.
 */
export class KitClient implements TestChatClient {
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<CloseInfo>;
  private readonly queue: ServerFrame[] = [];
  private arrivals: (() => void)[] = [];
  private readonly requests = new Map<string, PendingRequest>();
  private readonly invalid: string[] = [];
  private welcomeFrame: WelcomeFrame | undefined;
  private ending: CloseInfo | undefined;
  private closing = false;
  private settleClosed!: (info: CloseInfo) => void;
  private readonly timeoutMs: number;
  private readonly hint: string | undefined;

  constructor(
    private readonly wire: ClientWire,
    options: KitClientOptions,
  ) {
    this.timeoutMs = checkTimeout(options.timeoutMs);
    this.hint = options.hint;
    this.closed = new Promise((resolve) => {
      this.settleClosed = resolve;
    });
  }

  // ------------------------------------------------------------------------------------------
  // Fed by the wire

  /** A text frame arrived from the server. */
  receive(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
      if (typeof frame !== "object" || frame === null || typeof frame.type !== "string") throw new Error();
    } catch {
      this.invalid.push(text.slice(0, 100));
      this.notify();
      return;
    }
    this.frames.push(frame);
    if (this.welcomeFrame === undefined && frame.type === "welcome") this.welcomeFrame = frame;
    else {
      const id = (frame as { id?: unknown }).id;
      const request =
        typeof id === "string" && REPLY_TYPES.has(frame.type) ? this.requests.get(id) : undefined;
      if (request !== undefined) {
        this.requests.delete(id as string);
        request.resolve(frame as ReplyFrame);
      } else this.queue.push(frame);
    }
    this.notify();
  }

  /** The connection is closed (by either side, or cut). */
  ended(code: number, reason: string): void {
    if (this.ending !== undefined) return;
    this.ending = { code, reason };
    const why = this.closeText();
    for (const request of this.requests.values()) request.reject(this.failure(`no reply: ${why}`, []));
    this.requests.clear();
    this.settleClosed(this.ending);
    this.notify();
  }

  /** Resolves with this client once `welcome` came; rejects if the connection closed before it. */
  async welcomed(): Promise<this> {
    const timer = deadline(this.timeoutMs);
    try {
      for (;;) {
        if (this.welcomeFrame !== undefined) return this;
        if (this.invalid.length > 0 || (this.frames.length > 0 && this.frames[0]?.type !== "welcome"))
          throw this.failure("the first frame was not welcome", []);
        if (this.ending !== undefined) throw this.failure(`closed before welcome: ${this.closeText()}`, []);
        if ((await Promise.race([this.arrival(), timer.expired])) === "timeout") {
          this.abandon();
          throw this.failure(`no welcome within ${this.timeoutMs} ms`, []);
        }
      }
    } finally {
      timer.cancel();
    }
  }

  // ------------------------------------------------------------------------------------------
  // TestChatClient

  get welcome(): WelcomeFrame {
    if (this.welcomeFrame === undefined) throw new Error("this client has no welcome yet");
    return this.welcomeFrame;
  }

  get sessionId(): string {
    return this.welcome.sessionId;
  }

  get closeInfo(): CloseInfo | undefined {
    return this.ending;
  }

  pending(): readonly ServerFrame[] {
    return this.queue;
  }

  join(options: JoinOptions): Promise<WaitingFrame> {
    const frame: OutboundFrame = { type: "join", location: options.location, rangeKm: options.rangeKm };
    if (options.name !== undefined) frame.name = options.name;
    return this.expectReply(frame, "waiting", options);
  }

  send(text: string, options?: WaitOptions): Promise<AckFrame> {
    return this.expectReply({ type: "message", text }, "ack", options);
  }

  typing(active: boolean): void {
    this.sendFrame({ type: "typing", active });
  }

  next(options?: WaitOptions): Promise<WaitingFrame> {
    return this.expectReply({ type: "next" }, "waiting", options);
  }

  leave(options?: WaitOptions): Promise<AckFrame> {
    return this.expectReply({ type: "leave" }, "ack", options);
  }

  block(reason?: string, options?: WaitOptions): Promise<WaitingFrame> {
    return this.expectReply(
      reason === undefined ? { type: "block" } : { type: "block", reason },
      "waiting",
      options,
    );
  }

  ping(options?: WaitOptions): Promise<PongFrame> {
    return this.expectReply({ type: "ping" }, "pong", options);
  }

  auth(token: string, options?: WaitOptions): Promise<AckFrame> {
    return this.expectReply({ type: "auth", token }, "ack", options);
  }

  async request(frame: OutboundFrame, options: WaitOptions = {}): Promise<ReplyFrame> {
    const id = nextRequestId();
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.timeoutMs);
    const what = `${String(frame.type)} request`;
    const reply = new Promise<ReplyFrame>((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
    });
    try {
      this.sendFrame({ ...frame, id });
    } catch (error) {
      this.requests.delete(id);
      throw error;
    }
    const timer = deadline(timeoutMs);
    try {
      const answer = await Promise.race([reply, timer.expired]);
      if (answer === "timeout") {
        this.requests.delete(id);
        throw this.failure(`no reply to the ${what} within ${timeoutMs} ms`, []);
      }
      if (answer.type === "error") {
        const error = new WhisperError(answer.code, answer.message, { retryAfterMs: answer.retryAfterMs });
        throw error;
      }
      return answer;
    } finally {
      timer.cancel();
    }
  }

  sendFrame(frame: OutboundFrame): void {
    this.sendText(JSON.stringify(frame));
  }

  sendText(text: string): void {
    this.assertOpen();
    this.wire.sendText(text);
  }

  sendBinary(data: Uint8Array = new Uint8Array(1)): void {
    this.assertOpen();
    this.wire.sendBinary(data);
  }

  nextFrame(options: WaitOptions = {}): Promise<ServerFrame> {
    return this.take("nextFrame()", options, () => true);
  }

  expectFrame<T extends ServerFrame["type"]>(type: T, options: WaitOptions = {}): Promise<FrameOf<T>> {
    const what = `expectFrame(${JSON.stringify(type)})`;
    return this.take(what, options, (frame, taken) => {
      if (frame.type === type) return true;
      if (frame.type === "error")
        throw this.failure(`${what}: got error ${frame.code}: ${frame.message}`, [...taken, frame]);
      return false;
    }) as Promise<FrameOf<T>>;
  }

  async expectClose(options: WaitOptions = {}): Promise<CloseInfo> {
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.timeoutMs);
    const timer = deadline(timeoutMs);
    try {
      const outcome = await Promise.race([this.closed, timer.expired]);
      if (outcome === "timeout") throw this.failure(`expectClose(): still open after ${timeoutMs} ms`, []);
      return outcome;
    } finally {
      timer.cancel();
    }
  }

  async close(code = 1000, reason = ""): Promise<CloseInfo> {
    if (code !== 1000 && (code < 3000 || code > 4999))
      throw new RangeError(`close: a client may close with 1000 or 3000-4999, got ${code}`);
    if (this.ending === undefined && !this.closing) {
      this.closing = true;
      this.wire.resume();
      this.wire.close(code, reason);
    }
    return this.closed;
  }

  async drop(): Promise<void> {
    if (this.ending === undefined) this.wire.drop();
    await this.closed;
  }

  pause(): void {
    this.wire.pause();
  }

  resume(): void {
    this.wire.resume();
  }

  // ------------------------------------------------------------------------------------------

  private async expectReply<T extends ReplyFrame["type"]>(
    frame: OutboundFrame,
    type: T,
    options: WaitOptions | undefined,
  ): Promise<FrameOf<T>> {
    const reply = await this.request(frame, options);
    if (reply.type !== type)
      throw this.failure(
        `the ${String(frame.type)} request was answered ${describeFrame(reply)}, not ${type}`,
        [],
      );
    return reply as FrameOf<T>;
  }

  /**
   * Takes frames until `accept` returns true for one, which it resolves with. `accept` may throw
   * to fail at once.
   */
  private async take(
    what: string,
    options: WaitOptions,
    accept: (frame: ServerFrame, taken: readonly ServerFrame[]) => boolean,
  ): Promise<ServerFrame> {
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.timeoutMs);
    const taken: ServerFrame[] = [];
    const timer = deadline(timeoutMs);
    try {
      for (;;) {
        if (this.invalid.length > 0)
          throw this.failure(`${what}: the server sent a frame that is not JSON: ${this.invalid[0]}`, taken);
        const frame = this.queue.shift();
        if (frame !== undefined) {
          if (accept(frame, taken)) return frame;
          taken.push(frame);
          continue;
        }
        if (this.ending !== undefined) throw this.failure(`${what}: ${this.closeText()}`, taken);
        if ((await Promise.race([this.arrival(), timer.expired])) === "timeout")
          throw this.failure(`${what}: nothing matching within ${timeoutMs} ms`, taken);
      }
    } finally {
      timer.cancel();
    }
  }

  /** Gives up on a connection that never welcomed: cut if the wire can, closed otherwise. */
  private abandon(): void {
    try {
      this.wire.drop();
    } catch {
      this.wire.close(1000, "no welcome in time");
    }
  }

  private assertOpen(): void {
    if (this.ending !== undefined) throw new Error(`cannot send: ${this.closeText()}`);
    if (this.closing) throw new Error("cannot send: the client is closing the connection");
  }

  private closeText(): string {
    const e = this.ending;
    if (e === undefined) return "the connection is open";
    return `the connection closed with ${e.code}${e.reason === "" ? "" : ` (${e.reason})`}`;
  }

  /** Resolves when a frame arrives or the connection ends. */
  private arrival(): Promise<void> {
    return new Promise((resolve) => this.arrivals.push(resolve));
  }

  private notify(): void {
    const waiting = this.arrivals;
    this.arrivals = [];
    for (const wake of waiting) wake();
  }

  /** A failure that lists what the client saw. */
  private failure(message: string, taken: readonly ServerFrame[]): AssertionError {
    const who = this.welcomeFrame === undefined ? "" : ` (client ${this.welcomeFrame.user.name})`;
    const lines = [`${message}${who}`];
    lines.push(
      taken.length === 0
        ? "  frames taken while waiting: none"
        : `  frames taken while waiting:\n${taken.map((f) => `    ${describeFrame(f)}`).join("\n")}`,
    );
    lines.push(`  every frame received: ${this.frames.map((f) => f.type).join(", ") || "none"}`);
    if (this.ending !== undefined) lines.push(`  ${this.closeText()}`);
    if (this.hint !== undefined) lines.push(`  ${this.hint}`);
    return new AssertionError({ message: lines.join("\n") });
  }
}
