// The demo page through connection cuts: each user's page goes through its own TCP proxy, which
// cuts that user's connections as a network would.
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";
import {
  clean,
  conn,
  DESKTOP,
  find,
  hasChromium,
  joinAsGuest,
  launch,
  NEAR_PARIS,
  PARIS,
  Pages,
  PHONE,
  partnerLines,
  say,
  shot,
  state,
  type TcpProxy,
  tcpProxy,
  viewState,
} from "./browser-kit.js";

describe.skipIf(!hasChromium)("demo page through connection cuts", { timeout: 90_000 }, () => {
  let browser: Browser;
  const pages = new Pages(() => browser);
  const proxies: TcpProxy[] = [];
  const demos: Demo[] = [];

  beforeAll(async () => {
    browser = await launch();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    const errors = await pages.closeAll();
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await Promise.all(demos.splice(0).map((d) => d.close()));
    expect(errors).toEqual([]); // no uncaught error in any page
  });

  async function demo(env: Record<string, string> = {}): Promise<Demo> {
    const d = await startDemo(readConfig({ PORT: "0", ...env }), () => undefined);
    demos.push(d);
    return d;
  }

  /** Ana (desktop) and Ben (phone), each behind a proxy of their own, chatting. */
  async function pairBehindProxies(d: Demo) {
    const anaNet = await tcpProxy(d.url);
    const benNet = await tcpProxy(d.url);
    proxies.push(anaNet, benNet);
    const { page: ana } = await pages.open(anaNet.url, { viewport: DESKTOP });
    const { page: ben } = await pages.open(benNet.url, { viewport: PHONE });
    await ana.getByTestId("guest").click();
    await state(ana, "idle");
    await find(ana, PARIS, "Ana");
    await joinAsGuest(ben, "Ben", NEAR_PARIS);
    await state(ana, "matched");
    await state(ben, "matched");
    return { ana, ben, anaNet, benNet };
  }

  const away = (page: Page) => page.getByTestId("partner-away").isVisible();

  /**
   * Both networks die together and Ana comes back first, while Ben is still offline: Ana's page
   * must say that Ben is away. `serverSeesFirst` is whose drop the server notices first: the
   * other's connection looks open to it a moment longer, so what it writes there is lost.
   */
  async function bothDrop(serverSeesFirst: "Ana" | "Ben") {
    const d = await demo();
    const { ana, ben, anaNet, benNet } = await pairBehindProxies(d);
    await say(ana, "still there?");
    await expect.poll(async () => clean(await partnerLines(ben))).toEqual(["still there?"]);

    const [first, second] = serverSeesFirst === "Ana" ? [anaNet, benNet] : [benNet, anaNet];
    second.offline({ serverNotices: false });
    first.offline();
    await conn(ana, "reconnecting");
    await conn(ben, "reconnecting");
    await expect.poll(() => d.hub.localCounts().away).toBe(1);
    second.serverNotices();
    await expect.poll(() => d.hub.localCounts().away).toBe(2);

    anaNet.online();
    await conn(ana, "open");
    await expect.poll(() => away(ana), { timeout: 3000 }).toBe(true);
    expect(await ana.getByTestId("partner-away").textContent()).toMatch(/Ben's connection dropped/);
    await shot(ana, `outage-partner-still-away-${serverSeesFirst}-first-desktop`);

    // Ben comes back: the notice goes, and they chat on.
    benNet.online();
    await conn(ben, "open");
    await expect.poll(() => away(ana)).toBe(false);
    expect(await away(ben)).toBe(false);
    await say(ben, "back too");
    await expect.poll(async () => clean(await partnerLines(ana))).toEqual(["back too"]);
  }

  it("both drop at once, the server notices Ana first: Ana, back first, is told Ben is still away", () =>
    bothDrop("Ana"));

  // The `partner_away` for Ben goes to Ana's dying connection and is lost; Ben's session, away,
  // answers Ana's `partner_back` with `partner_away` again (packages/core/src/session/place.ts).
  it("both drop at once, the server notices Ben first: Ana, back first, is told Ben is still away", () =>
    bothDrop("Ben"));

  it("offline for longer than the resume grace: the page says the chat ended because of it", async () => {
    const d = await demo({ WHISPER_RESUME_GRACE_MS: "1000" });
    const { ana, ben, anaNet } = await pairBehindProxies(d);
    anaNet.offline();
    await conn(ana, "reconnecting");
    await state(ben, "ended");
    await expect.poll(() => ben.getByTestId("ended").textContent()).toMatch(/disconnected/);
    anaNet.online();
    await conn(ana, "open");
    await state(ana, "idle");
    const banner = ana.getByTestId("error");
    await expect
      .poll(() => banner.textContent())
      .toMatch(/You were offline for too long, so your chat ended/);
    expect(await banner.textContent()).not.toMatch(/previous session had ended/);
    await shot(ana, "outage-grace-expired-desktop");
  });

  it("a guest back past the resume grace is the same user: the page still says whom it blocked", async () => {
    const d = await demo({ WHISPER_RESUME_GRACE_MS: "1000" });
    const { ana, ben, anaNet } = await pairBehindProxies(d);
    await ana.getByTestId("block").click();
    await ana.getByTestId("block-confirm").click();
    await state(ana, "waiting");
    await expect
      .poll(() => ana.getByTestId("apart").textContent())
      .toBe("You blocked Ben, so you two won't be matched again for a day. Anyone else nearby still can be.");
    await state(ben, "ended");
    await ben.getByTestId("find-again").click();
    await state(ben, "waiting");

    anaNet.offline();
    await conn(ana, "reconnecting");
    // The grace is over: Ana's session is gone (not away), Ben's waits.
    await expect.poll(() => d.hub.localCounts()).toMatchObject({ waiting: 1, away: 0 });
    anaNet.online();
    await conn(ana, "open");
    await expect
      .poll(() => ana.getByTestId("error").textContent())
      .toMatch(/You were offline for too long, so you stopped looking/);
    // A new session of the same device: the server keeps the block, and the page says so.
    await find(ana, PARIS);
    await state(ana, "waiting");
    await expect
      .poll(() => ana.getByTestId("apart").textContent())
      .toBe("You blocked Ben, so you two won't be matched again for a day. Anyone else nearby still can be.");
    expect(await viewState(ben)).toBe("waiting");
  });

  it("a tab reopened after the resume grace says so too: the chat, or the search, ended", async () => {
    const d = await demo({ WHISPER_RESUME_GRACE_MS: "1000" });
    const { ana, ben } = await pairBehindProxies(d);
    const { page: cleo } = await pages.open(d.url, { viewport: PHONE });
    await joinAsGuest(cleo, "Cleo", { lat: "-33.8688", lng: "151.2093" }); // nobody near her
    await state(cleo, "waiting");
    const url = ana.url();
    // Both leave the page (the socket closes "going away": resumable), past the grace.
    await ana.goto("about:blank");
    await cleo.goto("about:blank");
    await state(ben, "ended");
    await expect.poll(() => d.hub.localCounts().away).toBe(0);
    await ana.goto(url);
    await cleo.goto(d.url);
    await expect
      .poll(() => ana.getByTestId("error").textContent())
      .toMatch(/You were offline for too long, so your chat ended/);
    await expect
      .poll(() => cleo.getByTestId("error").textContent())
      .toMatch(/You were offline for too long, so you stopped looking for a match/);
    expect(await viewState(ana)).toBe("idle");
  });
});
