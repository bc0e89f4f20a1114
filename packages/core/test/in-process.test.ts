// The in-process transport of the app test kit: ordering, backpressure and close semantics of a
// WebSocket pair, checked at the Connection seam (a recording link stands in for the session).
import { describe, expect, it } from "vitest";
import type { Admission, Connection, ServerFrame, SessionLink } from "../src/index.js";
import { ConnectionRefusedError, connectInProcess, type InProcessHub } from "../src/testing/index.js";

const welcome: ServerFrame = {
  type: "welcome",
  sessionId: "s1",
  resumeToken: "t",
  protocol: 1,
  user: { userId: "u1", name: "Ana" },
  resumed: false,
  limits: {
    maxMessageChars: 1000,
    maxRangeKm: 20000,
    maxNameChars: 32,
    messagesPerSec: 5,
    messageBurst: 10,
    resumeGraceMs: 30000,
    maxPayloadBytes: 200,
    locationPrecisionKm: 0,
  },
};
const pong = (id: string): ServerFrame => ({ type: "pong", id });

/** A hub that accepts everyone and records what its one link is told. */
function recordingHub(admission?: Admission) {
  const got: string[] = [];
  const handshakes: unknown[] = [];
  let connection: Connection | undefined;
  const link: SessionLink = {
    sessionId: "s1",
    receiveText: (text) => got.push(text),
    receive: () => got.push("<decoded>"),
    receiveBinary: () => got.push("<binary>"),
    closed: (code) => got.push(`<closed ${code}>`),
  };
  const hub: InProcessHub = {
    async admit(handshake) {
      handshakes.push(handshake);
      return (
        admission ?? {
          ok: true,
          identity: { userId: "u1", name: "Ana", roles: [] },
          resume: undefined,
          address: "",
        }
      );
    },
    cancel: () => undefined,
    open(_admission, c) {
      connection = c;
      c.send(welcome);
      return link;
    },
    limits: { maxPayloadBytes: 200 },
  };
  return {
    hub,
    got,
    handshakes,
    get server(): Connection {
      if (connection === undefined) throw new Error("not open");
      return connection;
    },
  };
}

/** Lets every queued microtask and promise reaction run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("the in-process transport", () => {
  it("hands the handshake to the hub and resolves once welcome came", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub, {
      token: "tok",
      params: { last: "m1" },
      headers: { Origin: "https://app.example" },
      remoteAddress: "203.0.113.9",
    });
    expect(c.welcome).toEqual(welcome);
    expect(c.sessionId).toBe("s1");
    expect(c.pending()).toEqual([]);
    expect(h.handshakes).toEqual([
      {
        transport: "in-process",
        headers: { origin: "https://app.example" },
        params: { last: "m1", token: "tok" },
        remoteAddress: "203.0.113.9",
      },
    ]);
  });

  it("gives every client its own address unless told", async () => {
    const h = recordingHub();
    await connectInProcess(h.hub);
    await connectInProcess(h.hub);
    const [a, b] = h.handshakes as { remoteAddress: string }[];
    expect(a?.remoteAddress).toMatch(/^198\.1[89]\.\d+\.\d+$/);
    expect(b?.remoteAddress).not.toBe(a?.remoteAddress);
  });

  it("delivers server frames after send returns, in order, counting them in bufferedAmount meanwhile", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub);
    h.server.send(pong("1"));
    h.server.send(pong("22"));
    expect(c.pending()).toEqual([]);
    expect(h.server.bufferedAmount).toBe(
      Buffer.byteLength(JSON.stringify(pong("1"))) + Buffer.byteLength(JSON.stringify(pong("22"))),
    );
    expect(await c.nextFrame()).toEqual(pong("1"));
    expect(await c.nextFrame()).toEqual(pong("22"));
    expect(h.server.bufferedAmount).toBe(0);
  });

  it("delivers client frames to the link as text, after the call, in order", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub);
    c.sendFrame({ type: "ping", id: "a" });
    c.sendText("not json");
    c.sendBinary();
    expect(h.got).toEqual([]);
    await settle();
    expect(h.got).toEqual(['{"type":"ping","id":"a"}', "not json", "<binary>"]);
  });

  it("a paused client lets frames pile up in bufferedAmount; resume delivers them in order", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub);
    c.pause();
    for (let i = 0; i < 50; i++) h.server.send(pong(String(i)));
    await settle();
    expect(c.pending()).toEqual([]);
    expect(h.server.bufferedAmount).toBe(50 * 24 + 40 * 1);
    c.resume();
    await settle();
    expect(c.pending().map((f) => (f as { id: string }).id)).toEqual(
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
    expect(h.server.bufferedAmount).toBe(0);
  });

  it("a server close reaches the client after the frames sent before it, with its code and reason", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub);
    c.sendFrame({ type: "ping", id: "before" });
    h.server.send(pong("last"));
    h.server.close(4401, "token expired");
    h.server.close(1000, "again"); // idempotent
    h.server.send(pong("after")); // dropped
    expect(c.closeInfo).toBeUndefined();
    expect(await c.closed).toEqual({ code: 4401, reason: "token expired" });
    expect(c.pending()).toEqual([pong("last")]);
    // The server stopped reading when it closed; it hears the close event.
    expect(h.got).toEqual(["<closed 4401>"]);
    expect(() => c.sendFrame({ type: "ping" })).toThrow(/closed with 4401 \(token expired\)/);
  });

  it("a client close reaches the link with its code after the frames sent before it; later server frames are dropped", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub);
    c.sendFrame({ type: "message", text: "bye" });
    const closing = c.close(4000, "done");
    expect(() => c.sendFrame({ type: "ping" })).toThrow(/closing/);
    expect(await closing).toEqual({ code: 4000, reason: "done" });
    expect(h.got).toEqual(['{"type":"message","text":"bye"}', "<closed 4000>"]);
    h.server.send(pong("late"));
    expect(h.server.bufferedAmount).toBe(0);
    await expect(c.close(1234)).rejects.toThrow(RangeError);
  });

  it("drop cuts both ways at once: nothing in flight arrives, the link hears 1006", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub);
    c.sendFrame({ type: "ping", id: "lost" });
    h.server.send(pong("lost too"));
    await c.drop();
    expect(c.closeInfo).toEqual({ code: 1006, reason: "" });
    await settle();
    expect(h.got).toEqual(["<closed 1006>"]);
    expect(c.pending()).toEqual([]);
    expect(h.server.bufferedAmount).toBe(0);
  });

  it("a frame over maxPayloadBytes closes the connection with 1009, as a WebSocket server does", async () => {
    const h = recordingHub();
    const c = await connectInProcess(h.hub);
    c.sendText("x".repeat(201));
    c.sendText("after");
    expect((await c.closed).code).toBe(1009);
    expect(h.got).toEqual(["<closed 1009>"]);
  });

  it("a bad timeoutMs is a RangeError before the handshake reaches the hub", async () => {
    const h = recordingHub();
    for (const timeoutMs of [0, -1, Number.NaN])
      await expect(connectInProcess(h.hub, { timeoutMs })).rejects.toThrow(
        /timeoutMs must be a positive number/,
      );
    expect(h.handshakes).toEqual([]);
  });

  it("a refused handshake rejects with its status, code and Retry-After", async () => {
    const h = recordingHub({
      ok: false,
      status: 429,
      code: "rate_limited",
      message: "too many connections",
      retryAfterSec: 3,
    });
    const refused = await connectInProcess(h.hub).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectionRefusedError);
    expect(refused).toMatchObject({ status: 429, code: "rate_limited", retryAfterSec: 3 });
    expect(String(refused)).toContain("429 rate_limited: too many connections");
  });
});
