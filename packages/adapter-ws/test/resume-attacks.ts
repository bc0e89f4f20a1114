// The resume attacks, written once for every transport: each attack file runs them with its own
// harness and its own way of cutting a handshake off midway.
import type { ServerFrame, WhisperHub, WhisperOptions } from "@whisperchat/core";
import { expectFrame, type TestClient, type TransportHarness } from "@whisperchat/core/testing";
import { expect, it } from "vitest";
import { eventually, sleep } from "./attack-kit.js";

const HERE = { lat: 52.52, lng: 13.405 };

/** What the resume attacks need from one transport. */
export interface ResumeAttackTarget<H extends TransportHarness & { hub: WhisperHub }> {
  /** A fresh server with these hub options (an `authenticate` hook of {@link tokenAuth} style). */
  start(hubOptions: Partial<WhisperOptions>): Promise<H>;
  /** Hub options every test starts from: the store of the run and a slow `authenticate`. */
  options(): Promise<Partial<WhisperOptions>>;
  /** Starts a resume with `resumeToken` and cuts it off while the admission is under way. */
  cutMidHandshake(h: H, resumeToken: string): Promise<void>;
  /** Extra transport checks that `client`'s connection is still open and was not told to close. */
  stillOpen?(client: TestClient): void;
}

export async function welcome(c: TestClient): Promise<Extract<ServerFrame, { type: "welcome" }>> {
  return expectFrame(c, "welcome");
}

/** A client that joined at the test point and is waiting. */
export async function waitingClient(h: TransportHarness, params?: { token?: string }): Promise<TestClient> {
  const c = await h.connect(params);
  await welcome(c);
  c.send({ type: "join", location: HERE, rangeKm: 5 });
  await expectFrame(c, "waiting");
  return c;
}

/** Two clients in one room; resolves them with their resume tokens, user ids and the room. */
export async function pair<C extends TestClient>(
  h: { connect(params?: { token?: string; resume?: string }): Promise<C> },
  params: [{ token?: string }?, { token?: string }?] = [],
) {
  const a = await h.connect(params[0]);
  const aw = await welcome(a);
  const b = await h.connect(params[1]);
  const bw = await welcome(b);
  a.send({ type: "join", location: HERE, rangeKm: 5 });
  await expectFrame(a, "waiting");
  b.send({ type: "join", location: HERE, rangeKm: 5 });
  await expectFrame(b, "waiting");
  const { roomId } = await expectFrame(a, "matched");
  await expectFrame(b, "matched");
  return {
    a,
    b,
    roomId,
    aToken: aw.resumeToken,
    bToken: bw.resumeToken,
    aId: aw.sessionId,
    aUser: aw.user.userId,
    bUser: bw.user.userId,
  };
}

/** The resume attacks, as `it` blocks (call inside a `describe`). */
export function resumeAttacks<H extends TransportHarness & { hub: WhisperHub }>(
  t: ResumeAttackTarget<H>,
): void {
  const start = async (extra: Partial<WhisperOptions> = {}) => t.start({ ...(await t.options()), ...extra });

  it("a resume cut off mid-handshake leaves the live session with its connection, and its token valid", async () => {
    const h = await start();
    const { a, b, aToken } = await pair(h);
    await t.cutMidHandshake(h, aToken);
    await sleep(300); // the admission finished after the socket was gone
    t.stillOpen?.(a);
    a.send({ type: "message", text: "still here", id: "m1" });
    expect((await expectFrame(a, "ack")).id).toBe("m1");
    expect((await expectFrame(b, "message")).text).toBe("still here");
    // The owner's own resume with the same token works.
    const again = await h.connect({ resume: aToken });
    expect((await welcome(again)).resumed).toBe(true);
    expect(await a.closed).toBe(4001);
  });

  it("a resume cut off mid-handshake of an away session: the partner is told partner_left at the grace", async () => {
    const h = await start({ resumeGraceMs: 400 });
    const { a, b, aToken } = await pair(h);
    await a.drop();
    await expectFrame(b, "partner_away");
    await t.cutMidHandshake(h, aToken);
    const left = await expectFrame(b, "partner_left", 3000);
    expect(left.reason).toBe("disconnected");
    expect(await eventually(async () => (await h.hub.stats()).sessions === 1)).toBe(true);
  });

  it("a resume cut off mid-handshake of a waiting session does not trap the next user", async () => {
    const h = await start();
    const a = await h.connect();
    const aw = await welcome(a);
    a.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "waiting");
    await t.cutMidHandshake(h, aw.resumeToken);
    await sleep(300);
    const c = await waitingClient(h);
    await expectFrame(c, "matched");
    await expectFrame(a, "matched");
    a.send({ type: "message", text: "hi" });
    expect((await expectFrame(c, "message")).text).toBe("hi");
    expect(c.pending().some((f) => f.type === "partner_away")).toBe(false);
  });

  it("taking over a live waiting session leaves one pool entry: only one newcomer is matched with it", async () => {
    const h = await start();
    const a = await h.connect();
    const aw = await welcome(a);
    a.send({ type: "join", location: HERE, rangeKm: 5 });
    await expectFrame(a, "waiting");
    const a2 = await h.connect({ resume: aw.resumeToken });
    expect((await welcome(a2)).resumed).toBe(true);
    expect(await a.closed).toBe(4001);
    expect(await eventually(async () => (await h.hub.store.pool.size()) === 1, 1000)).toBe(true);
    await sleep(100);
    expect(await h.hub.store.pool.size()).toBe(1);
    const b = await waitingClient(h);
    await expectFrame(b, "matched");
    const c = await waitingClient(h);
    await expect(expectFrame(c, "matched", 500)).rejects.toThrow();
  });

  it("a resume with another user's token is refused and does not burn the owner's token", async () => {
    const h = await start();
    const { a, b, aToken } = await pair(h, [{ token: "u:alice" }, { token: "u:bob" }]);
    await a.drop();
    await expectFrame(b, "partner_away");
    const mallory = await h.connect({ token: "u:mallory", resume: aToken });
    expect((await welcome(mallory)).resumed).toBe(false);
    const owner = await h.connect({ token: "u:alice", resume: aToken });
    expect((await welcome(owner)).resumed).toBe(true);
  });

  it("a guest cannot resume a registered user's session, and that attempt burns nothing", async () => {
    const h = await start();
    const { a, aToken } = await pair(h, [{ token: "u:alice" }, { token: "u:bob" }]);
    await a.drop();
    const guest = await h.connect({ resume: aToken });
    const gw = await welcome(guest);
    expect(gw.resumed).toBe(false);
    expect(gw.user.userId).not.toBe("alice");
    const owner = await h.connect({ token: "u:alice", resume: aToken });
    expect((await welcome(owner)).resumed).toBe(true);
  });
}
