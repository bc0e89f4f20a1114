import { WhisperError, type WhisperHub, type WhisperOptions } from "@whisperchat/core";
import { createTestHub, type TestHub } from "@whisperchat/core/testing";
import { createMemoryStore } from "@whisperchat/store-memory";
import { afterEach, beforeEach, expect, it } from "vitest";

// The app's own rules (in an app, import them from its modules).
const users: Record<string, { name: string; lang: string; muted?: boolean }> = {
  ana: { name: "Ana", lang: "es" },
  ben: { name: "Ben", lang: "es" },
  carl: { name: "Carl", lang: "de" },
  troll: { name: "Troll", lang: "es", muted: true },
};
const chatOptions = {
  authenticate: (_handshake, token) => {
    const user = users[token ?? ""];
    if (user === undefined) throw new WhisperError("unauthorized", "unknown user");
    return { userId: token as string, name: user.name, roles: user.muted ? ["muted"] : [] };
  },
  // Muted users may be matched, but not write.
  authorize: (identity, action) => !(action === "message" && identity.roles.includes("muted")),
  // Only people who speak the same language meet.
  matchFilter: (a, b) => users[a.userId]?.lang === users[b.userId]?.lang,
} satisfies Partial<WhisperOptions>;

/** The app's moderation: whoever writes "spam" is kicked. */
function moderate(hub: WhisperHub): void {
  hub.on("message", ({ identity, text }) => {
    if (/spam/i.test(text)) void hub.kick(identity.userId);
  });
}

const PARIS = { lat: 48.8566, lng: 2.3522 };
let kit: TestHub;
beforeEach(() => {
  kit = createTestHub({ store: createMemoryStore, ...chatOptions });
  moderate(kit.hub);
});
afterEach(() => kit.close());

async function meet(a: string, b: string) {
  const [first, second] = [await kit.connect({ token: a }), await kit.connect({ token: b })];
  await first.join({ location: PARIS, rangeKm: 5 });
  await second.join({ location: PARIS, rangeKm: 5 });
  await first.expectFrame("matched");
  await second.expectFrame("matched");
  return [first, second] as const;
}

it("refuses unknown users", async () => {
  await expect(kit.connect({ token: "eve" })).rejects.toMatchObject({ status: 401 });
});

it("lets a muted user read but not write", async () => {
  const [troll, ana] = await meet("troll", "ana");
  await expect(troll.send("hi")).rejects.toMatchObject({ code: "forbidden" });
  await ana.send("hola");
  expect((await troll.expectFrame("message")).text).toBe("hola");
});

it("matches only people who speak the same language", async () => {
  const ana = await kit.connect({ token: "ana" });
  const carl = await kit.connect({ token: "carl" });
  const ben = await kit.connect({ token: "ben" });
  for (const c of [ana, carl, ben]) await c.join({ location: PARIS, rangeKm: 5 });
  expect((await ana.expectFrame("matched")).partner.name).toBe("Ben");
  await carl.ping(); // every frame sent to Carl before the pong has arrived
  expect(carl.pending()).toEqual([]);
});

it("kicks a spammer, and the partner is told", async () => {
  const [ana, ben] = await meet("ana", "ben");
  await ana.send("cheap spam here");
  expect((await ben.expectFrame("message")).text).toBe("cheap spam here");
  expect(await ana.expectClose()).toEqual({ code: 1008, reason: "kicked" });
  expect(await ben.expectFrame("partner_left")).toMatchObject({ reason: "disconnected" });
});

it("ends a chat 30 s after the partner's connection drops", async () => {
  const [ana, ben] = await meet("ana", "ben");
  await ben.drop();
  await ana.expectFrame("partner_away");
  await kit.clock.advance(30_000); // the resume grace, in no time
  expect(await ana.expectFrame("partner_left")).toMatchObject({ reason: "disconnected" });
});
