// The packages as a consumer gets them: `npm pack` of the six packages, installed into apps
// outside the workspace with only the packages each app imports, type-checked (nodenext and
// bundler, library types included), then run. The apps: the README's quickstart (which is
// examples/quickstart), examples/express as it is, and a Socket.IO app on the oldest socket.io
// the adapter claims. Fixture sources are in ./packaging/.
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FIXTURES = fileURLToPath(new URL("./packaging/", import.meta.url));
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const PACKAGES = ["core", "adapter-ws", "adapter-socketio", "store-memory", "store-redis", "client"] as const;
type PackageFolder = (typeof PACKAGES)[number];
const JWT_SECRET = "packaging-test-secret-of-32-bytes!";
/**
 * The time given to a step that runs npm or tsc: two tsc runs over the packages' types take
 * about 30 s on an idle 2-core machine, and more than 60 s when other jobs share its cores.
 */
const SLOW_MS = 300_000;

/** The environment of every child: nothing of the npm script this test may run under. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== "INIT_CWD" && key !== "NODE_OPTIONS") env[key] = value;
  }
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  cwd: string,
  env = childEnv(),
  timeoutMs = SLOW_MS,
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs a command that must succeed; its output is in the error otherwise. */
async function ok(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await run(command, args, cwd, env);
  if (result.code !== 0) {
    throw new Error(
      `${[command, ...args].join(" ")} (in ${cwd}) exited with ${result.code}:\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

const npm = (args: string[], cwd: string): Promise<string> => ok("npm", args, cwd);
const node = (args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<string> =>
  ok(process.execPath, args, cwd, env);

/** Why this test cannot run here, if it cannot: no npm, or no registry to install from. */
function unavailable(): string | undefined {
  const version = spawnSync("npm", ["--version"], { env: childEnv(), encoding: "utf8" });
  if (version.status !== 0)
    return `npm is not available (${version.error?.message ?? version.stderr.trim()})`;
  const ping = spawnSync("npm", ["ping"], { env: childEnv(), encoding: "utf8", timeout: 15_000 });
  if (ping.status !== 0)
    return `the npm registry is not reachable (${ping.error?.message ?? ping.stderr.trim()})`;
  return undefined;
}

const reason = unavailable();
if (reason !== undefined) {
  if (process.env.CI) throw new Error(`${reason}: the packaging test must run under CI`);
  console.warn(`${reason}: skipping the packaging test`);
}

interface Manifest {
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function readManifest(path: string): Manifest {
  return JSON.parse(readFileSync(path, "utf8")) as Manifest;
}

/** A range the workspace declares, e.g. the `ws` the adapter depends on. */
function declared(
  folder: PackageFolder | "root",
  field: "dependencies" | "devDependencies" | "peerDependencies",
  name: string,
): string {
  const range = readManifest(join(ROOT, folder === "root" ? "" : `packages/${folder}`, "package.json"))[
    field
  ]?.[name];
  if (range === undefined) throw new Error(`${folder}'s package.json has no ${field}.${name}`);
  return range;
}

/** The oldest version a `^x.y.z` range claims. */
function oldest(range: string): string {
  const match = /^\^(\d+\.\d+\.\d+)$/.exec(range);
  if (match?.[1] === undefined) throw new Error(`expected a ^x.y.z range, got ${range}`);
  return match[1];
}

/** The newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

/** Builds the packages whose `dist` is missing or older than their sources. */
async function buildWhereNeeded(): Promise<void> {
  for (const folder of PACKAGES) {
    const dir = join(ROOT, "packages", folder);
    const built = join(dir, "dist/index.js");
    if (existsSync(built) && statSync(built).mtimeMs >= newest(join(dir, "src"))) continue;
    console.warn(
      `packaging test: building @whisperchat/${folder} (its dist is missing or older than its sources)`,
    );
    await npm(["run", "build", "--workspace", `packages/${folder}`], ROOT);
  }
}

/** The first TypeScript block of the root README's "Mount it on your server" section. */
function readmeQuickstart(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("Mount it on your server"));
  const block = section === undefined ? undefined : /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined)
    throw new Error('README.md has no TypeScript block under "## Mount it on your server"');
  return block;
}

/** The app's tsconfig for nodenext, which also builds it, and the one for bundlers. */
const TSCONFIGS = {
  "tsconfig.json": {
    compilerOptions: {
      module: "nodenext",
      moduleResolution: "nodenext",
      strict: true,
      skipLibCheck: false,
      target: "es2022",
      types: ["node"],
      outDir: "build",
    },
    include: ["*.ts", "*.cts"],
  },
  // `import x = require()` (the .cts file) exists only for CommonJS output, not for bundlers.
  "tsconfig.bundler.json": {
    extends: "./tsconfig.json",
    compilerOptions: { module: "esnext", moduleResolution: "bundler", noEmit: true },
    include: ["*.ts"],
  },
};

/**
 * CommonJS consumers: `require()` of the ES modules, which Node 20.19+ loads synchronously and
 * TypeScript 5.8+ types under `--module nodenext`. Kept here rather than in ./packaging/ because
 * the workspace's own tsconfig (bundler resolution) cannot compile `import x = require()`.
 */
const REQUIRE_CTS = `import core = require("@whisperchat/core");
import adapter = require("@whisperchat/adapter-ws");
import store = require("@whisperchat/store-memory");
import client = require("@whisperchat/client");

console.log(
  JSON.stringify({
    createWhisper: typeof core.createWhisper,
    attachWebSocket: typeof adapter.attachWebSocket,
    createMemoryStore: typeof store.createMemoryStore,
    createClient: typeof client.createClient,
  }),
);
`;

/** What an app installs: packed packages (folder to tarball) and third-party ones (name to range). */
interface AppDependencies {
  packed: Partial<Record<PackageFolder, string>>;
  thirdParty: Record<string, string>;
}

/**
 * Creates the app `dir` with these dependencies, installs them and copies in the files of the
 * fixture folder of the same name (./packaging/<name>/).
 */
async function createApp(
  dir: string,
  { packed, thirdParty }: AppDependencies,
  files: string[],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const dependencies: Record<string, string> = { ...thirdParty };
  for (const [folder, file] of Object.entries(packed))
    dependencies[`@whisperchat/${folder}`] = `file:${file}`;
  const pkg = {
    name: "consumer-app",
    private: true,
    type: "module",
    dependencies,
    devDependencies: { "@types/node": declared("root", "devDependencies", "@types/node") },
  };
  await writeFile(join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  for (const [name, config] of Object.entries(TSCONFIGS)) {
    await writeFile(join(dir, name), `${JSON.stringify(config, null, 2)}\n`);
  }
  const fixtures = join(FIXTURES, basename(dir));
  for (const file of files) await copyFile(join(fixtures, file), join(dir, file));
  await npm(["install", "--prefer-offline", "--no-audit", "--no-fund", "--no-package-lock"], dir);
}

/** Compiles the app to ./build without type-checking it: the tests below check the types. */
async function compile(dir: string): Promise<void> {
  await node([TSC, "-p", "tsconfig.json", "--noCheck"], dir);
}

/** Type-checks the app with nodenext and with bundler resolution, the packages' .d.ts included. */
async function typeCheck(dir: string): Promise<void> {
  await node([TSC, "-p", "tsconfig.json", "--noEmit"], dir);
  await node([TSC, "-p", "tsconfig.bundler.json"], dir);
}

/** arethetypeswrong's problems with a tarball, but that CommonJS `require` gets ESM types. */
async function typeProblems(file: string): Promise<string> {
  const attw = join(ROOT, "node_modules/@arethetypeswrong/cli/dist/index.js");
  const result = await run(
    process.execPath,
    [attw, file, "--ignore-rules", "cjs-resolves-to-esm", "--format", "table-flipped", "--no-color"],
    ROOT,
  );
  return result.code === 0 ? "" : `${result.stdout}${result.stderr}`;
}

/** Starts `build/server.js` on a free port; resolves with the port it printed. */
function startServer(dir: string, children: ChildProcess[]): Promise<number> {
  const child = spawn(process.execPath, ["build/server.js"], {
    cwd: dir,
    env: childEnv({ PORT: "0", JWT_SECRET }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  return new Promise((resolve, reject) => {
    const collect = (chunk: Buffer): void => {
      output += chunk.toString();
      const port = /localhost:(\d+)/.exec(output)?.[1];
      if (port !== undefined) resolve(Number(port));
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("exit", (code) =>
      reject(new Error(`the server exited with ${code} before listening:\n${output}`)),
    );
  });
}

const installed = (dir: string, name: string): boolean =>
  existsSync(join(dir, "node_modules", name, "package.json"));

describe.skipIf(reason !== undefined)(
  "the packed packages, installed into an app outside the workspace",
  () => {
    let temp = "";
    const tarballs = new Map<PackageFolder, string>();
    const children: ChildProcess[] = [];
    /** The tarballs of these packages. */
    const packs = (...folders: PackageFolder[]): Partial<Record<PackageFolder, string>> =>
      Object.fromEntries(folders.map((folder) => [folder, tarballs.get(folder)]));

    beforeAll(async () => {
      temp = await mkdtemp(join(tmpdir(), "whisperchat-packaging-"));
      await buildWhereNeeded();
      const destination = join(temp, "tarballs");
      await mkdir(destination);
      const workspaces = PACKAGES.flatMap((folder) => ["--workspace", `packages/${folder}`]);
      const packed = JSON.parse(
        await npm(["pack", "--json", "--pack-destination", destination, ...workspaces], ROOT),
      ) as { name: string; filename: string; files: { path: string }[] }[];
      for (const entry of packed) {
        const folder = PACKAGES.find((f) => entry.name === `@whisperchat/${f}`);
        if (folder === undefined) throw new Error(`npm pack made an unexpected package: ${entry.name}`);
        tarballs.set(folder, join(destination, entry.filename));
        expect(entry.files.map((f) => f.path)).toEqual(
          expect.arrayContaining(["LICENSE", "README.md", "dist/index.js"]),
        );
      }
      expect([...tarballs.keys()].sort()).toEqual([...PACKAGES].sort());
    }, SLOW_MS);

    afterAll(async () => {
      for (const child of children) child.kill();
      if (temp !== "") await rm(temp, { recursive: true, force: true });
    });

    it(
      "are typed right for ESM, bundlers and node10 (arethetypeswrong; CommonJS require gets ESM types)",
      async () => {
        const problems = await Promise.all([...tarballs.values()].map(typeProblems));
        expect(problems.filter((p) => p !== "")).toEqual([]);
      },
      SLOW_MS,
    );

    describe("the README's quickstart on ws, with two @whisperchat/client clients", () => {
      const app = (): string => join(temp, "ws-app");

      beforeAll(async () => {
        const packed = packs("core", "adapter-ws", "store-memory", "client");
        const thirdParty = { ws: declared("adapter-ws", "dependencies", "ws") };
        await createApp(app(), { packed, thirdParty }, ["chat.ts", "peers.mjs"]);
        await writeFile(join(app(), "server.ts"), readmeQuickstart());
        await writeFile(join(app(), "require.cts"), REQUIRE_CTS);
        await compile(app());
      }, SLOW_MS);

      it(
        "type-checks with nodenext and with bundler resolution, the packages' own types included (and CommonJS)",
        async () => {
          await typeCheck(app());
        },
        SLOW_MS,
      );

      it("runs: two clients near each other are matched and chat", async () => {
        const port = await startServer(app(), children);
        const out = await node(["build/chat.js", `ws://127.0.0.1:${port}/whisper`], app());
        expect(JSON.parse(out)).toEqual({
          anaMetWith: "Ben",
          benMetWith: "Ana",
          heard: ["hello from Ana", "hello from Ben"],
        });
      }, 60_000);

      it("works from CommonJS: require() of every package it installed", async () => {
        const out = await node(["build/require.cjs"], app());
        expect(JSON.parse(out)).toEqual({
          createWhisper: "function",
          attachWebSocket: "function",
          createMemoryStore: "function",
          createClient: "function",
        });
      });

      it("installs and loads no argon2 nor jose; the auth entries name the peer they miss", async () => {
        expect(installed(app(), "@node-rs/argon2")).toBe(false);
        expect(installed(app(), "jose")).toBe(false);
        const out = JSON.parse(await node(["peers.mjs"], app())) as {
          createWhisper: string;
          errors: Record<string, { code: string; message: string } | null>;
        };
        expect(out.createWhisper).toBe("function");
        expect(out.errors["@whisperchat/core/auth"]).toMatchObject({
          code: "ERR_MODULE_NOT_FOUND",
          message: expect.stringMatching(/Cannot find package '(@node-rs\/argon2|jose)'/),
        });
        expect(out.errors["@whisperchat/core/jwt"]).toMatchObject({
          code: "ERR_MODULE_NOT_FOUND",
          message: expect.stringContaining("Cannot find package 'jose'"),
        });
      });
    });

    describe("examples/express as it is, on the packed packages, with two @whisperchat/client clients", () => {
      const app = (): string => join(temp, "express-app");
      const example = join(ROOT, "examples/express");

      beforeAll(async () => {
        const manifest = readManifest(join(example, "package.json"));
        const range = (name: string): string => {
          const found = manifest.dependencies?.[name] ?? manifest.devDependencies?.[name];
          if (found === undefined) throw new Error(`examples/express/package.json has no ${name}`);
          return found;
        };
        // What the example imports (its sources) and what its test talks with (client, ws).
        const packed = packs("core", "adapter-ws", "store-memory", "client");
        const thirdParty = {
          express: range("express"),
          ws: range("ws"),
          "@types/express": declared("root", "devDependencies", "@types/express"),
        };
        await createApp(app(), { packed, thirdParty }, []);
        for (const file of ["app.ts", "server.ts"])
          await copyFile(join(example, "src", file), join(app(), file));
        await copyFile(join(FIXTURES, "ws-app", "chat.ts"), join(app(), "chat.ts"));
        await compile(app());
      }, SLOW_MS);

      it(
        "type-checks with nodenext and with bundler resolution, the packages' own types included",
        async () => {
          await typeCheck(app());
        },
        SLOW_MS,
      );

      it("runs: the app's own route answers, and two clients near each other are matched and chat", async () => {
        const port = await startServer(app(), children);
        const hello = await fetch(`http://127.0.0.1:${port}/api/hello`);
        expect(await hello.json()).toEqual({ hello: "world" });
        const out = await node(["build/chat.js", `ws://127.0.0.1:${port}/whisper`], app());
        expect(JSON.parse(out)).toEqual({
          anaMetWith: "Ben",
          benMetWith: "Ana",
          heard: ["hello from Ana", "hello from Ben"],
        });
      }, 60_000);
    });

    describe("on the app's own Socket.IO server, the oldest socket.io the adapter claims, with JWTs", () => {
      const app = (): string => join(temp, "socketio-app");
      const socketIo = oldest(declared("adapter-socketio", "peerDependencies", "socket.io"));

      beforeAll(async () => {
        const packed = packs("core", "adapter-socketio", "store-memory");
        const thirdParty = {
          "socket.io": socketIo,
          "socket.io-client": socketIo,
          jose: declared("core", "peerDependencies", "jose"),
        };
        await createApp(app(), { packed, thirdParty }, ["server.ts", "chat.ts"]);
        await compile(app());
      }, SLOW_MS);

      it("has one socket.io, the app's, and no argon2", () => {
        expect(readManifest(join(app(), "node_modules/socket.io/package.json")).version).toBe(socketIo);
        expect(installed(join(app(), "node_modules/@whisperchat/adapter-socketio"), "socket.io")).toBe(false);
        expect(installed(app(), "@node-rs/argon2")).toBe(false);
      });

      it(
        "type-checks attachSocketIo(hub, { io }) with nodenext and with bundler resolution",
        async () => {
          await typeCheck(app());
        },
        SLOW_MS,
      );

      it("runs: two users with tokens from @whisperchat/core/jwt are matched and chat", async () => {
        const port = await startServer(app(), children);
        const out = await node(
          ["build/chat.js", `http://127.0.0.1:${port}`],
          app(),
          childEnv({ JWT_SECRET }),
        );
        expect(JSON.parse(out)).toMatchObject({
          joined: [{ ok: true }, { ok: true }],
          sent: { ok: true },
          anaMetWith: "Ben",
          benMetWith: "Ana",
          heard: "hello from Ana",
        });
      }, 60_000);
    });
  },
);
