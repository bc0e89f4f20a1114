import { type ClientErrorCode, WhisperClientError } from "./errors.js";
import type { ClientFrame, ServerFrame } from "./protocol.js";
import { randomPrefix, type Timer } from "./support.js";
import type { Ack } from "./types.js";

// The client's requests in flight: their ids, the replies that settle them, their timeouts, and
// the messages kept unacknowledged across a reconnect until a resume resends them.

/** A request waiting for its reply. */
export interface Pending {
  id: string;
  frame: ClientFrame & { id: string };
  /** The reply types that settle it. */
  replies: readonly ServerFrame["type"][];
  resolve(frame: ServerFrame): void;
  reject(error: WhisperClientError): void;
  timer: Timer | undefined;
  /** An internal heartbeat ping: its timeout means a dead connection. */
  heartbeat?: boolean;
}

/** A chat message waiting for its `ack`; `promise` is handed out again for a repeated id. */
interface PendingMessage extends Pending {
  promise: Promise<Ack>;
}

/** What the requests need from the connection that carries them. */
export interface RequestLink {
  /** Sends a frame if the connection is open; `false` when it is not, or the send threw. */
  send(frame: ClientFrame): boolean;
  /** A heartbeat ping got no reply in time: the connection is to be taken for dead. */
  heartbeatTimedOut(): void;
  /** A request got no reply in time (and was rejected with `timeout`): time to probe the link. */
  requestTimedOut(): void;
}

/**
 * The requests of one client, by id: requests other than messages live for one connection;
 * messages stay until their `ack`, or until the session is lost or the client gives up.
 */
export class Requests {
  private readonly idPrefix = randomPrefix();
  private idCounter = 0;
  /** Requests other than messages, by id. */
  private readonly requests = new Map<string, Pending>();
  /** Messages not yet acknowledged, in the order they were sent. */
  private readonly unacked = new Map<string, PendingMessage>();

  constructor(
    private readonly link: RequestLink,
    /** How long a request waits for its reply, in ms. */
    private readonly timeoutMs: number,
  ) {}

  /** How many sent messages wait for their `ack`. */
  get unacknowledged(): number {
    return this.unacked.size;
  }

  /** Whether a heartbeat ping is in flight. */
  get probing(): boolean {
    for (const p of this.requests.values()) if (p.heartbeat) return true;
    return false;
  }

  /** A new request id, unique to this client. */
  nextId(): string {
    return `${this.idPrefix}-${(++this.idCounter).toString(36)}`;
  }

  /**
   * Sends `frame` with a new id and resolves with the first reply of one of the `replies` types;
   * rejects with the server's `error` for it, `timeout`, or `not_connected` when it cannot be sent.
   */
  request<R extends ServerFrame>(
    frame: ClientFrame,
    replies: readonly R["type"][],
    heartbeat = false,
  ): Promise<R> {
    const id = this.nextId();
    return new Promise<R>((resolve, reject) => {
      const pending: Pending = {
        id,
        frame: { ...frame, id },
        replies,
        resolve: resolve as (f: ServerFrame) => void,
        reject,
        timer: undefined,
      };
      if (heartbeat) pending.heartbeat = true;
      this.requests.set(id, pending);
      if (!this.write(pending)) {
        this.requests.delete(id);
        reject(new WhisperClientError("not_connected", "the connection is not open", { requestId: id }));
      }
    });
  }

  /** The promise of the message with this id, while it waits for its `ack`. */
  queued(id: string): Promise<Ack> | undefined {
    return this.unacked.get(id)?.promise;
  }

  /**
   * Sends a message frame, or keeps it for the resume when the connection is not open; resolves
   * with its `ack`.
   */
  message(frame: { type: "message"; id: string; text: string }): Promise<Ack> {
    let resolve!: (f: ServerFrame) => void;
    let reject!: (e: WhisperClientError) => void;
    const promise = new Promise<Ack>((res, rej) => {
      resolve = res as (f: ServerFrame) => void;
      reject = rej;
    });
    const pending = {
      id: frame.id,
      frame,
      replies: ["ack"] as const,
      resolve,
      reject,
      timer: undefined,
      promise,
    };
    this.unacked.set(frame.id, pending);
    this.write(pending); // while reconnecting it waits for the resume
    return promise;
  }

  /** Settles the request a reply (`ack`, `pong`, `waiting` or `error` with an `id`) is for. */
  reply(frame: ServerFrame): void {
    if (
      (frame.type === "ack" || frame.type === "pong" || frame.type === "waiting" || frame.type === "error") &&
      typeof frame.id === "string"
    ) {
      const pending = this.requests.get(frame.id) ?? this.unacked.get(frame.id);
      if (pending !== undefined && (frame.type === "error" || pending.replies.includes(frame.type))) {
        this.settle(pending, frame);
      }
    }
  }

  /** Sends again, in order, every message still waiting for its `ack` (after a resume). */
  resendMessages(): void {
    for (const pending of this.unacked.values()) this.write(pending);
  }

  /** Stops the timeouts of the unacknowledged messages: they wait for the next connection. */
  holdMessages(): void {
    for (const pending of this.unacked.values()) {
      clearTimeout(pending.timer);
      pending.timer = undefined;
    }
  }

  /** Rejects every request other than messages with `error` (carrying each request's id). */
  failRequests(error: WhisperClientError): void {
    rejectAll(this.requests, error);
  }

  /** Rejects every unacknowledged message with `error` (carrying each message's id). */
  failMessages(error: WhisperClientError): void {
    rejectAll(this.unacked, error);
  }

  private write(pending: Pending): boolean {
    if (!this.link.send(pending.frame)) return false;
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => this.timedOut(pending), this.timeoutMs);
    return true;
  }

  private settle(pending: Pending, frame: ServerFrame): void {
    clearTimeout(pending.timer);
    this.requests.delete(pending.id);
    this.unacked.delete(pending.id);
    if (frame.type === "error") {
      const options =
        frame.retryAfterMs === undefined
          ? { requestId: pending.id }
          : { requestId: pending.id, retryAfterMs: frame.retryAfterMs };
      pending.reject(new WhisperClientError(frame.code, frame.message, options));
    } else pending.resolve(frame);
  }

  private timedOut(pending: Pending): void {
    pending.timer = undefined;
    if (this.requests.get(pending.id) !== pending && this.unacked.get(pending.id) !== pending) return;
    this.requests.delete(pending.id);
    this.unacked.delete(pending.id);
    if (pending.heartbeat) {
      // The connection does not answer: take it for dead and resume on a new one.
      this.link.heartbeatTimedOut();
      return;
    }
    pending.reject(
      new WhisperClientError("timeout", `no reply to ${pending.frame.type} within ${this.timeoutMs} ms`, {
        requestId: pending.id,
      }),
    );
    this.link.requestTimedOut();
  }
}

/** Empties `pending` and rejects each entry with `error`, carrying the entry's own id. */
function rejectAll(pending: Map<string, Pending>, error: WhisperClientError): void {
  const all = [...pending.values()];
  pending.clear();
  for (const p of all) {
    clearTimeout(p.timer);
    p.reject(withRequestId(error, p.id));
  }
}

function withRequestId(error: WhisperClientError, id: string): WhisperClientError {
  const options: { requestId: string; closeCode?: number; retryAfterMs?: number } = { requestId: id };
  if (error.closeCode !== undefined) options.closeCode = error.closeCode;
  if (error.retryAfterMs !== undefined) options.retryAfterMs = error.retryAfterMs;
  return new WhisperClientError(error.code as ClientErrorCode, error.message, options);
}
