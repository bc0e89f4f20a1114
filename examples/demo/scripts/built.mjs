// The built packages the demo runs on: what is not built yet, or is older than its sources, is
// built first (see start.mjs).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The demo's folder. */
export const demo = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = join(demo, "..", "..");
/** The workspaces dist/main.js runs on, the demo itself included. */
const WORKSPACES = [
  "packages/core",
  "packages/store-memory",
  "packages/store-redis",
  "packages/adapter-ws",
  "packages/adapter-socketio",
  "examples/demo",
];

/** The newest (or oldest) modification time of the files under `path`, tests left out. */
function mtime(path, pick) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let found;
  for (const entry of readdirSync(path)) {
    if (entry === "node_modules" || entry.endsWith(".test.ts")) continue;
    const t = mtime(join(path, entry), pick);
    if (t !== undefined) found = found === undefined ? t : pick(found, t);
  }
  return found;
}

function isStale(workspace) {
  const dir = join(root, workspace);
  const dist = join(dir, "dist");
  if (!existsSync(dist)) return true;
  const built = mtime(dist, Math.min);
  const inputs = ["src", "package.json", "tsup.config.ts"].map((p) => join(dir, p)).filter(existsSync);
  const changed = Math.max(...inputs.map((p) => mtime(p, Math.max) ?? 0));
  return built === undefined || built < changed;
}

/**
 * Builds every workspace the demo runs on that is not built or is older than its sources;
 * returns the path of the built demo. Exits the process when the build fails.
 */
export function buildIfStale() {
  const stale = WORKSPACES.filter(isStale);
  if (stale.length === 0) return join(demo, "dist", "main.js");
  console.error(`whisperchat demo: building ${stale.join(", ")}…`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const args = ["run", "build", ...stale.flatMap((w) => ["--workspace", w])];
  const result = spawnSync(npm, args, { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  if (result.status !== 0) {
    console.error(`whisperchat demo: the build failed (npm ${args.join(" ")}); see above`);
    process.exit(1);
  }
  return join(demo, "dist", "main.js");
}
