/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as written by `node --cpu-prof`): the functions
 * with the most self time, and the packages the time goes to.
 *
 *   node bench/lib/profile-top.ts <file.cpuprofile | folder> [count]
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const target = process.argv[2];
const count = Number(process.argv[3] ?? 25);
if (target === undefined) {
  process.stderr.write("usage: profile-top <file.cpuprofile | folder> [count]\n");
  process.exit(2);
}
const files = statSync(target).isDirectory()
  ? readdirSync(target)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => join(target, f))
  : [target];

const self = new Map<string, number>();
const byPackage = new Map<string, number>();
let total = 0;

/**
 * For an esbuild bundle: the source module of each line, from the `// path/to/module.ts`
 * comments esbuild puts before each module's code.
 */
const bundles = new Map<string, string[] | null>();
function moduleAt(url: string, line: number): string | undefined {
  if (!url.startsWith("file://") || !url.endsWith(".mjs")) return undefined;
  let map = bundles.get(url);
  if (map === undefined) {
    map = null;
    try {
      const lines = readFileSync(fileURLToPath(url), "utf8").split("\n");
      let current = "(bundle)";
      map = lines.map((l) => {
        const m = /^\/\/ (\S+\.(?:ts|js|mjs|cjs))$/.exec(l);
        if (m) current = m[1]!;
        return current;
      });
    } catch {
      // the bundle is gone: no mapping
    }
    bundles.set(url, map);
  }
  // V8 gives the line a function starts on: 0 is a module's top level, which has no comment.
  if (line === 0) return "(top level of the entry)";
  return map?.[line] ?? undefined;
}

/** Where a script belongs: a workspace package, a dependency, or Node itself. */
function packageOf(url: string): string {
  if (url === "") return "(native / V8)";
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return dep[1]!;
  const ws = /(?:^|\/)packages\/([^/]+)\//.exec(url);
  if (ws) return `@whisperchat/${ws[1]}`;
  if (url.startsWith("node:")) return "node (core modules)";
  return url.replace(/^file:\/\//, "");
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const { functionName, lineNumber } = node.callFrame;
    const url = moduleAt(node.callFrame.url, lineNumber) ?? node.callFrame.url;
    const where = url === "" ? "" : ` ${url.replace(/^.*\/(node_modules|packages)\//, "")}`;
    const key = `${functionName || "(anonymous)"}${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const pkg = functionName === "(idle)" ? "(idle)" : packageOf(url);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + dt);
    total += dt;
  }
}

const idle = self.get("(idle)") ?? 0;
const busy = total - idle;
const pct = (us: number) => `${((us * 100) / busy).toFixed(1).padStart(5)}%`;
process.stdout.write(`${files.length} profile(s), ${(busy / 1e6).toFixed(2)} s busy (idle left out)\n\n`);
process.stdout.write("self time by package:\n");
for (const [pkg, us] of [...byPackage]
  .filter(([k]) => k !== "(idle)")
  .sort((a, b) => b[1] - a[1])
  .slice(0, 15)) {
  process.stdout.write(`  ${pct(us)}  ${pkg}\n`);
}
process.stdout.write("\ntop functions by self time:\n");
for (const [key, us] of [...self]
  .filter(([k]) => k !== "(idle)")
  .sort((a, b) => b[1] - a[1])
  .slice(0, count)) {
  process.stdout.write(`  ${pct(us)}  ${key}\n`);
}
