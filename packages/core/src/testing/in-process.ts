import type { Admission, Connection, Handshake, SessionLink } from "../connection.js";
import { CloseCode } from "../errors.js";
import type { ClientLimits, ServerFrame } from "../protocol.js";
import { admitHandshake, closeReason } from "../transport.js";
import {
  type ClientWire,
  ConnectionRefusedError,
  type ConnectOptions,
  checkTimeout,
  DEFAULT_TIMEOUT_MS,
  KitClient,
  type TestChatClient,
} from "./client.js";

// A transport without sockets (docs/design.md, "Transports"): the Connection core writes to and
// the client it feeds live in one process, and behave as a WebSocket pair does. Frames travel as
// JSON text, each way in order and never inside the call that sent them; what the client has not
// read counts in `bufferedAmount`; a close reaches the other side after the frames sent before it.

// Taken when this module loads: vitest's fake timers leave microtasks alone, but a test may ask
// for them to be faked too.
const realQueueMicrotask = globalThis.queueMicrotask;

/** The close code a WebSocket reports for a connection cut without a close frame. */
const ABNORMAL = 1006;

/** What the in-process transport needs of a hub: a `WhisperHub` fits. */
export interface InProcessHub {
  admit(handshake: Handshake): Promise<Admission>;
  cancel(admission: Admission): void;
  open(admission: Admission, connection: Connection): SessionLink;
  readonly limits: Pick<ClientLimits, "maxPayloadBytes">;
}

/** Options of {@link connectInProcess}. */
export interface InProcessConnectOptions extends ConnectOptions {
  /** Handshake headers, e.g. `{ origin: "https://example.com" }` (names are lower-cased). @default none */
  headers?: Record<string, string>;
  /**
   * The client's address, as the connection limiter and the hooks see it.
   * @default a different address for every client, in 198.18.0.0/15 (reserved for tests), so that
   * many clients do not share one connection bucket; give clients one address to test that limit
   */
  remoteAddress?: string;
  /** The transport name the hooks see in `handshake.transport`. @default "in-process" */
  transport?: string;
}

let addressSeq = 0;
/** A fresh address in 198.18.0.0/15, the range set aside for tests of network devices. */
function testAddress(): string {
  const n = (addressSeq++ % 65534) + 1;
  return `198.18.${n >> 8}.${n & 255}`;
}

/** Items travel in order; `bytes` counts what was pushed and not yet delivered. */
class Pipe<T> {
  bytes = 0;
  private items: T[] = [];
  private head = 0;
  private paused = false;
  private scheduled = false;

  constructor(
    private readonly deliver: (item: T) => void,
    private readonly size: (item: T) => number,
  ) {}

  push(item: T): void {
    this.items.push(item);
    this.bytes += this.size(item);
    this.schedule();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }

  private schedule(): void {
    if (this.scheduled || this.paused || this.head >= this.items.length) return;
    this.scheduled = true;
    realQueueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    while (!this.paused && this.head < this.items.length) {
      const item = this.items[this.head++] as T;
      this.bytes -= this.size(item);
      this.deliver(item);
    }
    if (this.head >= this.items.length) this.clear();
  }
}

/** Server to client: a JSON frame, or the server's close. */
type Down = { kind: "frame"; text: string } | { kind: "close"; code: number; reason: string };
/** Client to server: a text or binary frame, or the end of the connection as the adapter reports it. */
type Up =
  | { kind: "text"; text: string }
  | { kind: "binary" }
  | { kind: "closed"; code: number; echo?: { reason: string } };

/** Both ends of one in-process connection. */
class InProcessSocket {
  link: SessionLink | undefined;
  client: KitClient | undefined;
  /** The server may still write. */
  private serverOpen = true;
  /** The client may still write. */
  private clientOpen = true;
  private readonly down = new Pipe<Down>(
    (item) => this.toClient(item),
    (item) => (item.kind === "frame" ? Buffer.byteLength(item.text) : 0),
  );
  private readonly up = new Pipe<Up>(
    (item) => this.toServer(item),
    () => 0,
  );

  /** The server's side: what core writes to. */
  readonly connection: Connection;

  constructor(private readonly maxPayloadBytes: number) {
    const down = this.down;
    this.connection = {
      send: (frame: ServerFrame): void => {
        if (this.serverOpen) down.push({ kind: "frame", text: JSON.stringify(frame) });
      },
      close: (code: number, reason: string): void => this.serverClose(code, reason),
      get bufferedAmount(): number {
        return down.bytes;
      },
    };
  }

  /** The client's side. */
  readonly wire: ClientWire = {
    sendText: (text) => {
      if (this.clientOpen) this.up.push({ kind: "text", text });
    },
    sendBinary: () => {
      if (this.clientOpen) this.up.push({ kind: "binary" });
    },
    close: (code, reason) => {
      if (!this.clientOpen) return;
      this.clientOpen = false;
      this.up.push({ kind: "closed", code, echo: { reason } });
    },
    drop: () => {
      if (!this.clientOpen && !this.serverOpen) return;
      this.clientOpen = false;
      this.serverOpen = false;
      this.down.clear();
      this.up.clear();
      this.client?.ended(ABNORMAL, "");
      realQueueMicrotask(() => this.link?.closed(ABNORMAL));
    },
    pause: () => this.down.pause(),
    resume: () => this.down.resume(),
  };

  private serverClose(code: number, reason: string): void {
    if (!this.serverOpen) return;
    this.serverOpen = false;
    this.down.push({ kind: "close", code, reason: closeReason(reason) });
    // The adapter's close event; what the client sends from now on is not read.
    this.up.push({ kind: "closed", code });
  }

  private toClient(item: Down): void {
    if (item.kind === "frame") this.client?.receive(item.text);
    else {
      this.clientOpen = false;
      this.client?.ended(item.code, item.reason);
    }
  }

  private toServer(item: Up): void {
    const link = this.link;
    if (link === undefined) return;
    if (item.kind === "closed") {
      link.closed(item.code);
      if (item.echo !== undefined && this.serverOpen) {
        // The closing handshake: the client sees its own close once the server had it.
        this.serverOpen = false;
        this.down.push({ kind: "close", code: item.code, reason: item.echo.reason });
      }
      return;
    }
    if (!this.serverOpen) return; // the server stopped reading when it closed
    if (item.kind === "binary") link.receiveBinary();
    else if (Buffer.byteLength(item.text) > this.maxPayloadBytes)
      this.serverClose(CloseCode.TooLarge, "frame too large");
    else link.receiveText(item.text);
  }
}

/** Opens one in-process client on a hub; `hint` is added to its failure messages. */
export async function openInProcess(
  hub: InProcessHub,
  options: InProcessConnectOptions,
  hint: string | undefined,
): Promise<KitClient> {
  // Checked before the handshake, which a bad option must not leave admitted and never opened.
  const timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const params: Record<string, string> = { ...options.params };
  if (options.token !== undefined) params.token = options.token;
  if (options.resume !== undefined) params.resume = options.resume;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
  const handshake: Handshake = {
    transport: options.transport ?? "in-process",
    headers,
    params,
    remoteAddress: options.remoteAddress ?? testAddress(),
  };
  const admission = await admitHandshake(hub, handshake);
  if (!admission.ok) {
    throw new ConnectionRefusedError(
      `the handshake was refused with ${admission.status} ${admission.code}: ${admission.message}`,
      admission,
    );
  }
  const socket = new InProcessSocket(hub.limits.maxPayloadBytes);
  const client = new KitClient(socket.wire, { timeoutMs, hint });
  socket.client = client;
  try {
    socket.link = hub.open(admission, socket.connection);
  } catch (error) {
    hub.cancel(admission);
    throw error;
  }
  return client.welcomed();
}

/**
 * Connects a test client to a hub in the same process, without sockets: the handshake goes
 * through `hub.admit` (the app's `authenticate` hook, origins, limits) and the session through
 * `hub.open`, like any adapter. Resolves once `welcome` came; rejects with a
 * {@link ConnectionRefusedError} (with the status and code) when the handshake is refused.
 *
 * ```ts
 * const ana = await connectInProcess(app.hub, { token: "ana" });
 * await ana.join({ location: { lat: 52.52, lng: 13.4 }, rangeKm: 5 });
 * ```
 */
export function connectInProcess(
  hub: InProcessHub,
  options: InProcessConnectOptions = {},
): Promise<TestChatClient> {
  return openInProcess(hub, options, undefined);
}
