import { rolePolicy, type WhisperOptions } from "@whisperchat/core";
import { createJwtAuth } from "@whisperchat/core/jwt";
import { expectFrame } from "@whisperchat/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startWsHarness, type WsHarness, wrapClient } from "./harness.js";

const SECRET = "a test secret that is long enough for HS256!";
const jwt = createJwtAuth({ secret: SECRET, clockToleranceSec: 0 });
let h: WsHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function start(options: Partial<WhisperOptions> = {}): Promise<WsHarness> {
  return startWsHarness({
    authenticate: jwt.authenticate,
    reauthenticate: jwt.reauthenticate,
    allowGuests: false,
    ...options,
  });
}

const token = async (userId: string, expiresInSec = 60, roles: string[] = []) =>
  (await jwt.sign({ userId, name: `name of ${userId}`, roles }, { expiresInSec })).token;

describe("authentication through real sockets", () => {
  it("accepts a token in ?token= and in Authorization: Bearer; refuses none, garbage and expired with 401", async () => {
    h = await start();
    const a = await h.connect({ token: await token("ada") });
    expect((await expectFrame(a, "welcome")).user).toEqual({ userId: "ada", name: "name of ada" });
    const bearer = wrapClient(
      new WebSocket(h.url, { headers: { Authorization: `Bearer ${await token("bob")}` } }),
    );
    expect((await expectFrame(bearer, "welcome")).user.userId).toBe("bob");
    expect((await h.connectRefused()).status).toBe(401);
    expect((await h.connectRefused({ token: "not.a.jwt" })).status).toBe(401);
    // Signed "two minutes ago" for one minute: expired now.
    const past = createJwtAuth({ secret: SECRET, now: () => Date.now() - 120_000 });
    const expired = (await past.sign({ userId: "old", name: "old", roles: [] }, { expiresInSec: 60 })).token;
    expect((await h.connectRefused({ token: expired })).status).toBe(401);
    await a.close();
    await bearer.close();
  });

  it("closes the session with 4401 when its token expires", async () => {
    h = await start();
    const a = await h.connect({ token: await token("ada", 1) });
    await expectFrame(a, "welcome");
    expect(await a.closed).toBe(4401);
  });

  it("a fresh token for the same user sent with auth keeps the session open past the first expiry", async () => {
    h = await start();
    const a = await h.connect({ token: await token("ada", 1) });
    await expectFrame(a, "welcome");
    a.send({ type: "auth", id: "refresh", token: await token("ada", 60) });
    expect((await expectFrame(a, "ack")).id).toBe("refresh");
    // The first token lived 1 to 2 s (exp is a whole second at least 1 s after signing).
    await new Promise((r) => setTimeout(r, 2100));
    a.send({ type: "ping", id: "still" });
    expect((await expectFrame(a, "pong")).id).toBe("still");
    await a.close();
  });

  it("a token for another user, or garbage, is refused with unauthorized and changes nothing", async () => {
    h = await start();
    const a = await h.connect({ token: await token("ada", 1) });
    await expectFrame(a, "welcome");
    a.send({ type: "auth", id: "other", token: await token("eve", 60) });
    const e = await expectFrame(a, "error");
    expect(e).toMatchObject({ code: "unauthorized", id: "other" });
    a.send({ type: "auth", id: "junk", token: "junk" });
    expect(await expectFrame(a, "error")).toMatchObject({ code: "unauthorized", id: "junk" });
    // The old expiry still holds.
    expect(await a.closed).toBe(4401);
  });
});

describe("authorisation through real sockets", () => {
  it("a role policy refuses an action with forbidden and the session goes on", async () => {
    h = await start({ authorize: rolePolicy({ join: ["member"] }) });
    const guest = await h.connect({ token: await token("nobody") });
    await expectFrame(guest, "welcome");
    guest.send({ type: "join", id: "j", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    expect(await expectFrame(guest, "error")).toMatchObject({ code: "forbidden", id: "j" });
    guest.send({ type: "ping", id: "p" });
    await expectFrame(guest, "pong");
    const member = await h.connect({ token: await token("mia", 60, ["member"]) });
    await expectFrame(member, "welcome");
    member.send({ type: "join", id: "j", location: { lat: 1, lng: 1 }, rangeKm: 5 });
    expect((await expectFrame(member, "waiting")).id).toBe("j");
    await guest.close();
    await member.close();
  });

  it("connect can be refused by the policy with 403", async () => {
    h = await start({ authorize: rolePolicy({ connect: ["member"] }) });
    expect((await h.connectRefused({ token: await token("nobody") })).status).toBe(403);
  });

  it("admin calls are checked: stats needs the admin role when a caller is named", async () => {
    h = await start({ authorize: rolePolicy({}) });
    const user = { userId: "u", name: "u", roles: [] };
    const admin = { userId: "a", name: "a", roles: ["admin"] };
    await expect(h.hub.stats({ by: user })).rejects.toMatchObject({ code: "forbidden" });
    await expect(h.hub.kick("x", { by: user })).rejects.toMatchObject({ code: "forbidden" });
    expect((await h.hub.stats({ by: admin })).sessions).toBe(0);
  });

  it("a ban closes the user's sessions with 1008 and refuses new ones with 403 until it ends", async () => {
    h = await start();
    const a = await h.connect({ token: await token("troll") });
    await expectFrame(a, "welcome");
    await h.hub.ban("troll", { reason: "spam", until: Date.now() + 1500 });
    expect(await a.closed).toBe(1008);
    expect((await h.connectRefused({ token: await token("troll") })).status).toBe(403);
    const other = await h.connect({ token: await token("someone") });
    await expectFrame(other, "welcome");
    await new Promise((r) => setTimeout(r, 1600));
    const back = await h.connect({ token: await token("troll") });
    await expectFrame(back, "welcome");
    await other.close();
    await back.close();
  });
});
