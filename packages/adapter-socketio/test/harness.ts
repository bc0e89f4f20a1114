import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { ServerFrame, WhisperHub, WhisperOptions } from "@whisperchat/core";
import { createWhisper } from "@whisperchat/core";
import type {
  HarnessOverrides,
  OutboundFrame,
  RefusedConnection,
  TestClient,
  TransportHarness,
} from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { type Socket as ClientSocket, io as connectSocket } from "socket.io-client";
import type { AckAnswer, CloseEventData, RefusalData } from "../src/index.js";
import { attachSocketIo, type SocketIoAdapter } from "../src/index.js";

/** How the test client speaks: with ack callbacks (answers through them) or plain events. */
export interface ClientMode {
  /** Pass an ack callback with every request. @default true */
  acks?: boolean;
  /** socket.io-client transports. @default ["websocket"] */
  transports?: ("websocket" | "polling")[];
}

/** The frame type an `ok: true` ack answer stands for, by request type. */
const ANSWER_TYPE: Readonly<Record<string, "ack" | "pong" | "waiting">> = {
  message: "ack",
  leave: "ack",
  auth: "ack",
  ping: "pong",
  join: "waiting",
  next: "waiting",
  block: "waiting",
};

/** A request `id` core would echo: a string of at most 64 characters. */
function echoableId(id: unknown): string | undefined {
  return typeof id === "string" && id.length <= 64 ? id : undefined;
}

/** Turns an ack callback's answer back into the protocol frame it stands for. */
export function frameOfAnswer(answer: AckAnswer, requestType: unknown, requestId: unknown): ServerFrame {
  const id = echoableId(requestId);
  if (!answer.ok) {
    const frame: ServerFrame = { type: "error", code: answer.error.code, message: answer.error.message };
    if (answer.error.retryAfterMs !== undefined) frame.retryAfterMs = answer.error.retryAfterMs;
    if (id !== undefined) frame.id = id;
    return frame;
  }
  const { ok: _ok, ...fields } = answer;
  const type = typeof requestType === "string" ? ANSWER_TYPE[requestType] : undefined;
  if (type === undefined) throw new Error(`an ok answer to a ${String(requestType)} request`);
  return { ...fields, type } as ServerFrame;
}

export type SioTestClient = TestClient & {
  socket: ClientSocket;
  /** The `close` event the server sent before disconnecting, if any. */
  closeEvent(): CloseEventData | undefined;
};

/** A socket.io-client socket that queues every server event and ack answer as a protocol frame. */
export function wrapSocket(socket: ClientSocket, mode: ClientMode = {}): SioTestClient {
  const acks = mode.acks ?? true;
  const queue: ServerFrame[] = [];
  const waiters: ((f: ServerFrame) => void)[] = [];
  const push = (frame: ServerFrame): void => {
    const w = waiters.shift();
    if (w) w(frame);
    else queue.push(frame);
  };
  let closeEvent: CloseEventData | undefined;
  socket.onAny((event: string, payload: unknown) => {
    if (event === "close") {
      closeEvent = payload as CloseEventData;
      return;
    }
    push({ ...(payload as object), type: event } as ServerFrame);
  });
  const closed = new Promise<number>((resolve) =>
    socket.on("disconnect", (reason) => {
      if (closeEvent !== undefined) resolve(closeEvent.code);
      else resolve(reason === "io server disconnect" || reason === "io client disconnect" ? 1000 : 1006);
    }),
  );
  return {
    socket,
    closeEvent: () => closeEvent,
    send(frame: OutboundFrame) {
      if (Array.isArray(frame)) {
        // Not an object: the closest Socket.IO has is a request whose payload is an array.
        if (acks)
          socket.emit("message", frame, (a: AckAnswer) => push(frameOfAnswer(a, "message", undefined)));
        else socket.emit("message", frame);
        return;
      }
      const { type, ...payload } = frame;
      // Socket.IO event names are strings or numbers; a frame without a `type` cannot be
      // expressed, so it goes out under the numeric name 0 (a non-string type, as for ws).
      const event = (typeof type === "string" || typeof type === "number" ? type : 0) as string;
      if (acks) socket.emit(event, payload, (a: AckAnswer) => push(frameOfAnswer(a, type, frame.id)));
      else socket.emit(event, payload);
    },
    next(timeoutMs = 3000) {
      const f = queue.shift();
      if (f) return Promise.resolve(f);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no frame within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (frame: ServerFrame) => {
          clearTimeout(timer);
          resolve(frame);
        };
        waiters.push(done);
      });
    },
    pending: () => queue,
    closed,
    async close() {
      if (!socket.connected) {
        socket.close();
        return;
      }
      socket.disconnect();
      await closed;
    },
    async drop() {
      if (!socket.connected) return;
      // Close the engine connection without a namespace disconnect, as a lost network would.
      socket.io.engine.close();
      await closed;
    },
  };
}

/** What a refused Socket.IO client saw. */
export interface SioRefusal extends RefusedConnection {
  message: string;
  data: RefusalData;
}

export interface SioHarness extends TransportHarness {
  hub: WhisperHub;
  server: HttpServer;
  adapter: SocketIoAdapter;
  /** The base URL, without the namespace. */
  origin: string;
  /** The namespace the adapter serves. */
  namespace: string;
  connect(params?: { token?: string; resume?: string }, mode?: ClientMode): Promise<SioTestClient>;
  connectRefused(params?: {
    token?: string;
    resume?: string;
    headers?: Record<string, string>;
    auth?: Record<string, unknown>;
  }): Promise<SioRefusal>;
}

export interface SioHarnessOptions {
  /** The adapter's namespace. @default "/" */
  namespace?: string;
  /** How clients speak. @default { acks: true, transports: ["websocket"] } */
  mode?: ClientMode;
  /** Set up the HTTP server before the adapter mounts (e.g. a Socket.IO server of the app's own). */
  mount?: (hub: WhisperHub, server: HttpServer) => SocketIoAdapter;
}

/** A hub on a memory store, mounted with adapter-socketio on a loopback HTTP server. */
export async function startSocketIoHarness(
  hubOptions: Partial<WhisperOptions> & HarnessOverrides = {},
  options: SioHarnessOptions = {},
): Promise<SioHarness> {
  const store = createMemoryStore();
  const hub = createWhisper({ store, ...hubOptions });
  const server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const namespace = options.namespace ?? "/";
  const adapter = options.mount?.(hub, server) ?? attachSocketIo(hub, { server, namespace });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}${namespace === "/" ? "" : namespace}`;
  const defaults: ClientMode = { acks: true, transports: ["websocket"], ...options.mode };
  const open = (
    auth: Record<string, unknown>,
    headers: Record<string, string> | undefined,
    mode: ClientMode,
  ) =>
    connectSocket(url, {
      auth,
      transports: mode.transports ?? ["websocket"],
      forceNew: true,
      reconnection: false,
      ...(headers === undefined ? {} : { extraHeaders: headers }),
    });
  const authOf = (params: { token?: string; resume?: string } = {}): Record<string, unknown> => {
    const auth: Record<string, unknown> = {};
    if (params.token !== undefined) auth.token = params.token;
    if (params.resume !== undefined) auth.resume = params.resume;
    return auth;
  };
  const sockets = new Set<ClientSocket>();
  return {
    hub,
    server,
    adapter,
    origin,
    namespace,
    async connect(params, mode = {}) {
      const merged = { ...defaults, ...mode };
      const socket = open(authOf(params), undefined, merged);
      sockets.add(socket);
      const client = wrapSocket(socket, merged);
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", () => resolve());
        socket.once("connect_error", reject);
      });
      return client;
    },
    async connectRefused(params = {}) {
      const socket = open({ ...authOf(params), ...params.auth }, params.headers, defaults);
      sockets.add(socket);
      return new Promise((resolve, reject) => {
        socket.once("connect", () => reject(new Error("the connection was accepted")));
        socket.once("connect_error", (err: Error & { data?: RefusalData }) => {
          socket.close();
          if (err.data === undefined) reject(err);
          else resolve({ status: err.data.status, message: err.message, data: err.data });
        });
      });
    },
    async close() {
      for (const s of sockets) s.close();
      await hub.close();
      await adapter.close();
      adapter.io.engine.close();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
      await store.close();
    },
  };
}
