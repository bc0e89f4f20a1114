/**
 * Builds a bench process entry into one plain JavaScript file with esbuild (the compiler tsup
 * uses for the packages), so that WhisperChat runs in the benchmark as it ships: compiled once,
 * not transformed at load time. Running the sources through tsx differs from the build: tsx
 * compiles with `keepNames`, which gives every named closure a `name` property of its own
 * (memory per session, and time per closure made).
 *
 * `@whisperchat/*` packages are bundled from their TypeScript sources; every other package stays
 * an import, resolved from `bench/results/tmp/` (git-ignored) like from the bench itself.
 */
import { mkdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "tmp");

/** The results' note on how `processes` ran: the sources through tsx (`fromSource`), or bundled. */
export function howRun(fromSource: boolean, processes: string): string {
  return fromSource
    ? `${processes} ran the TypeScript sources through tsx (--source).`
    : `${processes} ran as JavaScript bundled with esbuild, from the sources of this tree.`;
}

/**
 * Bundles `entry` and resolves the path of the JavaScript file to run with plain `node`; `tag`
 * tells two bundles of the same file name apart (e.g. another checkout's).
 */
export async function bundle(entry: string, tag = ""): Promise<string> {
  mkdirSync(OUT_DIR, { recursive: true });
  const name = `${basename(entry).replace(/\.ts$/, "")}${tag === "" ? "" : `-${tag}`}`;
  const outfile = join(OUT_DIR, `${name}-${process.pid}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["@whisperchat/source"],
    logLevel: "warning",
    plugins: [
      {
        name: "external-dependencies",
        setup(b) {
          // Bare imports other than the workspace's own packages stay imports.
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith("@whisperchat/") ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  return outfile;
}
