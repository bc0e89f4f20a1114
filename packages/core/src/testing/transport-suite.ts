import assert from "node:assert/strict";
import type { ErrorCode } from "../errors.js";
import type { ServerFrame } from "../protocol.js";
import type { TestApi } from "./test-api.js";

/** A frame the suite sends: a JSON object of whatever shape (it sends invalid ones on purpose). */
export type OutboundFrame = { type?: unknown; [field: string]: unknown };

/**
 * A test client over a real transport, normalised to protocol frames. Every server frame
 * (including Socket.IO ack answers and `error` events) arrives as a {@link ServerFrame}.
 */
export interface TestClient {
  /** Sends a request (ws: as JSON text; Socket.IO: event `type` with the rest as payload). */
  send(frame: OutboundFrame): void;
  /** The next frame from the server, in arrival order; rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<ServerFrame>;
  /** Frames received and not yet taken by `next`. */
  pending(): readonly ServerFrame[];
  /** Resolves with the close code once the server closed the connection. */
  readonly closed: Promise<number>;
  /** Closes the client side deliberately (a normal close: the session ends). */
  close(): Promise<void>;
  /** Cuts the connection abruptly, as a lost network would (the session stays resumable). */
  drop(): Promise<void>;
}

/** A refused connection, as the client saw it. */
export interface RefusedConnection {
  /** The HTTP status (ws) or `connect_error.data.status` (Socket.IO). */
  status: number;
  /** The `Retry-After` of a 429 or 503, in seconds, when the transport carries one. */
  retryAfterSec?: number;
}

/** One transport under test: a server already mounted, and a way to connect clients to it. */
export interface TransportHarness {
  /** Connects a client; resolves once connected (its first frame, `welcome`, may be pending). */
  connect(params?: { token?: string; resume?: string }): Promise<TestClient>;
  /** Connects expecting a refusal; resolves with what the client saw. */
  connectRefused(params?: {
    token?: string;
    resume?: string;
    headers?: Record<string, string>;
  }): Promise<RefusedConnection>;
  /** Transport-specific bad input, if the transport can carry it. */
  sendRaw?(client: TestClient, data: string | Uint8Array): void;
  /** Stops the server and everything it started. */
  close(): Promise<void>;
}

/** Options of {@link transportConformance}. */
export interface TransportSuiteOptions {
  /** Name of the describe block. @default "transport conformance" */
  name?: string;
  /**
   * The hub's settings the suite relies on: `maxMessageChars` and `maxRangeKm`, and a
   * `messageRate` with `capacity` burst (the suite floods past it).
   */
  limits: { maxMessageChars: number; maxRangeKm: number; messageBurst: number };
}

/**
 * The protocol flow over a real transport: welcome, join, waiting, matched, messages with
 * acks, typing, next, leave, block, and every bad input of docs/protocol.md section 4. Run it for
 * every adapter with a factory of fresh harnesses (a new hub and store each time).
 */
/** Hub settings a test of the suite needs changed from the defaults. */
export interface HarnessOverrides {
  resumeGraceMs?: number;
}

export function transportConformance(
  t: TestApi,
  makeHarness: (overrides?: HarnessOverrides) => Promise<TransportHarness>,
  options: TransportSuiteOptions,
): void {
  const { limits } = options;
  t.describe(options.name ?? "transport conformance", () => {
    let h: TransportHarness;
    const clients: TestClient[] = [];
    t.beforeEach(async () => {
      h = await makeHarness();
    });
    t.afterEach(async () => {
      await Promise.allSettled(clients.splice(0).map((c) => c.close()));
      await h.close();
    });

    const welcomes = new Map<TestClient, Extract<ServerFrame, { type: "welcome" }>>();
    async function client(): Promise<{ c: TestClient; welcome: Extract<ServerFrame, { type: "welcome" }> }> {
      const c = await h.connect();
      clients.push(c);
      const welcome = await expectFrame(c, "welcome");
      welcomes.set(c, welcome);
      return { c, welcome };
    }
    async function reconnectInfo(c: TestClient): Promise<Extract<ServerFrame, { type: "welcome" }>> {
      const w = welcomes.get(c);
      assert.ok(w, "client() was not used for this client");
      return w;
    }

    async function pair(): Promise<{ a: TestClient; b: TestClient; roomId: string }> {
      const { c: a } = await client();
      const { c: b } = await client();
      a.send({ type: "join", id: "ja", location: { lat: 48.8566, lng: 2.3522 }, rangeKm: 10, name: "Ann" });
      assert.equal((await expectFrame(a, "waiting")).id, "ja");
      b.send({ type: "join", id: "jb", location: { lat: 48.86, lng: 2.36 }, rangeKm: 5, name: "Bob" });
      assert.equal((await expectFrame(b, "waiting")).id, "jb");
      const mb = await expectFrame(b, "matched");
      const ma = await expectFrame(a, "matched");
      assert.equal(ma.roomId, mb.roomId);
      return { a, b, roomId: ma.roomId };
    }

    t.it("sends welcome first, with a session, a resume token and the limits", async () => {
      const { welcome } = await client();
      assert.equal(welcome.protocol, 1);
      assert.equal(welcome.resumed, false);
      assert.ok(welcome.sessionId.length >= 16);
      assert.ok(welcome.resumeToken.length >= 32);
      assert.equal(typeof welcome.user.userId, "string");
      assert.equal(typeof welcome.user.name, "string");
      for (const k of [
        "maxMessageChars",
        "maxRangeKm",
        "messagesPerSec",
        "messageBurst",
        "resumeGraceMs",
      ] as const) {
        assert.equal(typeof welcome.limits[k], "number", `limits.${k}`);
      }
      assert.equal(welcome.limits.maxMessageChars, limits.maxMessageChars);
    });

    t.it("answers ping with pong carrying the id", async () => {
      const { c } = await client();
      c.send({ type: "ping", id: "p1" });
      assert.deepEqual(await expectFrame(c, "pong"), { type: "pong", id: "p1" });
    });

    t.it(
      "matches two nearby clients, relays messages both ways with acks, never leaks coordinates",
      async () => {
        const { a, b, roomId } = await pair();
        a.send({ type: "message", id: "m1", text: "hello Bob" });
        const ack = await expectFrame(a, "ack");
        assert.equal(ack.id, "m1");
        assert.equal(typeof ack.messageId, "string");
        assert.equal(typeof ack.ts, "number");
        const got = await expectFrame(b, "message");
        assert.deepEqual(got, {
          type: "message",
          roomId,
          messageId: ack.messageId,
          text: "hello Bob",
          ts: ack.ts,
        });
        b.send({ type: "message", id: "m2", text: "hi Ann 👋" });
        assert.equal((await expectFrame(b, "ack")).id, "m2");
        assert.equal((await expectFrame(a, "message")).text, "hi Ann 👋");
      },
    );

    t.it("tells each side the partner's name and rounded-up distance, and no coordinates", async () => {
      const { c: a, welcome } = await client();
      const { c: b } = await client();
      a.send({ type: "join", location: { lat: 51.5007, lng: -0.1246 }, rangeKm: 20, name: "Ann" });
      await expectFrame(a, "waiting");
      b.send({ type: "join", location: { lat: 51.5033, lng: -0.1196 }, rangeKm: 20, name: "Bob" });
      await expectFrame(b, "waiting");
      const mb = await expectFrame(b, "matched");
      const ma = await expectFrame(a, "matched");
      assert.equal(ma.partner.name, "Bob");
      assert.equal(mb.partner.name, "Ann");
      // ~0.45 km apart: rounded up to a whole step (1 km, or the location precision rounded up),
      // measured between the points matching uses (each within the precision of the real one).
      assertPublicDistance(ma.partner.distanceKm, 0.45, welcome.limits.locationPrecisionKm);
      assert.equal(mb.partner.distanceKm, ma.partner.distanceKm);
      for (const f of [ma, mb]) {
        const text = JSON.stringify(f);
        assert.ok(!/lat|lng|51\.50|0\.12|0\.11/.test(text), `coordinates leaked: ${text}`);
      }
    });

    t.it("does not match clients out of each other's range (the smaller range decides)", async () => {
      const { c: a, welcome } = await client();
      const { c: b } = await client();
      // ~11 km apart: inside a's 50 km but outside b's 5 km (and more than twice the location
      // precision, up to 2.5 km, away from either edge).
      a.send({ type: "join", location: { lat: 40.0, lng: -3.7 }, rangeKm: 50 });
      await expectFrame(a, "waiting");
      b.send({ type: "join", location: { lat: 40.1, lng: -3.7 }, rangeKm: 5 });
      await expectFrame(b, "waiting");
      a.send({ type: "ping", id: "sync" });
      assert.equal((await expectFrame(a, "pong")).id, "sync");
      // b widens its range while waiting: re-checked at once.
      b.send({ type: "join", id: "wider", location: { lat: 40.1, lng: -3.7 }, rangeKm: 20 });
      assert.equal((await expectFrame(b, "waiting")).id, "wider");
      const km = (await expectFrame(b, "matched")).partner.distanceKm;
      assertPublicDistance(km, 11.12, welcome.limits.locationPrecisionKm);
      await expectFrame(a, "matched");
    });

    t.it("a message resent with the same id is acknowledged again but delivered once", async () => {
      const { a, b } = await pair();
      a.send({ type: "message", id: "same", text: "only once" });
      const first = await expectFrame(a, "ack");
      a.send({ type: "message", id: "same", text: "only once" });
      const second = await expectFrame(a, "ack");
      assert.equal(second.messageId, first.messageId);
      assert.equal(second.id, "same");
      a.send({ type: "message", id: "other", text: "next one" });
      await expectFrame(a, "ack");
      assert.equal((await expectFrame(b, "message")).text, "only once");
      assert.equal((await expectFrame(b, "message")).text, "next one");
    });

    t.it("a message resent before its first copy was answered is still delivered once", async () => {
      const { a, b } = await pair();
      // Back to back: the second arrives while the first is on its way to the partner.
      a.send({ type: "message", id: "twice", text: "sent twice" });
      a.send({ type: "message", id: "twice", text: "sent twice" });
      a.send({ type: "message", id: "after", text: "then this" });
      const first = await expectFrame(a, "ack");
      const second = await expectFrame(a, "ack");
      assert.equal(first.id, "twice");
      assert.equal(second.id, "twice");
      assert.equal(second.messageId, first.messageId);
      assert.equal((await expectFrame(a, "ack")).id, "after");
      assert.equal((await expectFrame(b, "message")).text, "sent twice");
      assert.equal((await expectFrame(b, "message")).text, "then this");
    });

    t.it("messages sent just before a normal close reach the partner, then partner_left", async () => {
      const { a, b } = await pair();
      a.send({ type: "message", text: "last words" });
      a.send({ type: "message", text: "really the last" });
      await a.close();
      assert.equal((await expectFrame(b, "message")).text, "last words");
      assert.equal((await expectFrame(b, "message")).text, "really the last");
      assert.equal((await expectFrame(b, "partner_left")).reason, "disconnected");
    });

    t.it("passes typing to the partner", async () => {
      const { a, b } = await pair();
      a.send({ type: "typing", active: true });
      assert.deepEqual(await expectFrame(b, "typing"), { type: "typing", active: true });
      a.send({ type: "typing", active: false });
      assert.deepEqual(await expectFrame(b, "typing"), { type: "typing", active: false });
    });

    t.it(
      "next: the partner gets partner_left reason next, the sender waits again and is not rematched at once",
      async () => {
        const { a, b, roomId } = await pair();
        a.send({ type: "next", id: "n1" });
        const w = await expectFrame(a, "waiting");
        assert.equal(w.id, "n1");
        assert.deepEqual(await expectFrame(b, "partner_left"), {
          type: "partner_left",
          roomId,
          reason: "next",
        });
        // b is idle now; rejoining puts both in the pool, but the cooldown keeps them apart.
        b.send({ type: "next", id: "n2" });
        assert.equal((await expectFrame(b, "waiting")).id, "n2");
        b.send({ type: "ping", id: "sync" });
        assert.equal((await expectFrame(b, "pong")).id, "sync");
        assert.equal(a.pending().length, 0);
        // A third client nearby is matched with the longest waiting (a).
        const { c: c3 } = await client();
        c3.send({ type: "join", location: { lat: 48.857, lng: 2.353 }, rangeKm: 10 });
        await expectFrame(c3, "waiting");
        await expectFrame(c3, "matched");
        await expectFrame(a, "matched");
      },
    );

    t.it(
      "leave: from a room the partner gets reason left; from the pool the session just goes idle",
      async () => {
        const { a, b, roomId } = await pair();
        b.send({ type: "leave", id: "l1" });
        assert.equal((await expectFrame(b, "ack")).id, "l1");
        assert.deepEqual(await expectFrame(a, "partner_left"), {
          type: "partner_left",
          roomId,
          reason: "left",
        });
        a.send({ type: "message", id: "late", text: "still there?" });
        const err = await expectFrame(a, "error");
        assert.equal(err.code, "not_in_room");
        assert.equal(err.id, "late");
        a.send({ type: "next", id: "again" });
        await expectFrame(a, "waiting");
        a.send({ type: "leave", id: "l2" });
        assert.equal((await expectFrame(a, "ack")).id, "l2");
        const { c: c3 } = await client();
        c3.send({ type: "join", location: { lat: 48.857, lng: 2.353 }, rangeKm: 10 });
        await expectFrame(c3, "waiting");
        c3.send({ type: "ping", id: "sync" });
        await expectFrame(c3, "pong"); // a left the pool: no match
      },
    );

    t.it("block: the partner sees reason left, and the two are never matched again", async () => {
      const { a, b, roomId } = await pair();
      a.send({ type: "block", id: "b1", reason: "rude" });
      assert.equal((await expectFrame(a, "waiting")).id, "b1");
      assert.deepEqual(await expectFrame(b, "partner_left"), {
        type: "partner_left",
        roomId,
        reason: "left",
      });
      b.send({ type: "join", location: { lat: 48.8566, lng: 2.3522 }, rangeKm: 10 });
      await expectFrame(b, "waiting");
      b.send({ type: "ping", id: "sync" });
      await expectFrame(b, "pong");
      assert.equal(a.pending().length, 0);
      assert.equal(b.pending().length, 0);
    });

    t.it("join while in a room is refused with in_room", async () => {
      const { a } = await pair();
      a.send({ type: "join", id: "j", location: { lat: 1, lng: 1 }, rangeKm: 1 });
      const e = await expectFrame(a, "error");
      assert.equal(e.code, "in_room");
      assert.equal(e.id, "j");
    });

    t.it("a partner that closes deliberately is reported as partner_left disconnected at once", async () => {
      const { a, b, roomId } = await pair();
      await b.close();
      const left = await expectFrame(a, "partner_left", 5000);
      assert.equal(left.roomId, roomId);
      assert.equal(left.reason, "disconnected");
    });

    t.it("resume: a dropped client comes back with every frame it missed, in order, once", async () => {
      const { a, b, roomId } = await pair();
      const { c: x } = await client(); // keeps the harness busy with an unrelated session
      assert.equal(x.pending().length, 0);
      b.send({ type: "ping", id: "b0" });
      await expectFrame(b, "pong");
      const welcomeB = await reconnectInfo(b);
      await b.drop();
      assert.deepEqual(await expectFrame(a, "partner_away"), { type: "partner_away", roomId });
      for (let i = 1; i <= 3; i++) {
        a.send({ type: "message", id: `m${i}`, text: `while away ${i}` });
        assert.equal((await expectFrame(a, "ack")).id, `m${i}`);
      }
      const b2 = await h.connect({ resume: welcomeB.resumeToken });
      clients.push(b2);
      const w = await expectFrame(b2, "welcome");
      assert.equal(w.resumed, true);
      assert.equal(w.sessionId, welcomeB.sessionId);
      assert.notEqual(w.resumeToken, welcomeB.resumeToken);
      for (let i = 1; i <= 3; i++) {
        const m = await expectFrame(b2, "message");
        assert.equal(m.text, `while away ${i}`);
        assert.equal(m.roomId, roomId);
      }
      assert.deepEqual(await expectFrame(a, "partner_back"), { type: "partner_back", roomId });
      b2.send({ type: "message", id: "r1", text: "I'm back" });
      assert.equal((await expectFrame(b2, "ack")).id, "r1");
      assert.equal((await expectFrame(a, "message")).text, "I'm back");
      a.send({ type: "message", id: "r2", text: "welcome back" });
      assert.equal((await expectFrame(b2, "message")).text, "welcome back");
      b2.send({ type: "ping", id: "sync" });
      assert.equal((await expectFrame(b2, "pong")).id, "sync");
      assert.equal(b2.pending().length, 0, "a frame came twice");
    });

    t.it("resume: the token is single-use; an old token starts a fresh session", async () => {
      const { c: a, welcome } = await client();
      await a.drop();
      const a2 = await h.connect({ resume: welcome.resumeToken });
      clients.push(a2);
      assert.equal((await expectFrame(a2, "welcome")).resumed, true);
      const a3 = await h.connect({ resume: welcome.resumeToken });
      clients.push(a3);
      const w3 = await expectFrame(a3, "welcome");
      assert.equal(w3.resumed, false);
      assert.notEqual(w3.sessionId, welcome.sessionId);
      // The live session was not disturbed by the stale token.
      a2.send({ type: "ping", id: "alive" });
      assert.equal((await expectFrame(a2, "pong")).id, "alive");
    });

    t.it(
      "resume: a new connection with the current token takes over a live session (old one closed 4001)",
      async () => {
        const { c: a, welcome } = await client();
        const a2 = await h.connect({ resume: welcome.resumeToken });
        clients.push(a2);
        assert.equal((await expectFrame(a2, "welcome")).resumed, true);
        assert.equal(await a.closed, 4001);
      },
    );

    t.it("resume: a waiting client keeps its place in the queue", async () => {
      const { c: a, welcome } = await client();
      a.send({ type: "join", id: "j", location: { lat: -33.87, lng: 151.21 }, rangeKm: 10 });
      const since = (await expectFrame(a, "waiting")).since;
      await a.drop();
      const a2 = await h.connect({ resume: welcome.resumeToken });
      clients.push(a2);
      assert.equal((await expectFrame(a2, "welcome")).resumed, true);
      a2.send({ type: "next", id: "still" });
      const w = await expectFrame(a2, "waiting");
      assert.equal(w.since, since);
      const { c: b } = await client();
      b.send({ type: "join", location: { lat: -33.88, lng: 151.2 }, rangeKm: 10 });
      await expectFrame(b, "waiting");
      await expectFrame(b, "matched");
      await expectFrame(a2, "matched");
    });

    t.it("resume after the grace is refused cleanly: a fresh session, and the partner was told", async () => {
      await h.close();
      h = await makeHarness({ resumeGraceMs: 150 });
      const { a, b, roomId } = await pair();
      const welcomeB = await reconnectInfo(b);
      await b.drop();
      await expectFrame(a, "partner_away");
      const left = await expectFrame(a, "partner_left", 3000);
      assert.deepEqual(left, { type: "partner_left", roomId, reason: "disconnected" });
      const b2 = await h.connect({ resume: welcomeB.resumeToken });
      clients.push(b2);
      const w = await expectFrame(b2, "welcome");
      assert.equal(w.resumed, false);
      assert.notEqual(w.sessionId, welcomeB.sessionId);
    });

    t.it("never matches two sessions of one user... or the same session with itself", async () => {
      const { c } = await client();
      c.send({ type: "join", location: { lat: 0, lng: 0 }, rangeKm: 100 });
      await expectFrame(c, "waiting");
      c.send({ type: "join", id: "again", location: { lat: 0, lng: 0 }, rangeKm: 100 });
      assert.equal((await expectFrame(c, "waiting")).id, "again");
      c.send({ type: "ping", id: "sync" });
      await expectFrame(c, "pong");
    });

    const badRequests: [string, OutboundFrame, ErrorCode][] = [
      ["not an object: an array", [1, 2] as unknown as OutboundFrame, "bad_request"],
      ["no type", { text: "x" }, "bad_request"],
      ["type not a string", { type: 7 }, "bad_request"],
      ["unknown type", { type: "dance" }, "unknown_type"],
      ["join without location", { type: "join", rangeKm: 5 }, "bad_request"],
      ["location not an object", { type: "join", location: "here", rangeKm: 5 }, "bad_request"],
      ["lat as a string", { type: "join", location: { lat: "1", lng: 2 }, rangeKm: 5 }, "bad_request"],
      ["lat above 90", { type: "join", location: { lat: 90.5, lng: 2 }, rangeKm: 5 }, "invalid_location"],
      ["lat below -90", { type: "join", location: { lat: -91, lng: 2 }, rangeKm: 5 }, "invalid_location"],
      ["lng above 180", { type: "join", location: { lat: 1, lng: 180.01 }, rangeKm: 5 }, "invalid_location"],
      ["lng below -180", { type: "join", location: { lat: 1, lng: -181 }, rangeKm: 5 }, "invalid_location"],
      ["range as a string", { type: "join", location: { lat: 1, lng: 2 }, rangeKm: "5" }, "bad_request"],
      ["range zero", { type: "join", location: { lat: 1, lng: 2 }, rangeKm: 0 }, "invalid_range"],
      ["range negative", { type: "join", location: { lat: 1, lng: 2 }, rangeKm: -3 }, "invalid_range"],
      [
        "range above the maximum",
        { type: "join", location: { lat: 1, lng: 2 }, rangeKm: limits.maxRangeKm + 1 },
        "invalid_range",
      ],
      [
        "name with a control character",
        { type: "join", location: { lat: 1, lng: 2 }, rangeKm: 5, name: "a\u0007b" },
        "bad_request",
      ],
      [
        "name not a string",
        { type: "join", location: { lat: 1, lng: 2 }, rangeKm: 5, name: 42 },
        "bad_request",
      ],
      ["message text missing", { type: "message" }, "bad_request"],
      ["message text empty", { type: "message", text: "" }, "bad_request"],
      [
        "message text too long",
        { type: "message", text: "x".repeat(limits.maxMessageChars + 1) },
        "too_large",
      ],
      ["typing active not a boolean", { type: "typing", active: "yes" }, "bad_request"],
      ["auth without token", { type: "auth" }, "bad_request"],
      ["id not a string", { type: "ping", id: 5 }, "bad_request"],
    ];
    for (const [what, frame, code] of badRequests) {
      t.it(`bad input (${what}) gets ${code} and the session goes on`, async () => {
        const { c } = await client();
        c.send(Array.isArray(frame) ? frame : { ...frame, ...(frame.id === undefined ? { id: "bad" } : {}) });
        const e = await expectFrame(c, "error");
        assert.equal(e.code, code, `${what}: ${e.message}`);
        assert.equal(typeof e.message, "string");
        if (!Array.isArray(frame) && frame.id === undefined && typeof frame.type === "string")
          assert.equal(e.id, "bad");
        c.send({ type: "ping", id: "after" });
        assert.equal((await expectFrame(c, "pong")).id, "after");
      });
    }

    t.it("a message outside a room is not_in_room; block outside a room too", async () => {
      const { c } = await client();
      c.send({ type: "message", id: "m", text: "anyone?" });
      assert.equal((await expectFrame(c, "error")).code, "not_in_room");
      c.send({ type: "block", id: "b" });
      assert.equal((await expectFrame(c, "error")).code, "not_in_room");
      c.send({ type: "next", id: "n" });
      assert.equal((await expectFrame(c, "error")).code, "not_in_room");
    });

    t.it("an error never echoes more than a short prefix of the input", async () => {
      const { c } = await client();
      const huge = `evil${"A".repeat(5000)}`;
      c.send({ type: huge, id: "x" });
      const e = await expectFrame(c, "error");
      assert.equal(e.code, "unknown_type");
      assert.ok(JSON.stringify(e).length < 300, "error frame too long");
    });

    t.it(
      "a flood of messages is throttled with rate_limited and retryAfterMs; accepted ones arrive in order",
      async () => {
        const { a, b } = await pair();
        const n = limits.messageBurst + 5;
        for (let i = 0; i < n; i++) a.send({ type: "message", id: `f${i}`, text: `m${i}` });
        const acked: string[] = [];
        let limited = 0;
        for (let i = 0; i < n; i++) {
          const f = await a.next();
          if (f.type === "ack") acked.push(f.id ?? "");
          else if (f.type === "error") {
            assert.equal(f.code, "rate_limited");
            assert.ok((f.retryAfterMs ?? 0) > 0);
            limited++;
          } else assert.fail(`unexpected ${f.type}`);
        }
        assert.ok(limited >= 1, "nothing was rate limited");
        assert.ok(acked.length >= limits.messageBurst);
        const texts: string[] = [];
        for (let i = 0; i < acked.length; i++)
          texts.push(((await expectFrame(b, "message")) as { text: string }).text);
        assert.deepEqual(
          texts,
          acked.map((id) => `m${id.slice(1)}`),
        );
      },
    );

    t.it("after rate_limited, sending again once retryAfterMs has passed succeeds", async () => {
      const { a, b } = await pair();
      let retryAfterMs = 0;
      let sent = 0;
      for (let i = 0; i < limits.messageBurst + 3 && retryAfterMs === 0; i++) {
        a.send({ type: "message", id: `x${i}`, text: `x${i}` });
        sent++;
        const f = await a.next();
        if (f.type === "error") {
          assert.equal(f.code, "rate_limited");
          retryAfterMs = f.retryAfterMs ?? 0;
        } else assert.equal(f.type, "ack");
      }
      assert.ok(retryAfterMs > 0, `no rate_limited after ${sent} messages`);
      await new Promise((r) => setTimeout(r, retryAfterMs + 20));
      a.send({ type: "message", id: "again", text: "patience pays" });
      assert.equal((await expectFrame(a, "ack")).id, "again");
      for (let i = 0; i < sent - 1; i++) await expectFrame(b, "message");
      assert.equal((await expectFrame(b, "message")).text, "patience pays");
    });

    t.it("refuses a handshake with malformed parameters with 400", async () => {
      const refused = await h.connectRefused({ token: "" });
      assert.equal(refused.status, 400);
    });
  });
}

/**
 * A partner distance as the protocol shows it for two points `trueKm` apart: a whole multiple of
 * the step (1 km, or the location precision rounded up), at least one step, and within twice the
 * precision (plus the rounding) of the true distance.
 */
function assertPublicDistance(km: number, trueKm: number, precisionKm: number): void {
  const step = Math.max(1, Math.ceil(precisionKm));
  assert.ok(
    Number.isInteger(km / step) && km >= step,
    `distanceKm ${km} is not a whole number of ${step} km steps`,
  );
  assert.ok(
    km >= trueKm - 2 * precisionKm && km <= trueKm + 2 * precisionKm + step,
    `distanceKm ${km} is too far from ${trueKm} km for a precision of ${precisionKm} km`,
  );
}

/** Takes frames until one of `type` arrives; fails on an unexpected `error` frame. */
export async function expectFrame<T extends ServerFrame["type"]>(
  client: TestClient,
  type: T,
  timeoutMs = 3000,
): Promise<Extract<ServerFrame, { type: T }>> {
  for (;;) {
    const f = await client.next(timeoutMs);
    if (f.type === type) return f as Extract<ServerFrame, { type: T }>;
    if (f.type === "error") assert.fail(`expected ${type}, got error ${f.code}: ${f.message}`);
    if (f.type !== "typing") assert.fail(`expected ${type}, got ${JSON.stringify(f)}`);
  }
}
