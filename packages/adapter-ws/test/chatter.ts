import { WebSocket } from "ws";

/** A frame as a chatter saw it, with the time it arrived. */
export type Frame = { type: string; at?: number } & Record<string, unknown>;

/**
 * A raw WebSocket client that streams numbered messages (`<name><n>`, every 10 ms while
 * `streaming`), keeps what was acked and what it received, and can take over the state of an
 * earlier connection of the same session (to resend what was not acked).
 */
export class Chatter {
  readonly frames: Frame[] = [];
  readonly received: string[];
  readonly acked: string[];
  readonly unacked: Map<string, string>;
  lastMessageId: string | undefined;
  roomId: string | undefined;
  resumeToken = "";
  streaming = false;
  /**
   * While set, frames that arrive are dropped unread: what a client loses when its connection
   * dies with frames on the wire (the server wrote them; they never arrive).
   */
  deaf = false;
  readonly welcomed: Promise<Frame>;
  readonly closed: Promise<number>;
  private next: { n: number };
  private readonly ws: WebSocket;
  private readonly timer: NodeJS.Timeout;
  private readonly waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];

  constructor(
    url: string,
    readonly name: string,
    earlier?: Chatter,
  ) {
    this.received = earlier?.received ?? [];
    this.acked = earlier?.acked ?? [];
    this.unacked = earlier?.unacked ?? new Map();
    this.next = earlier?.next ?? { n: 0 };
    this.lastMessageId = earlier?.lastMessageId;
    this.roomId = earlier?.roomId;
    this.ws = new WebSocket(url);
    this.ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => this.ws.on("close", (code) => resolve(code)));
    this.welcomed = this.waitFor((f) => f.type === "welcome");
    this.ws.on("message", (data) => {
      if (this.deaf) return;
      const f: Frame = { ...(JSON.parse(data.toString()) as Frame), at: Date.now() };
      this.frames.push(f);
      if (f.type === "welcome") this.resumeToken = f.resumeToken as string;
      if (f.type === "matched") {
        this.roomId = f.roomId as string;
        this.lastMessageId = undefined;
      }
      if (f.type === "message") {
        this.received.push(f.text as string);
        this.lastMessageId = f.messageId as string;
      }
      if (f.type === "ack" && typeof f.id === "string" && this.unacked.has(f.id)) {
        this.acked.push(this.unacked.get(f.id) as string);
        this.unacked.delete(f.id);
      }
      for (const w of [...this.waiters]) {
        if (w.test(f)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    });
    this.timer = setInterval(() => {
      if (!this.streaming || this.ws.readyState !== WebSocket.OPEN) return;
      const text = `${this.name}${this.next.n++}`;
      this.unacked.set(text, text);
      this.send({ type: "message", id: text, text });
    }, 10);
  }

  /** The message cursor to resume with (`last`): `<roomId>:<last messageId received>`. */
  cursor(): string {
    return `${this.roomId ?? ""}:${this.lastMessageId ?? ""}`;
  }

  send(frame: Frame): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /** Sends again, with the same ids, what the earlier connection never saw acked. */
  resendUnacked(): void {
    for (const text of this.unacked.keys()) this.send({ type: "message", id: text, text });
  }

  waitFor(test: (f: Frame) => boolean, ms = 10_000): Promise<Frame> {
    const seen = this.frames.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no such frame within ${ms} ms`)), ms);
      this.waiters.push({
        test,
        resolve: (f) => {
          clearTimeout(t);
          resolve(f);
        },
      });
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.ws.close(1000);
  }
}

/**
 * What went wrong between a sender and a receiver: messages acked to the sender that the
 * receiver never got, duplicates, and messages out of order (empty when all is well).
 */
export function deliveryProblems(sender: Chatter, receiver: Chatter): string[] {
  const problems: string[] = [];
  const got = receiver.received.filter((text) => text.startsWith(sender.name));
  if (new Set(got).size !== got.length) problems.push(`${receiver.name} got duplicates: ${got.join(" ")}`);
  const lost = sender.acked.filter((text) => !got.includes(text));
  if (lost.length > 0) problems.push(`acked to ${sender.name} but lost: ${lost.join(" ")}`);
  const order = got.map((t) => Number(t.slice(sender.name.length)));
  if (order.some((n, i) => i > 0 && n < (order[i - 1] as number)))
    problems.push(`${receiver.name} got them out of order: ${got.join(" ")}`);
  if (sender.acked.length < 20)
    problems.push(`only ${sender.acked.length} messages of ${sender.name} were acked`);
  return problems;
}
