import { Emitter } from "./emitter.js";
import { WhisperClientError } from "./errors.js";
import {
  type AckFrame,
  type ClientFrame,
  type ClientLimits,
  CloseCode,
  type PongFrame,
  type PublicUser,
  type ServerFrame,
  SUBPROTOCOL,
  type WaitingFrame,
  type WelcomeFrame,
} from "./protocol.js";
import {
  backoffDelay,
  type ResolvedReconnectOptions,
  resolveReconnect,
  shouldReconnect,
} from "./reconnect.js";
import { Requests } from "./requests.js";
import { isDeviceId } from "./storage.js";
import { codePoints, type Deferred, deferred, positiveOption, type Timer } from "./support.js";
import { refreshDelay, tokenExpiry } from "./token.js";
import type {
  Ack,
  ClientState,
  JoinOptions,
  Pong,
  SendOptions,
  Waiting,
  WebSocketConstructor,
  WebSocketLike,
  Welcome,
  WhisperClientEvents,
  WhisperClientOptions,
} from "./types.js";

/** `readyState` of an open WebSocket. */
const OPEN = 1;

/**
 * A WhisperChat client: promise-based requests, typed events, automatic reconnect with resume.
 * Create it with {@link createClient}.
 */
export class WhisperClient extends Emitter<WhisperClientEvents> {
  private readonly url: string;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly options: WhisperClientOptions;
  private readonly reconnectPolicy: ResolvedReconnectOptions;
  private readonly connectTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly tokenRefreshLeadMs: number;

  private currentState: ClientState = "closed";
  private socket: WebSocketLike | undefined;
  /** Bumped by every connection attempt and by `close()`: stale async work checks it. */
  private generation = 0;
  private lastWelcome: WelcomeFrame | undefined;
  private resumeToken: string | undefined;
  /**
   * The last partner message received in the current room (`<roomId>:<messageId>`, or
   * `<roomId>:` before the first): sent with a resume (`last`), so that the server replays from
   * the room's history what never arrived, e.g. after the server node crashed.
   */
  private cursor: string | undefined;
  /** Ids of the latest messages received, so that a message replayed twice is shown once. */
  private readonly seenMessages = new Set<string>();
  private storageRead = false;
  /** Settles at the next `welcome` (or when connecting fails / gives up). */
  private ready: Deferred<WelcomeFrame> | undefined;
  private attempt = 0;
  private token: string | undefined;
  /** Requests and messages waiting for their reply. */
  private readonly requests: Requests;
  private reconnectTimer: Timer | undefined;
  private connectTimer: Timer | undefined;
  private heartbeatTimer: Timer | undefined;
  private tokenTimer: Timer | undefined;

  constructor(options: WhisperClientOptions) {
    super();
    if (typeof options?.url !== "string" || options.url === "") {
      throw new TypeError("createClient: url is required, e.g. wss://example.com/whisper");
    }
    const impl =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
    if (impl === undefined) {
      throw new TypeError(
        'createClient: this runtime has no global WebSocket; pass one, e.g. createClient({ url, WebSocket }) with import { WebSocket } from "ws"',
      );
    }
    if (options.deviceId !== undefined && !isDeviceId(options.deviceId)) {
      throw new TypeError(
        "createClient: deviceId must be 16 to 128 characters of A-Z, a-z, 0-9, _ and - (e.g. webDeviceId(localStorage))",
      );
    }
    this.url = options.url;
    this.WebSocketImpl = impl;
    this.options = options;
    this.reconnectPolicy = resolveReconnect(options.reconnect);
    this.requests = new Requests(
      {
        send: (frame) => this.sendFrame(frame),
        heartbeatTimedOut: () => {
          if (this.socket !== undefined)
            this.abandon(this.socket, CloseCode.ClientTimeout, "heartbeat timeout");
        },
        requestTimedOut: () => this.probe(),
      },
      positiveOption(options.requestTimeoutMs, 10_000, "requestTimeoutMs"),
    );
    this.connectTimeoutMs = positiveOption(options.connectTimeoutMs, 10_000, "connectTimeoutMs");
    this.heartbeatIntervalMs = positiveOption(
      options.heartbeatIntervalMs,
      25_000,
      "heartbeatIntervalMs",
      true,
    );
    this.tokenRefreshLeadMs = positiveOption(options.tokenRefreshLeadMs, 30_000, "tokenRefreshLeadMs", true);
  }

  // -------------------------------------------------------------------------------------------
  // Read-only state

  /** The connection state. */
  get state(): ClientState {
    return this.currentState;
  }
  /** The last `welcome`, or `undefined` before the first one. */
  get welcome(): Welcome | undefined {
    return this.lastWelcome;
  }
  /** The session's user, as the server sees it. */
  get user(): PublicUser | undefined {
    return this.lastWelcome?.user;
  }
  /** The server's limits (from the last `welcome`). */
  get limits(): ClientLimits | undefined {
    return this.lastWelcome?.limits;
  }
  /** How many sent messages wait for their `ack` (including those kept while reconnecting). */
  get unacknowledged(): number {
    return this.requests.unacknowledged;
  }

  // -------------------------------------------------------------------------------------------
  // Connection

  /**
   * Connects and resolves with `welcome`. With a stored resume token the session is taken back
   * (`welcome.resumed`). Rejects with `connect_failed` when the connection cannot be opened or
   * closes before `welcome` (a refused handshake: bad token, banned, rate-limited, server
   * down), `timeout` after `connectTimeoutMs`, or `closed` when `close()` is called meanwhile.
   * Calling it while connected resolves the current `welcome`; while reconnecting, the next one.
   */
  connect(): Promise<Welcome> {
    if (this.currentState === "open" && this.lastWelcome !== undefined)
      return Promise.resolve(this.lastWelcome);
    if (this.ready !== undefined) return this.ready.promise;
    const ready = deferred<WelcomeFrame>();
    this.ready = ready;
    this.attempt = 0;
    this.setState("connecting");
    void this.openSocket();
    return ready.promise;
  }

  /**
   * Closes the connection with 1000, which ends the session on the server (a partner sees
   * `partner_left`), forgets the resume token, and rejects everything pending with `closed`.
   * Resolves when the socket has closed. `connect()` may be called again afterwards.
   */
  close(): Promise<void> {
    this.generation++;
    const socket = this.socket;
    this.socket = undefined;
    this.clearTimers();
    const error = new WhisperClientError("closed", "the client was closed");
    this.requests.failRequests(error);
    this.requests.failMessages(error);
    this.ready?.reject(error);
    this.ready = undefined;
    this.resumeToken = undefined;
    this.storageRead = true;
    void this.options.resumeStorage?.set(undefined);
    this.setState("closed");
    if (socket === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = setTimeout(resolve, 2000);
      socket.onclose = () => {
        clearTimeout(done);
        resolve();
      };
      socket.onmessage = null;
      socket.onerror = () => undefined;
      try {
        socket.close(CloseCode.Normal, "client closed");
      } catch {
        clearTimeout(done);
        resolve();
      }
    });
  }

  private async openSocket(): Promise<void> {
    const generation = ++this.generation;
    let token: string | undefined;
    let resume: string | undefined;
    try {
      token = await this.fetchToken();
      if (!this.storageRead && this.options.resumeStorage !== undefined) {
        this.storageRead = true;
        this.resumeToken ??= (await this.options.resumeStorage.get()) ?? undefined;
      }
      resume = this.resumeToken;
    } catch (error) {
      if (generation !== this.generation) return;
      this.attemptFailed(CloseCode.Abnormal, "", error);
      return;
    }
    if (generation !== this.generation) return;
    this.token = token;

    let socket: WebSocketLike;
    try {
      const url = new URL(this.url);
      if (token !== undefined) url.searchParams.set("token", token);
      if (resume !== undefined) url.searchParams.set("resume", resume);
      if (resume !== undefined && this.cursor !== undefined) url.searchParams.set("last", this.cursor);
      if (this.options.deviceId !== undefined) url.searchParams.set("device", this.options.deviceId);
      socket = new this.WebSocketImpl(url.toString(), [SUBPROTOCOL]);
    } catch (error) {
      this.attemptFailed(CloseCode.Abnormal, "", error);
      return;
    }
    this.socket = socket;
    let welcomed = false;
    this.connectTimer = setTimeout(() => {
      if (this.socket !== socket || welcomed) return;
      this.abandon(socket, CloseCode.ClientTimeout, "no welcome in time");
    }, this.connectTimeoutMs);

    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data !== "string") return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(event.data) as ServerFrame;
      } catch {
        return;
      }
      if (typeof frame !== "object" || frame === null || typeof frame.type !== "string") return;
      if (frame.type === "welcome") {
        welcomed = true;
        this.onWelcome(frame, resume !== undefined);
      } else if (welcomed) this.onFrame(frame);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.onSocketClosed(event.code, event.reason ?? "", welcomed);
    };
    socket.onerror = () => undefined; // a close follows
  }

  private async fetchToken(): Promise<string | undefined> {
    if (this.options.getToken !== undefined) {
      const t = await this.options.getToken();
      return typeof t === "string" && t !== "" ? t : undefined;
    }
    return this.options.token;
  }

  /** Gives up on a socket at once (no answer): closes it and handles the close without waiting. */
  private abandon(socket: WebSocketLike, code: number, reason: string): void {
    const welcomed = this.lastWelcome !== undefined && this.currentState === "open";
    this.socket = undefined;
    socket.onmessage = null;
    socket.onclose = null;
    try {
      socket.close(code, reason);
    } catch {
      // already closed
    }
    if (welcomed) this.onSocketClosed(code, reason, true);
    else
      this.attemptFailed(
        code,
        reason,
        new WhisperClientError("timeout", `no welcome within ${this.connectTimeoutMs} ms`),
      );
  }

  private onWelcome(frame: WelcomeFrame, triedResume: boolean): void {
    clearTimeout(this.connectTimer);
    this.attempt = 0;
    this.lastWelcome = frame;
    this.resumeToken = frame.resumeToken;
    void this.options.resumeStorage?.set(frame.resumeToken);
    // Open before the events (so that listeners may send), announced after them.
    const previous = this.currentState;
    this.currentState = "open";
    // Unacknowledged messages first, before anything the app sends in reaction to the events.
    if (frame.resumed) {
      this.requests.resendMessages();
    } else {
      this.cursor = undefined;
      this.requests.failMessages(
        new WhisperClientError("session_lost", "the session was lost before this message was acknowledged"),
      );
    }
    this.emit("welcome", frame);
    if (triedResume) this.emit(frame.resumed ? "resumed" : "sessionLost", frame);
    if (previous !== "open") this.emit("state", { state: "open", previous });
    const ready = this.ready;
    this.ready = undefined;
    ready?.resolve(frame);
    this.armHeartbeat();
    this.armTokenRefresh();
  }

  private onFrame(frame: ServerFrame): void {
    this.requests.reply(frame);
    if (frame.type === "message") {
      if (this.seenMessages.has(frame.messageId)) return; // replayed after a resume: shown already
      this.seenMessages.add(frame.messageId);
      if (this.seenMessages.size > 256)
        this.seenMessages.delete(this.seenMessages.values().next().value as string);
      this.cursor = `${frame.roomId}:${frame.messageId}`;
    } else if (frame.type === "matched") {
      this.cursor = `${frame.roomId}:`;
    } else if (frame.type === "partner_left") {
      this.cursor = undefined;
    }
    this.emit(frame.type, frame as never);
    if (frame.type !== "pong") this.armHeartbeat();
  }

  private onSocketClosed(code: number, reason: string, welcomed: boolean): void {
    this.socket = undefined;
    clearTimeout(this.connectTimer);
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.tokenTimer);
    this.requests.failRequests(
      new WhisperClientError("connection_lost", "the connection dropped before the reply came", {
        closeCode: code,
      }),
    );
    this.requests.holdMessages();
    if (!welcomed) {
      this.attemptFailed(code, reason, undefined);
      return;
    }
    const willReconnect = this.reconnectPolicy.enabled && shouldReconnect(code);
    this.emit("disconnected", { code, reason, willReconnect });
    if (willReconnect) {
      this.ready ??= deferred();
      this.setState("reconnecting");
      this.scheduleReconnect(code);
      return;
    }
    const error = new WhisperClientError(
      "closed",
      `the connection closed (${code}${reason ? `: ${reason}` : ""})`,
      {
        closeCode: code,
      },
    );
    this.requests.failMessages(error);
    this.ready?.reject(error);
    this.ready = undefined;
    // Forget the resume token only when the server ended the session. After other closes it may
    // still be resumed (by a later connect() or a new page); after 4001 it lives on elsewhere.
    if (code === CloseCode.Normal || code === CloseCode.Policy || code === CloseCode.TokenExpired) {
      this.resumeToken = undefined;
      void this.options.resumeStorage?.set(undefined);
    }
    this.setState("closed");
  }

  /** A connection attempt failed before `welcome`. */
  private attemptFailed(code: number, reason: string, cause: unknown): void {
    this.socket = undefined;
    clearTimeout(this.connectTimer);
    if (this.currentState === "reconnecting") {
      this.scheduleReconnect(code);
      return;
    }
    if (this.currentState !== "connecting") return;
    const timeout = cause instanceof WhisperClientError && cause.code === "timeout";
    const error = timeout
      ? cause
      : new WhisperClientError(
          "connect_failed",
          `could not connect to ${this.url} (${code}${reason ? `: ${reason}` : ""}); the server may be down, or it refused the handshake (token, rate limit)`,
          { closeCode: code, cause },
        );
    this.emit("disconnected", { code, reason, willReconnect: false });
    this.ready?.reject(error);
    this.ready = undefined;
    this.setState("closed");
  }

  private scheduleReconnect(code: number): void {
    this.attempt++;
    if (this.attempt > this.reconnectPolicy.maxAttempts) {
      const error = new WhisperClientError(
        "closed",
        `gave up reconnecting after ${this.attempt - 1} attempts`,
        {
          closeCode: code,
        },
      );
      this.requests.failMessages(error);
      this.ready?.reject(error);
      this.ready = undefined;
      this.setState("closed");
      return;
    }
    const delayMs = backoffDelay(this.reconnectPolicy, this.attempt);
    this.emit("reconnecting", { attempt: this.attempt, delayMs });
    const generation = this.generation;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (generation === this.generation && this.currentState === "reconnecting") void this.openSocket();
    }, delayMs);
  }

  private setState(state: ClientState): void {
    const previous = this.currentState;
    if (previous === state) return;
    this.currentState = state;
    this.emit("state", { state, previous });
  }

  private clearTimers(): void {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.tokenTimer);
  }

  // -------------------------------------------------------------------------------------------
  // Heartbeat and token refresh

  /** Pings after `heartbeatIntervalMs` without traffic; a ping without answer means a dead link. */
  private armHeartbeat(): void {
    clearTimeout(this.heartbeatTimer);
    if (this.heartbeatIntervalMs === 0 || this.currentState !== "open") return;
    this.heartbeatTimer = setTimeout(() => this.probe(), this.heartbeatIntervalMs);
  }

  private probe(): void {
    if (this.currentState !== "open") return;
    if (this.requests.probing) return;
    this.request<PongFrame>({ type: "ping" }, ["pong"], true).then(
      () => undefined,
      () => undefined,
    );
  }

  private armTokenRefresh(retryMs?: number): void {
    clearTimeout(this.tokenTimer);
    if (this.options.getToken === undefined || this.token === undefined || this.currentState !== "open")
      return;
    const expiresAt = tokenExpiry(this.token);
    if (expiresAt === undefined) return;
    const now = Date.now();
    if (expiresAt <= now) return; // too late: the server closes with 4401
    const delay =
      retryMs === undefined
        ? refreshDelay(expiresAt, now, this.tokenRefreshLeadMs)
        : Math.min(retryMs, expiresAt - now);
    const generation = this.generation;
    this.tokenTimer = setTimeout(() => {
      if (generation === this.generation) void this.refreshToken().catch(() => undefined);
    }, delay);
  }

  /**
   * Gets a token from `getToken` now and, when it differs from the current one, sends it with
   * `auth`. Resolves `true` when the server accepted a new token, `false` when there was nothing
   * to send. Rejects like a request (`unauthorized` when the server refused the token); on
   * failure the client tries again later, until the current token expires.
   */
  async refreshToken(): Promise<boolean> {
    const generation = this.generation;
    try {
      const next = await this.fetchToken();
      if (generation !== this.generation) return false;
      if (next === undefined || next === this.token) {
        this.armTokenRefresh();
        return false;
      }
      await this.request<AckFrame>({ type: "auth", token: next }, ["ack"]);
      if (generation !== this.generation) return false;
      this.token = next;
      this.emit("tokenRefreshed", { expiresAt: tokenExpiry(next) });
      this.armTokenRefresh();
      return true;
    } catch (error) {
      const e =
        error instanceof WhisperClientError
          ? error
          : new WhisperClientError("unauthorized", "getToken failed", { cause: error });
      if (generation === this.generation && this.currentState === "open") {
        this.emit("tokenRefreshFailed", e);
        this.armTokenRefresh(Math.max(1000, this.tokenRefreshLeadMs / 4));
      }
      throw e;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /** Sends a frame when the connection is open; `false` (nothing sent) otherwise. */
  private sendFrame(frame: ClientFrame): boolean {
    const socket = this.socket;
    if (socket === undefined || socket.readyState !== OPEN || this.currentState !== "open") return false;
    try {
      socket.send(JSON.stringify(frame));
    } catch {
      return false;
    }
    return true;
  }

  private request<R extends ServerFrame>(
    frame: ClientFrame,
    replies: readonly R["type"][],
    heartbeat = false,
  ): Promise<R> {
    if (this.currentState !== "open" || this.socket === undefined) {
      return Promise.reject(
        new WhisperClientError(
          "not_connected",
          this.currentState === "reconnecting"
            ? "reconnecting: try again when the client is open"
            : "not connected: call connect() first",
        ),
      );
    }
    return this.requests.request(frame, replies, heartbeat);
  }

  /** Enters the pool (or, while waiting, updates the point and range). Resolves with `waiting`. */
  join(options: JoinOptions): Promise<Waiting> {
    const frame: ClientFrame = { type: "join", location: options.location, rangeKm: options.rangeKm };
    if (options.name !== undefined) frame.name = options.name;
    return this.request<WaitingFrame>(frame, ["waiting"]);
  }

  /**
   * Sends a chat message to the partner; resolves with its `ack` (`messageId`, `ts`). Each
   * message gets a unique id. When the connection drops, unacknowledged messages are kept (and
   * messages sent while reconnecting are queued) and sent again after the resume; the server
   * drops repeats by id, so the partner sees each once, in order. If the server starts a fresh
   * session instead, they reject with `session_lost`.
   *
   * Rejects at once, without sending, with `bad_request` for empty text and `too_large` for
   * text over `limits.maxMessageChars` or a frame over `limits.maxPayloadBytes`.
   */
  send(text: string, options: SendOptions = {}): Promise<Ack> {
    if (typeof text !== "string" || text.trim() === "") {
      return Promise.reject(new WhisperClientError("bad_request", "a message needs some text"));
    }
    if (this.currentState !== "open" && this.currentState !== "reconnecting") {
      return Promise.reject(new WhisperClientError("not_connected", "not connected: call connect() first"));
    }
    const id = options.id ?? this.requests.nextId();
    const existing = this.requests.queued(id);
    if (existing !== undefined) return existing;
    const frame = { type: "message" as const, id, text };
    const limits = this.lastWelcome?.limits;
    if (limits !== undefined) {
      if (codePoints(text) > limits.maxMessageChars) {
        return Promise.reject(
          new WhisperClientError(
            "too_large",
            `a message may have at most ${limits.maxMessageChars} characters`,
            {
              requestId: id,
            },
          ),
        );
      }
      if (new TextEncoder().encode(JSON.stringify(frame)).length > limits.maxPayloadBytes) {
        return Promise.reject(
          new WhisperClientError("too_large", `the message exceeds ${limits.maxPayloadBytes} bytes`, {
            requestId: id,
          }),
        );
      }
    }
    return this.requests.message(frame); // while reconnecting it waits for the resume
  }

  /**
   * Tells the partner whether the user is typing. Best effort: returns `false` (and sends
   * nothing) when not connected; the server drops it outside a room. Never rejects.
   */
  typing(active: boolean): boolean {
    return this.sendFrame({ type: "typing", active });
  }

  /**
   * Leaves the room and rejoins the pool with the last join parameters (not matching the same
   * partner again at once); from an idle session that joined before, rejoins. Resolves with
   * `waiting`.
   */
  next(): Promise<Waiting> {
    return this.request<WaitingFrame>({ type: "next" }, ["waiting"]);
  }

  /** Leaves the room and/or the pool; the session stays connected and idle. Resolves with `ack`. */
  leave(): Promise<Ack> {
    return this.request<AckFrame>({ type: "leave" }, ["ack"]);
  }

  /**
   * Like `next`, and the two users are never matched again. The `reason` goes to the host app,
   * never to the partner. Resolves with `waiting`.
   */
  block(reason?: string): Promise<Waiting> {
    return this.request<WaitingFrame>(reason === undefined ? { type: "block" } : { type: "block", reason }, [
      "waiting",
    ]);
  }

  /** Resolves with `pong`. */
  ping(): Promise<Pong> {
    return this.request<PongFrame>({ type: "ping" }, ["pong"]);
  }
}

/**
 * Creates a client. Nothing is sent until `connect()`.
 *
 * ```ts
 * import { createClient } from "@whisperchat/client";
 * import { WebSocket } from "ws"; // Node 20; browsers have one
 *
 * const client = createClient({ url: "ws://localhost:3000/whisper", WebSocket });
 * client.on("matched", (m) => console.log(`matched with ${m.partner.name}`));
 * client.on("message", (m) => console.log(m.text));
 * await client.connect();
 * await client.join({ location: { lat: 48.85, lng: 2.35 }, rangeKm: 10 });
 * ```
 */
export function createClient(options: WhisperClientOptions): WhisperClient {
  return new WhisperClient(options);
}
