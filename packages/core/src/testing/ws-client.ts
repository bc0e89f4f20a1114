import type { IncomingMessage } from "node:http";
import type { ErrorCode } from "../errors.js";
import { ERROR_CODES } from "../errors.js";
import { SUBPROTOCOL } from "../protocol.js";
import {
  type ClientWire,
  ConnectionRefusedError,
  type ConnectOptions,
  checkTimeout,
  DEFAULT_TIMEOUT_MS,
  KitClient,
  type TestChatClient,
} from "./client.js";

// The test client over a real WebSocket, so that a test written for the in-process kit also runs
// end to end. Core does not depend on `ws`: the WebSocket constructor is the caller's (the global
// one of Node 22 and browsers, or `ws`'s on Node 20), like the client SDK's.

/** The parts of an event handler property the kit sets (bivariant, so the standard and `ws` types fit). */
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"] | null;

/** The part of the standard WebSocket interface the kit uses; `ws`'s `WebSocket` fits too. */
export interface TestWebSocket {
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<unknown>;
}

/** A WebSocket constructor: `globalThis.WebSocket` (Node 22, browsers) or `WebSocket` from `ws`. */
export type TestWebSocketConstructor = new (url: string, protocols?: string | string[]) => TestWebSocket;

/** Options of {@link connectWs}. */
export interface WsConnectOptions extends ConnectOptions {
  /**
   * The WebSocket implementation. Node 20 has none built in: pass `WebSocket` from `ws`, which
   * also gives a refusal's HTTP status and lets `drop`, `pause` and `resume` work (the standard
   * WebSocket has no way to cut a connection or stop reading). @default globalThis.WebSocket
   */
  WebSocket?: TestWebSocketConstructor;
}

/** What `ws`'s WebSocket has beyond the standard interface; used when present. */
interface WsExtras {
  terminate?(): void;
  pause?(): void;
  resume?(): void;
  once?(event: "unexpected-response", listener: (request: unknown, response: IncomingMessage) => void): void;
}

interface Refused {
  status: number;
  code: ErrorCode | undefined;
  message: string;
  retryAfterSec: number | undefined;
}

/** Calls `ws`'s own method `name` for the kit's `what`; a standard WebSocket has none. */
function extra(socket: TestWebSocket, name: "terminate" | "pause" | "resume", what: string): void {
  const fn = (socket as WsExtras)[name];
  if (typeof fn !== "function") {
    throw new TypeError(
      `${what} needs a WebSocket with ${name}(), which the standard one lacks: pass { WebSocket } from "ws" to connectWs`,
    );
  }
  fn.call(socket);
}

/** Reads a refused upgrade: status, `Retry-After`, and the `{ code, message }` body. */
function readRefusal(response: IncomingMessage, done: (refused: Refused) => void): void {
  let body = "";
  response.setEncoding("utf8");
  response.on("data", (chunk: string) => {
    if (body.length < 4096) body += chunk;
  });
  response.on("end", () => {
    let code: ErrorCode | undefined;
    let message = `HTTP ${response.statusCode}`;
    try {
      const parsed = JSON.parse(body) as { code?: unknown; message?: unknown };
      if (typeof parsed.code === "string" && (ERROR_CODES as readonly string[]).includes(parsed.code))
        code = parsed.code as ErrorCode;
      if (typeof parsed.message === "string") message = parsed.message;
    } catch {
      // not the protocol's JSON body: the status alone
    }
    const retryAfter = Number(response.headers["retry-after"]);
    done({
      status: response.statusCode ?? 0,
      code,
      message,
      retryAfterSec: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    });
  });
}

/**
 * Connects a test client to a WhisperChat endpoint over a real WebSocket: the same
 * {@link TestChatClient} as in-process, so one test body can run both ways. Resolves once
 * `welcome` came; rejects with a {@link ConnectionRefusedError} when the handshake is refused
 * (with its status and code when the WebSocket is `ws`'s).
 *
 * ```ts
 * // WebSocket: the ws package's on Node 20; Node 22 has a global one
 * const ana = await connectWs("ws://127.0.0.1:3000/whisper", { WebSocket, token: "ana" });
 * ```
 */
export async function connectWs(url: string, options: WsConnectOptions = {}): Promise<TestChatClient> {
  // Checked before the socket opens, which a bad option must not leave open.
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const Impl = options.WebSocket ?? (globalThis as { WebSocket?: TestWebSocketConstructor }).WebSocket;
  if (Impl === undefined) {
    throw new TypeError(
      "connectWs: this runtime has no global WebSocket (Node 20); pass one: connectWs(url, { WebSocket }) with the WebSocket of the ws package",
    );
  }
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new TypeError(`connectWs: not a URL: ${JSON.stringify(url)}`);
  }
  if (target.protocol !== "ws:" && target.protocol !== "wss:")
    throw new TypeError(`connectWs: the URL must start with ws:// or wss://, got ${JSON.stringify(url)}`);
  for (const [name, value] of Object.entries(options.params ?? {})) target.searchParams.set(name, value);
  if (options.token !== undefined) target.searchParams.set("token", options.token);
  if (options.resume !== undefined) target.searchParams.set("resume", options.resume);

  const socket = new Impl(target.toString(), [SUBPROTOCOL]);
  const wire: ClientWire = {
    sendText: (text) => socket.send(text),
    sendBinary: (data) => socket.send(data),
    close: (code, reason) => socket.close(code, reason),
    drop: () => extra(socket, "terminate", "drop()"),
    pause: () => extra(socket, "pause", "pause()"),
    // Nothing to resume on a socket that cannot pause (close() resumes before closing).
    resume: () => {
      if (typeof (socket as WsExtras).resume === "function") extra(socket, "resume", "resume()");
    },
  };
  const client = new KitClient(wire, { timeoutMs });
  socket.onmessage = (event) => {
    if (typeof event.data === "string") client.receive(event.data);
  };
  socket.onclose = (event) => client.ended(event.code, event.reason ?? "");
  socket.onerror = () => undefined; // a close follows

  let refused: Refused | undefined;
  const once = (socket as WsExtras).once;
  if (typeof once === "function") {
    once.call(socket, "unexpected-response", (_request, response) => {
      readRefusal(response, (r) => {
        refused = r;
        extra(socket, "terminate", "a refused handshake");
      });
    });
  }
  try {
    return await client.welcomed();
  } catch (error) {
    if (refused !== undefined) {
      throw new ConnectionRefusedError(
        `the handshake was refused with ${refused.status}${refused.code === undefined ? "" : ` ${refused.code}`}: ${refused.message}`,
        refused,
      );
    }
    if (client.frames.length === 0 && client.closeInfo !== undefined) {
      throw new ConnectionRefusedError(
        `the connection failed before welcome (closed with ${client.closeInfo.code}): refused or unreachable; this WebSocket does not tell the HTTP status`,
        {},
      );
    }
    throw error;
  }
}
