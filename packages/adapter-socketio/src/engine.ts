import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { UpgradeGuardOptions, UpgradeRegistration, WhisperHub } from "@whisperchat/core";
import { type Corkable, corkForTick, guardUpgrades } from "@whisperchat/core";
import type { Server, Socket } from "socket.io";
import type { CommonOptions } from "./options.js";

// Engine.IO internals, all in this file: the engine's options (`allowRequest`), its HTTP server,
// its write buffer and its WebSocket transport's TCP socket. They are not public API of
// socket.io/engine.io; each read is checked, and the tests of this package cover every use
// against the socket.io versions the package supports.

type AllowRequest = (
  req: IncomingMessage,
  fn: (err: string | null | undefined, success: boolean) => void,
) => void;

/** The engine's options, where `allowRequest` lives (engine.io reads it on every handshake). */
interface EngineWithOptions {
  opts?: { allowRequest?: AllowRequest };
}

/**
 * Puts the hub's handshake limiter in front of the engine's `allowRequest` (the app's own, if
 * any, runs after it). Done once per engine.
 */
export function limitEngineHandshakes(hub: WhisperHub, io: Server): void {
  const engine = io.engine as unknown as EngineWithOptions | undefined;
  const opts = engine?.opts;
  if (opts === undefined || limitedEngines.has(opts)) return;
  limitedEngines.add(opts);
  const inner = opts.allowRequest;
  opts.allowRequest = (req, fn) => {
    hub.throttleHandshake(req.socket.remoteAddress ?? "", req.headers).then(
      (refusal) => {
        if (refusal !== undefined) fn(refusal.message, false);
        else if (inner !== undefined) inner(req, fn);
        else fn(null, true);
      },
      () => fn("the server could not admit the connection; try again", false),
    );
  };
}

const limitedEngines = new WeakSet<object>();

/** Registers the engine's path with the upgrade guard of its HTTP server (see `guardUpgrades`). */
export function guardEngineUpgrades(io: Server, options: CommonOptions): UpgradeRegistration | undefined {
  const server = (io as unknown as { httpServer?: HttpServer | HttpsServer }).httpServer;
  if (server === undefined) return undefined;
  const prefix = `${io.path().replace(/\/$/, "")}/`;
  const guardOptions: UpgradeGuardOptions = { refuseUnclaimed: options.refuseOtherUpgrades === true };
  if (options.unclaimedUpgradeTimeoutMs !== undefined)
    guardOptions.unclaimedTimeoutMs = options.unclaimedUpgradeTimeoutMs;
  return guardUpgrades(server, (req) => (req.url ?? "").startsWith(prefix), guardOptions);
}

interface EnginePacket {
  data?: unknown;
}
interface EngineInternals {
  writeBuffer?: EnginePacket[];
  /** With the WebSocket transport, `socket` is the ws socket. */
  transport?: { socket?: { bufferedAmount?: unknown; _socket?: Corkable } };
}

/**
 * Listens to the engine's `flush` (a batch of packets handed to the transport). On the
 * WebSocket transport, each packet is a WebSocket frame and would be its own write: the TCP
 * socket is corked for the rest of the tick, so that what a turn of the event loop sends to
 * one client (the partner's messages, the answers to its own requests) leaves in one write.
 * Polling batches by itself. Shared by every connection; `this` is the engine socket.
 */
export function corkOnFlush(this: unknown): void {
  const tcp = (this as EngineInternals).transport?.socket?._socket;
  if (tcp !== undefined && typeof tcp.cork === "function") corkForTick(tcp);
}

/**
 * The bytes queued for one client: the packets in the engine's write buffer (waiting for the
 * transport, or for the next poll) plus what the WebSocket transport has not written yet. A long
 * engine buffer is counted incrementally: it only grows until it is flushed (replaced by a new
 * array).
 */
export class EngineBuffer {
  private seen: EnginePacket[] | undefined;
  private counted = 0;
  private bytes = 0;

  constructor(private readonly socket: Socket) {}

  get bytesQueued(): number {
    const conn = this.socket.conn as unknown as EngineInternals;
    const queue = conn.writeBuffer;
    let total = 0;
    if (Array.isArray(queue) && queue.length <= 16) {
      // Short (the usual case): summed afresh, so that no flushed packet is kept alive here.
      this.seen = undefined;
      for (const packet of queue) total += packetBytes(packet);
    } else if (Array.isArray(queue)) {
      if (queue !== this.seen || queue.length < this.counted) {
        this.seen = queue;
        this.counted = 0;
        this.bytes = 0;
      }
      for (; this.counted < queue.length; this.counted++) this.bytes += packetBytes(queue[this.counted]);
      total = this.bytes;
    }
    const ws = conn.transport?.socket?.bufferedAmount;
    if (typeof ws === "number") total += ws;
    return total;
  }
}

function packetBytes(packet: EnginePacket | undefined): number {
  const data = packet?.data;
  if (typeof data === "string") return Buffer.byteLength(data);
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data.byteLength;
  return 1;
}
