// Resumes of sessions whose connections died without the server noticing at once, with
// in-process connections (a fake is enough here: what is tested is the session's logic).
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, describe, expect, it } from "vitest";
import type { Connection, ServerFrame, SessionLink, WhisperHub } from "../src/index.js";
import { createWhisper } from "../src/index.js";
import { manualClock } from "../src/testing/index.js";

let hub: WhisperHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

/** A connection whose frames can be lost, as on a network that died before the server knew. */
interface Client {
  link: SessionLink;
  frames: ServerFrame[];
  /** From now on, frames written to this connection never arrive. */
  cut(): void;
  token(): string;
}

async function connect(h: WhisperHub, resume?: string, last?: string): Promise<Client> {
  const frames: ServerFrame[] = [];
  let dead = false;
  const conn: Connection = {
    send: (f) => {
      if (!dead) frames.push(f);
    },
    close: () => undefined,
    bufferedAmount: 0,
  };
  const params: Record<string, string> = resume === undefined ? {} : { resume };
  if (last !== undefined) params.last = last;
  const admission = await h.admit({ transport: "test", headers: {}, params, remoteAddress: "10.0.0.1" });
  const link = h.open(admission, conn);
  return {
    link,
    frames,
    cut: () => {
      dead = true;
    },
    token: () => {
      const welcome = frames.find((f) => f.type === "welcome");
      if (welcome?.type !== "welcome") throw new Error("no welcome");
      return welcome.resumeToken;
    },
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

/** A hub (5 s resume grace) with Ana and Ben matched in one room. */
async function matchedPair(): Promise<{ h: WhisperHub; ana: Client; ben: Client }> {
  const h = createWhisper({ store: createMemoryStore(), resumeGraceMs: 5000, locationPrecisionKm: 0 });
  hub = h;
  const ana = await connect(h);
  const ben = await connect(h);
  ana.link.receive({ type: "join", location: { lat: 48.85, lng: 2.35 }, rangeKm: 5 });
  ben.link.receive({ type: "join", location: { lat: 48.86, lng: 2.36 }, rangeKm: 5 });
  await until(() => ana.frames.some((f) => f.type === "matched"), "matched");
  return { h, ana, ben };
}

describe("both partners drop at once", () => {
  it("the one back first is told the other is away, though the first notice died with its connection", async () => {
    const { h, ana, ben } = await matchedPair();
    // Both networks die; the server notices Ben's first, so Ben's partner_away is written to
    // Ana's connection, which is already dead.
    ana.cut();
    ben.cut();
    ben.link.closed(1006);
    await until(() => h.localCounts().away === 1, "Ben away");
    ana.link.closed(1006);
    await until(() => h.localCounts().away === 2, "Ana away");
    expect(ana.frames.some((f) => f.type === "partner_away")).toBe(false);

    const anaBack = await connect(h, ana.token());
    await until(() => anaBack.frames.some((f) => f.type === "partner_away"), "partner_away for Ana");
    const welcome = anaBack.frames[0];
    expect(welcome?.type === "welcome" && welcome.resumed).toBe(true);

    // Ben comes back: both know the other is here.
    const benBack = await connect(h, ben.token());
    await until(() => anaBack.frames.some((f) => f.type === "partner_back"), "partner_back for Ana");
    await until(() => benBack.frames.some((f) => f.type === "partner_back"), "partner_back for Ben");
    // Ben replays what he missed in order: Ana went away, then came back.
    const benSaw = benBack.frames.filter((f) => f.type === "partner_away" || f.type === "partner_back");
    expect(benSaw.map((f) => f.type)).toEqual(["partner_away", "partner_back"]);
  });
});

describe("a session of a node that crashed", () => {
  async function crashWithIdleSession(graceMs: number) {
    const clock = manualClock();
    const store = createMemoryStore({ now: clock.now });
    const options = { store, clock, resumeGraceMs: graceMs, nodeHeartbeatMs: 1000 };
    const one = createWhisper({ ...options, nodeId: "one" });
    const two = createWhisper({ ...options, nodeId: "two" });
    hub = two;
    const ana = await connect(one);
    ana.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    ana.link.receive({ type: "leave" });
    await clock.advance(0);
    expect(ana.frames.map((f) => f.type)).toEqual(["welcome", "waiting", "ack"]);
    await one.halt(); // a crash: the idle session's record stays behind
    return { clock, token: ana.token(), two };
  }

  it("is resumed elsewhere within its grace after the crash", async () => {
    const { clock, token, two } = await crashWithIdleSession(30_000);
    await clock.advance(3000 + 29_000); // the heartbeat ran out, then most of the grace
    const back = await connect(two, token);
    expect(back.frames[0]).toMatchObject({ type: "welcome", resumed: true });
  });

  it("ends at its grace though it was idle: a later resume gets a fresh session", async () => {
    const { clock, token, two } = await crashWithIdleSession(30_000);
    await clock.advance(3000 + 30_001);
    const late = await connect(two, token);
    expect(late.frames[0]).toMatchObject({ type: "welcome", resumed: false });
    const sessionId = token.slice(0, token.indexOf("."));
    expect(await two.store.sessions.get(sessionId)).toBeUndefined();
  });
});

describe("a partner whose node died", () => {
  it("is given up at its node's death plus the grace, even if this session moved to another node meanwhile", async () => {
    const clock = manualClock();
    const store = createMemoryStore({ now: clock.now });
    const options = { store, clock, resumeGraceMs: 10_000, nodeHeartbeatMs: 1000 };
    const one = createWhisper({ ...options, nodeId: "one" });
    const two = createWhisper({ ...options, nodeId: "two" });
    const three = createWhisper({ ...options, nodeId: "three" });
    hub = three;
    const ana = await connect(one);
    const ben = await connect(two);
    ana.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    ben.link.receive({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    await clock.advance(0);
    expect(ana.frames.some((f) => f.type === "matched")).toBe(true);
    const t0 = clock.now();
    await two.halt(); // Ben's node crashes: its last heartbeat runs out 3 s later
    await clock.advance(5000);
    expect(ana.frames.some((f) => f.type === "partner_away")).toBe(true);
    await one.halt(); // then Ana's node: she resumes on node three
    await clock.advance(1000);
    const back = await connect(three, ana.token());
    expect(back.frames[0]).toMatchObject({ type: "welcome", resumed: true });
    // Ben's node stopped at t0 + 3 s at the latest: his room ends by t0 + 13 s, not 10 s after
    // node three noticed him.
    await clock.advance(t0 + 13_000 - clock.now());
    expect(back.frames.find((f) => f.type === "partner_left")).toMatchObject({ reason: "disconnected" });
    await one.close();
    await two.close();
  });
});

describe("a resume whose welcome never arrived", () => {
  it("the token it was made with resumes the session once more, until the client used its connection", async () => {
    const { h, ana, ben } = await matchedPair();
    ben.link.closed(1006);
    await until(() => h.localCounts().away === 1, "Ben away");
    ana.link.receive({ type: "message", text: "while you were away", id: "1" });
    await until(() => ana.frames.some((f) => f.type === "ack"), "ack");
    // Ben resumes; the connection dies before the welcome (with the new token) reaches him.
    const lost = await connect(h, ben.token());
    lost.cut();
    lost.link.closed(1006);
    await until(() => h.localCounts().away === 1, "Ben away again");
    // His retry with the old token takes the same session back, with what he missed.
    const matched = ben.frames.find((f) => f.type === "matched");
    const retry = await connect(h, ben.token(), `${matched?.type === "matched" ? matched.roomId : ""}:`);
    expect(retry.frames[0]).toMatchObject({ type: "welcome", resumed: true, sessionId: ben.link.sessionId });
    await until(
      () => retry.frames.some((f) => f.type === "message" && f.text === "while you were away"),
      "the missed message",
    );
    // While that connection is open, the old token takes nothing.
    const thief = await connect(h, ben.token());
    expect(thief.frames[0]).toMatchObject({ type: "welcome", resumed: false });
    // Ben uses his connection: the old token is spent, even once he is away again.
    retry.link.receive({ type: "ping" });
    retry.link.closed(1006);
    await until(() => h.localCounts().away === 1, "Ben away once more");
    const late = await connect(h, ben.token());
    expect(late.frames[0]).toMatchObject({ type: "welcome", resumed: false });
    const again = await connect(h, retry.token());
    expect(again.frames[0]).toMatchObject({ type: "welcome", resumed: true, sessionId: ben.link.sessionId });
  });
});
