import type { Admission, Connection, ServerFrame, WhisperHub } from "@whisperchat/core";
import { type Corkable, closeReason, corkForTick } from "@whisperchat/core";
import { WebSocket } from "ws";

// One accepted ws socket: the Connection core writes to, and the events core is told about.

/**
 * Binds an accepted socket to a session. A top-level function on purpose: closures made here
 * keep only the socket alive, not the upgrade request, its headers and buffers.
 */
export function wire(
  hub: WhisperHub,
  ws: WebSocket,
  admission: Admission,
  alive: WeakMap<WebSocket, boolean>,
): void {
  alive.set(ws, true);
  ws.on("pong", () => alive.set(ws, true));
  const link = hub.open(admission, new WsConnection(ws));
  ws.on("message", (data, isBinary) => {
    if (isBinary) link.receiveBinary();
    else link.receiveText(data.toString());
  });
  // ws reports protocol violations (too large, bad UTF-8) as errors and closes by itself.
  ws.on("error", () => undefined);
  ws.on("close", (code) => link.closed(code));
}

/**
 * The transport seam for one ws socket. Frames written in the same turn of the event loop
 * are corked and leave in one write: a busy relay sends the partner's message and the
 * sender's ack, and often several of each, per turn.
 */
class WsConnection implements Connection {
  constructor(private readonly ws: WebSocket) {}
  send(frame: ServerFrame): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    // ws keeps the TCP socket as `_socket`.
    const socket = (ws as unknown as { _socket?: Corkable })._socket;
    if (socket !== undefined) corkForTick(socket);
    ws.send(JSON.stringify(frame));
  }
  close(code: number, reason: string): void {
    const state = this.ws.readyState;
    if (state === WebSocket.OPEN || state === WebSocket.CONNECTING) this.ws.close(code, closeReason(reason));
  }
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
}
