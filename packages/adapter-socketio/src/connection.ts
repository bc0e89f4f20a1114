import type { Connection, ReplyFrame, ServerFrame, SessionLink } from "@whisperchat/core";
import { CloseCode, isPlainObject } from "@whisperchat/core";
import type { Socket } from "socket.io";
import { EngineBuffer } from "./engine.js";
import { type AckAnswer, type AckError, CLOSE_EVENT, type CloseEventData } from "./options.js";

// One WhisperChat socket: the Connection core writes to, and the events it reads.

/** Close codes after which the whole underlying connection goes, not only the namespace. */
const TRANSPORT_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.Policy,
  CloseCode.TooLarge,
  CloseCode.Internal,
]);

/**
 * One client event: `type` is the event name, the payload its fields. A payload that is not
 * one plain object is handed to core as it came (an array), which answers `bad_request`.
 */
export function receive(link: SessionLink, event: unknown, args: unknown[]): void {
  const last = args.length > 0 ? args[args.length - 1] : undefined;
  const ack = typeof last === "function" ? (last as (answer: AckAnswer) => void) : undefined;
  const values = ack === undefined ? args : args.slice(0, -1);
  let frame: unknown;
  if (values.length === 0) frame = { type: event };
  else if (values.length === 1 && isPlainObject(values[0])) frame = { ...values[0], type: event };
  else frame = values;
  link.receive(frame, ack === undefined ? undefined : (reply) => ack(toAckAnswer(reply)));
}

/** Maps core's direct answer to what a Socket.IO ack callback receives. */
function toAckAnswer(frame: ReplyFrame): AckAnswer {
  if (frame.type === "error") {
    const error: AckError = { code: frame.code, message: frame.message };
    if (frame.retryAfterMs !== undefined) error.retryAfterMs = frame.retryAfterMs;
    return { ok: false, error };
  }
  const { type: _type, ...fields } = frame;
  return { ok: true, ...fields };
}

/**
 * One WhisperChat socket: the {@link Connection} core writes to. `bufferedAmount` is the bytes
 * queued for the client (see {@link EngineBuffer}).
 */
export class SocketConnection implements Connection {
  /** The session, once `hub.open` returned. */
  link: SessionLink | undefined;
  /** The close code the server closed with, if it did. */
  serverCode: number | undefined;
  private readonly buffer: EngineBuffer;
  constructor(
    private readonly socket: Socket,
    private readonly maxBufferedBytes: number,
  ) {
    this.buffer = new EngineBuffer(socket);
  }

  send(frame: ServerFrame): void {
    if (!this.socket.connected) return;
    const { type, ...payload } = frame;
    this.socket.emit(type, payload);
  }

  close(code: number, reason: string): void {
    const socket = this.socket;
    if (!socket.connected) return;
    this.serverCode = code;
    socket.emit(CLOSE_EVENT, { code, reason } satisfies CloseEventData);
    if (!TRANSPORT_CLOSE_CODES.has(code)) {
      socket.disconnect();
      return;
    }
    const stuck = this.bufferedAmount > this.maxBufferedBytes;
    socket.disconnect(true);
    // A client that does not read would hold the engine's buffer until it drains: cut it off.
    if (stuck) socket.conn.close(true);
  }

  get bufferedAmount(): number {
    return this.buffer.bytesQueued;
  }
}
