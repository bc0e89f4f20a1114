// Every view of the demo page, in light and dark mode, on a desktop and a phone: an axe-core audit
// (WCAG 2.1 A and AA, and axe's best practices) that fails on any violation, and a screenshot.
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";
import {
  axeViolations,
  conn,
  DESKTOP,
  find,
  focused,
  hasChromium,
  joinAsGuest,
  launch,
  NEAR_PARIS,
  PARIS,
  Pages,
  PHONE,
  say,
  scrollWidth,
  shot,
  state,
  type TcpProxy,
  tcpProxy,
} from "./browser-kit.js";

describe.skipIf(!hasChromium)("demo page accessibility", { timeout: 120_000 }, () => {
  let browser: Browser;
  let demo: Demo;
  const pages = new Pages(() => browser);
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    browser = await launch();
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });
  afterEach(async () => {
    const errors = await pages.closeAll();
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    expect(errors).toEqual([]); // no uncaught error in any page
  });

  const combos = [
    { scheme: "light", device: "desktop", viewport: DESKTOP },
    { scheme: "dark", device: "desktop", viewport: DESKTOP },
    { scheme: "light", device: "phone", viewport: PHONE },
    { scheme: "dark", device: "phone", viewport: PHONE },
  ] as const;

  for (const { scheme, device, viewport } of combos) {
    it(`every view passes axe-core, ${scheme} mode, ${device}`, async () => {
      const found: string[] = [];
      /** Audits the page as it is now, takes its screenshot, and checks it fits the screen's width. */
      const check = async (page: Page, view: string) => {
        for (const v of await axeViolations(page)) found.push(`${view}: ${v}`);
        await shot(page, `view-${view}-${scheme}-${device}`);
        expect(await scrollWidth(page), `${view} is wider than the screen`).toBeLessThanOrEqual(
          viewport.width,
        );
      };
      const net = await tcpProxy(demo.url);
      proxies.push(net);
      const options = { viewport, colorScheme: scheme, bypassCSP: true } as const;
      const { page: ana } = await pages.open(net.url, options);
      await state(ana, "account");
      await check(ana, "welcome");

      // The server cannot be reached: the page says so, and Reconnect tries again.
      net.offline();
      await ana.getByTestId("guest").click();
      await state(ana, "disconnected");
      await check(ana, "disconnected");
      net.online();
      await ana.getByTestId("reconnect").click();
      await state(ana, "idle");
      await conn(ana, "open");
      await expect.poll(() => ana.getByTestId("find").isEnabled()).toBe(true);
      await check(ana, "setup");

      await find(ana, PARIS, "Ana");
      await check(ana, "waiting");

      const { page: ben } = await pages.open(demo.url, options);
      await joinAsGuest(ben, "Ben", NEAR_PARIS);
      await state(ana, "matched");
      await say(ana, "Hello Ben, how far are you?");
      await say(ben, "Close by. Hi Ana!");
      await check(ana, "chat");

      await ana.getByTestId("block").click();
      await expect.poll(() => ana.getByTestId("block-panel").isVisible()).toBe(true);
      await check(ana, "block-confirm");
      await ana.keyboard.press("Escape");

      net.offline();
      await conn(ana, "reconnecting");
      await expect.poll(() => ana.getByTestId("reconnecting").isVisible()).toBe(true);
      await expect.poll(() => ben.getByTestId("partner-away").isVisible()).toBe(true);
      await check(ana, "reconnecting");
      await check(ben, "partner-away");
      net.online();
      await conn(ana, "open");

      await ana.getByTestId("next").click();
      await state(ana, "waiting");
      await expect.poll(() => ana.getByTestId("apart").isVisible()).toBe(true);
      await check(ana, "waiting-after-next");
      await state(ben, "ended");
      await check(ben, "ended");

      expect(found).toEqual([]);
    });
  }

  it("the conversation is a live region, reached by keyboard and scrolled with it", async () => {
    const { page: ana } = await pages.open(demo.url, { viewport: PHONE, bypassCSP: true });
    const { page: ben } = await pages.open(demo.url, { viewport: DESKTOP });
    await joinAsGuest(ana, "Ana", PARIS);
    await joinAsGuest(ben, "Ben", NEAR_PARIS);
    await state(ana, "matched");
    const story = "of a long story, told slowly enough to wrap over several lines on a phone";
    for (let i = 1; i <= 12; i++) await say(ben, `line ${i} ${story}`);
    await expect.poll(() => ana.locator(".msg-partner").count()).toBe(12);
    const log = ana.getByTestId("log");
    // Much of the conversation is out of view (axe-core checks a region that scrolls 13 px or more).
    expect(await log.evaluate((el) => el.scrollHeight - el.clientHeight)).toBeGreaterThan(200);
    // Scrolling, the conversation must be focusable itself in every browser: Chromium lets the
    // keyboard reach a scroller without a tabindex, others do not, and axe-core checks for it.
    expect(await axeViolations(ana)).toEqual([]);

    // Tab from the last chat action lands on the conversation, which the keys then scroll.
    await ana.getByTestId("block").focus();
    await ana.keyboard.press("Tab");
    expect(await focused(ana)).toBe("log");
    const scrollTop = () => log.evaluate((el) => el.scrollTop);
    expect(await scrollTop()).toBeGreaterThan(0); // at the end, the newest line in view
    await ana.keyboard.press("Home");
    await expect.poll(scrollTop).toBe(0);

    // A screen reader hears who said what, new lines only, politely.
    expect(await log.getAttribute("role")).toBe("log");
    expect(await log.getAttribute("aria-live")).toBe("polite");
    expect(await log.getAttribute("aria-relevant")).toBe("additions");
    const snapshot = await log.ariaSnapshot();
    expect(snapshot).toMatch(/log "Conversation"/);
    expect(snapshot).toContain(`Ben: line 12 ${story}`);
  });
});
