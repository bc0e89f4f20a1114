// What the demo's browser tests share: Debian's chromium driven by playwright-core, the page's
// test hooks, the steps a user takes, a TCP proxy that cuts connections, and an axe-core audit.
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { expect } from "vitest";

export const CHROMIUM = "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI) {
  throw new Error(`${CHROMIUM} is missing: CI must install it (apt-get install -y chromium)`);
}
if (!hasChromium) {
  console.warn(`Skipping the demo's browser tests: ${CHROMIUM} is missing (apt-get install -y chromium).`);
}

/** What the page exposes for tests (`window.whisperDemo`), and the DOM bits the tests read. */
interface PageGlobals {
  whisperDemo: {
    state: string;
    conn: string;
    client: { ping(): Promise<unknown>; welcome: { user: { userId: string } } };
  };
  document: { activeElement: { id: string } | null; documentElement: { scrollWidth: number } };
}

export const ARTIFACTS = fileURLToPath(new URL("../../../test-artifacts/browser/", import.meta.url));
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1100, height: 820 };

export const PARIS = { lat: "48.8566", lng: "2.3522" };
export const NEAR_PARIS = { lat: "48.8600", lng: "2.3600" };
export const ALSO_NEAR_PARIS = { lat: "48.8500", lng: "2.3400" };

export type Where = { lat: string; lng: string };

export async function launch(): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/** Opens pages as separate users (each context has its own sessionStorage) and closes them. */
export class Pages {
  readonly errors: Error[] = [];
  private readonly contexts: BrowserContext[] = [];

  constructor(private readonly browser: () => Browser) {}

  /** A fresh browser context on `url`: another user. */
  async open(
    url: string,
    options: {
      viewport?: { width: number; height: number };
      colorScheme?: "light" | "dark";
      /** Only for the accessibility audit, which injects axe-core (see {@link axeViolations}). */
      bypassCSP?: boolean;
    } = {},
  ): Promise<{ page: Page; context: BrowserContext }> {
    const context = await this.browser().newContext({
      viewport: options.viewport ?? DESKTOP,
      colorScheme: options.colorScheme ?? "light",
      reducedMotion: "reduce",
      bypassCSP: options.bypassCSP ?? false,
    });
    this.contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => this.errors.push(error));
    await page.goto(url);
    return { page, context };
  }

  /** Closes every page opened since the last call; resolves the uncaught errors they had. */
  async closeAll(): Promise<Error[]> {
    await Promise.all(this.contexts.splice(0).map((c) => c.close()));
    return this.errors.splice(0);
  }
}

export const shot = (page: Page, name: string) =>
  page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: false });

/** Waits until the page is in one of the given view states. */
export const state = (page: Page, ...states: string[]) =>
  page.waitForFunction(
    (want) => want.includes((globalThis as unknown as PageGlobals).whisperDemo.state),
    states,
  );
export const viewState = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).whisperDemo.state);
export const focused = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id);
/** A ping from the page's client: when it is answered, the server has handled everything sent before. */
export const settle = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).whisperDemo.client.ping().then(() => undefined));
/** Waits until the page's client is in the given connection state. */
export const conn = (page: Page, s: string) =>
  page.waitForFunction((want) => (globalThis as unknown as PageGlobals).whisperDemo.conn === want, s);
export const userOf = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).whisperDemo.client.welcome.user.userId);
export const scrollWidth = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth);

/** Guest → setup form → waiting. */
export async function joinAsGuest(page: Page, name: string, where: Where): Promise<void> {
  await page.getByTestId("guest").click();
  await state(page, "idle");
  await find(page, where, name);
}

export async function find(page: Page, where: Where, name?: string): Promise<void> {
  if (name !== undefined) await page.getByTestId("name").fill(name);
  await page.getByTestId("lat").fill(where.lat);
  await page.getByTestId("lng").fill(where.lng);
  await page.getByTestId("range").fill("10");
  await page.getByTestId("find").click();
  await state(page, "waiting", "matched"); // a partner may be there already
}

export async function say(page: Page, text: string): Promise<void> {
  await page.getByTestId("message-input").fill(text);
  await page.getByTestId("message-input").press("Enter");
  await expect.poll(() => page.locator('.msg-own[data-status="sent"]', { hasText: text }).count()).toBe(1);
}

export const partnerLines = (page: Page) => page.locator(".msg-partner .bubble").allTextContents();
export const clean = (lines: string[]) => lines.map((l) => l.replace(/^.*?: /, ""));

/**
 * A TCP proxy in front of the demo, for one user's page: the page is opened on `url`, so its
 * HTTP requests and its WebSocket go through the proxy, which can cut them as a network would.
 */
export interface TcpProxy {
  /** `http://127.0.0.1:<port>`: open the page here. */
  readonly url: string;
  /**
   * The network goes away: every open connection is cut on the page's side and new ones are
   * refused until {@link TcpProxy.online}. With `serverNotices: false` the server's side of each
   * connection stays open (as when a network dies without a FIN), and whatever the server writes
   * to it is lost, until {@link TcpProxy.serverNotices}.
   */
  offline(options?: { serverNotices?: boolean }): void;
  /** The server's side of the connections cut by `offline({ serverNotices: false })` closes too. */
  serverNotices(): void;
  /** New connections are let through again. */
  online(): void;
  close(): Promise<void>;
}

export async function tcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  let refusing = false;
  const links = new Set<{ client: Socket; upstream: Socket }>();
  const halfOpen = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(Number(port), hostname);
    const link = { client, upstream };
    links.add(link);
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      if (!client.destroyed) client.write(d);
    });
    const end = () => {
      links.delete(link);
      client.destroy();
      if (!halfOpen.has(upstream)) upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", () => {
      halfOpen.delete(upstream);
      end();
    });
    client.on("error", () => undefined);
    upstream.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    offline({ serverNotices = true } = {}) {
      refusing = true;
      for (const link of [...links]) {
        if (!serverNotices) halfOpen.add(link.upstream);
        link.client.destroy();
      }
    },
    serverNotices() {
      for (const upstream of [...halfOpen]) {
        halfOpen.delete(upstream);
        upstream.destroy();
      }
    },
    online() {
      refusing = false;
    },
    async close() {
      refusing = true;
      for (const { client, upstream } of links) {
        client.destroy();
        upstream.destroy();
      }
      for (const upstream of halfOpen) upstream.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------------------------------
// Accessibility: axe-core, run inside the page

interface AxeNode {
  target: string[];
  failureSummary?: string;
}
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: AxeNode[];
}
interface AxeGlobals {
  axe: {
    run(
      context: unknown,
      options: { runOnly: { type: "tag"; values: string[] }; resultTypes: string[] },
    ): Promise<{ violations: AxeViolation[] }>;
  };
  document: unknown;
}

let axeSource: Promise<string> | undefined;

/**
 * Runs axe-core on the page as it is now, against WCAG 2.1 A and AA and axe's best practices,
 * and resolves every violation, of any impact, as "rule (impact): selector: why". The page's
 * CSP allows no inline script, so contexts audited this way are made with `bypassCSP: true`.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  axeSource ??= readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  const loaded = await page.evaluate(() => "axe" in globalThis);
  if (!loaded) await page.addScriptTag({ content: await axeSource });
  const violations = await page.evaluate(async () => {
    const g = globalThis as unknown as AxeGlobals;
    const result = await g.axe.run(g.document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
      resultTypes: ["violations"],
    });
    return result.violations;
  });
  return violations.flatMap((v) =>
    v.nodes.map(
      (n) => `${v.id} (${v.impact ?? "?"}): ${n.target.join(" ")}: ${(n.failureSummary ?? v.help).trim()}`,
    ),
  );
}
