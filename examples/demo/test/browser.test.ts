// End-to-end tests of the demo page in a real browser: Debian's chromium, driven by playwright-core.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import { readConfig } from "../src/config.js";
import { type Demo, startDemo } from "../src/server.js";
import {
  ALSO_NEAR_PARIS,
  clean,
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
  partnerLines,
  say,
  scrollWidth,
  settle,
  shot,
  state,
  userOf,
  viewState,
} from "./browser-kit.js";

describe("the demo serves the client SDK as a browser module", () => {
  it("GET /client.js is an ES module bundle of @whisperchat/client, with no Node built-ins", async () => {
    const demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
    try {
      const r = await fetch(`${demo.url}/client.js`);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toMatch(/javascript/);
      expect(r.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
      const code = await r.text();
      expect(code).toMatch(/export\s*\{[^}]*\bcreateClient\b/);
      expect(code).not.toMatch(/\brequire\(|from "node:/);
      const page = await (await fetch(`${demo.url}/app.js`)).text();
      expect(page).toContain('from "/client.js"');
    } finally {
      await demo.close();
    }
  });
});

describe.skipIf(!hasChromium)("demo page in chromium", { timeout: 90_000 }, () => {
  let browser: Browser;
  let demo: Demo;
  const pages = new Pages(() => browser);

  beforeAll(async () => {
    browser = await launch();
    demo = await startDemo(readConfig({ PORT: "0" }), () => undefined);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  afterEach(async () => {
    expect(await pages.closeAll()).toEqual([]); // no uncaught error in any page
  });

  const open = (viewport = DESKTOP) => pages.open(demo.url, { viewport });

  /** The server side of the WebSocket that opened after `before` was taken. */
  function newSocket(before: Set<WebSocket>): WebSocket {
    const fresh = [...demo.adapter.wss.clients].filter((ws) => !before.has(ws));
    expect(fresh).toHaveLength(1);
    return fresh[0] as WebSocket;
  }

  async function matchedPair(): Promise<{ a: Page; b: Page; aContext: BrowserContext; aSocket: WebSocket }> {
    const before = new Set(demo.adapter.wss.clients);
    const { page: a, context: aContext } = await open(DESKTOP);
    await a.getByTestId("guest").click();
    await state(a, "idle");
    const aSocket = newSocket(before);
    const { page: b } = await open(PHONE);
    await find(a, PARIS, "Ana");
    await joinAsGuest(b, "Ben", NEAR_PARIS);
    await state(a, "matched");
    await state(b, "matched");
    return { a, b, aContext, aSocket };
  }

  it("starts with the choice: guest, sign in or create an account", async () => {
    const { page } = await open(PHONE);
    await state(page, "account");
    await expect.poll(() => page.getByTestId("account-view").isVisible()).toBe(true);
    for (const id of ["guest", "sign-in", "sign-up", "account-name", "account-password"]) {
      expect(await page.getByTestId(id).isVisible(), id).toBe(true);
    }
    // Every input has a label.
    expect(await page.getByLabel("Account name").count()).toBe(1);
    expect(await page.getByLabel("Password").count()).toBe(1);
    await shot(page, "01-account-phone");
  });

  it("two nearby users are matched and chat both ways (desktop and phone)", async () => {
    const { a, b } = await matchedPair();
    await expect.poll(() => a.getByTestId("partner").textContent()).toMatch(/Ben.*within \d+ km/);
    await expect.poll(() => b.getByTestId("partner").textContent()).toMatch(/Ana.*within \d+ km/);
    // The server rounds distances up: an upper bound, never "≈ 2 km away".
    expect(await a.getByTestId("partner").textContent()).not.toMatch(/≈|away/);
    expect(await focused(a)).toBe("message"); // focus moves to the composer

    await a.getByTestId("message-input").pressSequentially("Hel");
    await expect.poll(() => b.getByTestId("typing").isVisible()).toBe(true);
    await say(a, "Hello from Ana");
    await expect.poll(async () => clean(await partnerLines(b))).toEqual(["Hello from Ana"]);
    await say(b, "Hi Ana, Ben here");
    await expect.poll(async () => clean(await partnerLines(a))).toEqual(["Hi Ana, Ben here"]);
    await say(a, "How far are you?");
    await expect
      .poll(async () => clean(await partnerLines(b)))
      .toEqual(["Hello from Ana", "How far are you?"]);

    // The phone layout fits the screen: nothing wider than the viewport.
    expect(await scrollWidth(b)).toBeLessThanOrEqual(PHONE.width);
    await shot(a, "02-chat-desktop");
    await shot(b, "03-chat-phone");
  });

  it("waiting shows how long; Next moves on and the partner sees it; Block asks first and ends the chat", async () => {
    const { a, b } = await matchedPair();
    // Next: A goes back to waiting, B's chat ends.
    await a.getByTestId("next").click();
    await state(a, "waiting");
    await state(b, "ended");
    expect(await b.getByTestId("ended").textContent()).toMatch(/moved on/);
    await expect.poll(() => a.getByTestId("waiting-timer").textContent()).toMatch(/^\d+:\d\d$/);
    await shot(a, "04-waiting-desktop");
    await shot(b, "05-ended-phone");

    // A third user near by is matched with A (B and A are kept apart after a next).
    const { page: c } = await open(PHONE);
    await joinAsGuest(c, "Cleo", ALSO_NEAR_PARIS);
    await state(a, "matched");
    await state(c, "matched");

    // Block needs a confirmation; Cancel (or Escape) keeps the chat.
    await a.getByTestId("block").click();
    await expect.poll(() => a.getByTestId("block-panel").isVisible()).toBe(true);
    expect(await focused(a)).toBe("block-cancel");
    await shot(a, "06-block-confirm-desktop");
    await a.keyboard.press("Escape");
    await expect.poll(() => a.getByTestId("block-panel").isVisible()).toBe(false);
    expect(await focused(a)).toBe("block");
    const blocked: { by: string; blocked: string }[] = [];
    demo.hub.on("blocked", (e) => blocked.push({ by: e.identity.userId, blocked: e.blockedUserId }));
    await a.getByTestId("block").click();
    await a.getByTestId("block-confirm").click();
    await state(a, "waiting");
    await state(c, "ended");

    // Blocked for good: C looks again, both wait, and the server never pairs them.
    await c.getByTestId("find-again").click();
    await state(c, "waiting", "matched");
    await settle(c);
    await settle(a);
    expect(await viewState(a)).toBe("waiting");
    expect(await viewState(c)).toBe("waiting");
    // It was a block (kept for good), not a next (a cooldown): the server recorded it.
    expect(blocked).toEqual([{ by: await userOf(a), blocked: await userOf(c) }]);
    expect(await demo.store.exclusions.excluded(await userOf(a), [await userOf(c)])).toEqual(
      new Set([await userOf(c)]),
    );
    // The page says so, and still does after the next partner: a block outlasts any cooldown.
    await expect
      .poll(() => a.getByTestId("apart").textContent())
      .toMatch(
        /You blocked Cleo, so you two won't be matched again for a day\. Anyone else nearby still can be\.$/,
      );
    await c.getByTestId("cancel").click();
    await state(c, "idle");
    const { page: d } = await open(PHONE);
    await joinAsGuest(d, "Dan", NEAR_PARIS);
    await state(a, "matched");
    await a.getByTestId("next").click();
    await state(a, "waiting");
    await expect
      .poll(() => a.getByTestId("apart").textContent())
      .toMatch(
        /^You just skipped (Ben and )?Dan, .* You blocked Cleo, so you two won't be matched again for a day\. Anyone else nearby still can be\.$/,
      );
  });

  it("after Next the page says why the skipped partner is not found; when the cooldown ends the two meet again", async () => {
    // Someone trying the demo alone, in two tabs: the demo's cooldown is short (here 3 s).
    const short = await startDemo(
      readConfig({ PORT: "0", WHISPER_NEXT_COOLDOWN_MS: "3000" }),
      () => undefined,
    );
    try {
      const { page: a } = await pages.open(short.url, { viewport: DESKTOP });
      const { page: b } = await pages.open(short.url, { viewport: PHONE });
      await joinAsGuest(a, "Ana", PARIS);
      await joinAsGuest(b, "Ben", NEAR_PARIS);
      await state(a, "matched");
      await state(b, "matched");

      await a.getByTestId("next").click();
      await state(a, "waiting");
      await state(b, "ended");
      await expect
        .poll(() => a.getByTestId("apart").textContent())
        .toMatch(/^You just skipped Ben, so you two won't be matched again for [1-3] s\./);
      await b.getByTestId("find-again").click();
      await state(b, "waiting", "matched");
      await expect
        .poll(() => b.getByTestId("apart").textContent())
        .toMatch(/^Ana moved on, so you two won't be matched again for [1-3] s\./);
      await shot(a, "14-skipped-waiting-desktop");
      await shot(b, "15-skipped-by-waiting-phone");

      // The cooldown ends: the server looks again, and the two tabs are matched again.
      await state(a, "matched");
      await state(b, "matched");
      await expect.poll(() => a.getByTestId("partner").textContent()).toMatch(/Ben/);
      expect(await a.getByTestId("apart").isVisible()).toBe(false);
    } finally {
      await short.close();
    }
  });

  it("the page names everyone it is kept apart from, each with the time left, and drops each as its cooldown ends", async () => {
    // Long enough for Ana to skip Ben and then Cleo within Ben's cooldown, even on a busy machine.
    const cooldown = 10_000;
    const short = await startDemo(
      readConfig({ PORT: "0", WHISPER_NEXT_COOLDOWN_MS: String(cooldown) }),
      () => undefined,
    );
    try {
      const { page: a } = await pages.open(short.url, { viewport: DESKTOP });
      const { page: b } = await pages.open(short.url, { viewport: PHONE });
      const { page: c } = await pages.open(short.url, { viewport: PHONE });
      await joinAsGuest(a, "Ana", PARIS);
      await joinAsGuest(b, "Ben", NEAR_PARIS);
      await state(a, "matched");
      await c.getByTestId("guest").click();
      await state(c, "idle");

      // Ana skips Ben (who stops looking), is matched with Cleo and skips her too.
      await a.getByTestId("next").click();
      await state(a, "waiting");
      await state(b, "ended");
      // Two seconds at least between the two skips, so that the two times differ on the page.
      await expect
        .poll(() => a.getByTestId("apart").textContent(), { timeout: 5000 })
        .toMatch(/^You just skipped Ben, so you two won't be matched again for [1-8] s\./);
      await find(c, ALSO_NEAR_PARIS, "Cleo");
      await state(a, "matched");
      await expect.poll(() => a.getByTestId("partner").textContent()).toMatch(/Cleo/);
      await a.getByTestId("next").click();
      await state(a, "waiting");
      const apart = a.getByTestId("apart");
      await expect
        .poll(() => apart.textContent())
        .toMatch(
          /^You just skipped Ben and Cleo, so you won't be matched with them again yet: Ben for [1-8] s more, Cleo for ([1-9]|10) s more\. Anyone else nearby still can be\.$/,
        );
      // Each with its own time left, soonest first: Ben's cooldown began first, so it ends first.
      const [, ben, cleo] =
        /Ben for (\d+) s more, Cleo for (\d+) s more/.exec((await apart.textContent()) ?? "") ?? [];
      expect(Number(ben)).toBeLessThan(Number(cleo));
      await shot(a, "16-skipped-two-waiting-desktop");

      // Ben's cooldown ends: only Cleo is named, with her own time left.
      await expect
        .poll(() => apart.textContent(), { timeout: cooldown + 5000 })
        .toMatch(
          /^You just skipped Cleo, so you two won't be matched again for \d+ s\. Anyone else nearby still can be\.$/,
        );
      // And Ben, looking again, is matched with Ana.
      await b.getByTestId("find-again").click();
      await state(a, "matched");
      await expect.poll(() => a.getByTestId("partner").textContent()).toMatch(/Ben/);
    } finally {
      await short.close();
    }
  });

  it("a guest who skipped someone and then signs in is another user: the page no longer names them", async () => {
    const { a } = await matchedPair();
    await a.getByTestId("next").click();
    await state(a, "waiting");
    await expect.poll(() => a.getByTestId("apart").textContent()).toMatch(/^You just skipped Ben/);
    // Ana stops looking and creates an account (the page signs her in on a new session).
    await a.getByTestId("cancel").click();
    await state(a, "idle");
    await a.getByTestId("account-switch").click();
    await state(a, "account");
    await a.getByTestId("account-name").fill(`Ana${Date.now().toString(36).slice(-5)}`);
    await a.getByTestId("account-password").fill("correct horse battery");
    await a.getByTestId("sign-up").click();
    await state(a, "idle");
    await find(a, PARIS);
    await state(a, "waiting");
    await settle(a);
    // The server does not keep the account from Ben; the page says nothing of him either.
    expect(await a.getByTestId("apart").isVisible()).toBe(false);
    expect(await a.getByTestId("apart").textContent()).not.toMatch(/Ben/);
  });

  it("a page whose connection drops shows it, resumes, and gets what it missed; a reload resumes too", async () => {
    const { a, b, aContext, aSocket } = await matchedPair();
    await say(a, "before the drop");
    await expect.poll(async () => clean(await partnerLines(b))).toEqual(["before the drop"]);

    // The network goes away (no new connections) and the server loses A's connection.
    await aContext.setOffline(true);
    aSocket.terminate();
    await conn(a, "reconnecting");
    await expect.poll(() => a.getByTestId("reconnecting").isVisible()).toBe(true);
    await expect.poll(() => b.getByTestId("partner-away").isVisible()).toBe(true);
    // B writes while A is away; A writes too (kept and sent after the resume).
    await say(b, "did you miss me?");
    await a.getByTestId("message-input").fill("typed while offline");
    await a.getByTestId("message-input").press("Enter");
    expect(await a.locator('.msg-own[data-status="sending"]').count()).toBe(1);
    await shot(a, "07-reconnecting-desktop");
    await shot(b, "08-partner-away-phone");

    await aContext.setOffline(false);
    await conn(a, "open");
    await expect.poll(() => a.getByTestId("reconnecting").isVisible()).toBe(false);
    await expect.poll(async () => clean(await partnerLines(a))).toEqual(["did you miss me?"]);
    await expect
      .poll(async () => clean(await partnerLines(b)))
      .toEqual(["before the drop", "typed while offline"]);
    await expect.poll(() => a.locator('.msg-own[data-status="sent"]').count()).toBe(2);
    await expect.poll(() => b.getByTestId("partner-away").isVisible()).toBe(false);
    expect(await viewState(a)).toBe("matched");
    await shot(a, "09-resumed-desktop");

    // A reload of the tab takes the session back, with the conversation.
    await a.reload();
    await state(a, "matched");
    await conn(a, "open");
    await expect.poll(async () => clean(await partnerLines(a))).toEqual(["did you miss me?"]);
    await say(b, "still there?");
    await expect.poll(async () => clean(await partnerLines(a))).toEqual(["did you miss me?", "still there?"]);
    await say(a, "yes, after a reload");
    await expect
      .poll(async () => clean(await partnerLines(b)))
      .toEqual(["before the drop", "typed while offline", "yes, after a reload"]);
    await shot(a, "10-after-reload-desktop");
  });

  it("sign up, sign in and out, with errors in words and the retry time", async () => {
    const name = `Alice${Date.now().toString(36).slice(-5)}`;
    const { page } = await open(PHONE);
    await state(page, "account");

    // Too short a password: the server's rule, in words.
    await page.getByTestId("account-name").fill(name);
    await page.getByTestId("account-password").fill("short");
    await page.getByTestId("sign-up").click();
    await expect.poll(() => page.getByTestId("account-error").textContent()).toMatch(/password must be/i);

    await page.getByTestId("account-password").fill("correct horse battery");
    await page.getByTestId("sign-up").click();
    await state(page, "idle");
    await expect.poll(() => page.getByTestId("account-bar").textContent()).toContain(`Signed in as ${name}`);
    expect(await page.getByTestId("name").isVisible()).toBe(false); // an account keeps its name
    await shot(page, "11-signed-in-phone");

    // The partner sees the account's name.
    await find(page, PARIS);
    const { page: guest } = await open(DESKTOP);
    await joinAsGuest(guest, "Gus", NEAR_PARIS);
    await state(guest, "matched");
    await expect.poll(() => guest.getByTestId("partner").textContent()).toContain(name);
    await page.getByTestId("leave").click();
    await state(page, "ended");
    await page.getByTestId("change-settings").click();
    await state(page, "idle");

    // Sign out, then: a taken name, a wrong password, then the right one.
    await page.getByTestId("account-switch").click();
    await state(page, "account");
    await page.getByTestId("account-name").fill(name.toLowerCase());
    await page.getByTestId("account-password").fill("whatever at all");
    await page.getByTestId("sign-up").click();
    await expect.poll(() => page.getByTestId("account-error").textContent()).toMatch(/name is taken/i);
    await page.getByTestId("sign-in").click();
    await expect
      .poll(() => page.getByTestId("account-error").textContent())
      .toMatch(/wrong name or password/i);
    await shot(page, "12-wrong-password-phone");
    await page.getByTestId("account-password").fill("correct horse battery");
    await page.getByTestId("account-password").press("Enter"); // Enter signs in
    await state(page, "idle");
    await expect.poll(() => page.getByTestId("account-bar").textContent()).toContain(`Signed in as ${name}`);

    // Guessing: the server slows it down, and the page says how long to wait.
    await page.getByTestId("account-switch").click();
    await state(page, "account");
    await page.getByTestId("account-name").fill(name);
    await page.getByTestId("account-password").fill("not the password");
    const signIn = page.getByTestId("sign-in");
    for (let i = 0; i < 10; i++) {
      await expect.poll(() => signIn.getAttribute("aria-busy")).toBe("false");
      if (/Try again in/.test((await page.getByTestId("account-error").textContent()) ?? "")) break;
      await Promise.all([page.waitForResponse((r) => r.url().endsWith("/auth/login")), signIn.click()]);
    }
    await expect.poll(() => page.getByTestId("account-error").textContent()).toMatch(/Try again in \d+ s/);
    expect(await page.getByTestId("sign-in").isDisabled()).toBe(true);
    await shot(page, "13-rate-limited-phone");
  });
});
