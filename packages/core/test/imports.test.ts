// The shape of the source tree (docs/design.md, "Parts and seams"): no import cycle in any
// package, type-only imports included, and core depends on no transport or store package.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const PACKAGES = join(ROOT, "packages");

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

/** The code without its comments (a `//` inside a string is rare enough in this codebase's imports). */
function withoutComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/** Every module specifier a file imports or re-exports, `import type` and `export type` included. */
export function specifiers(source: string): string[] {
  const code = withoutComments(source);
  const found: string[] = [];
  const pattern = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']/g;
  for (const m of code.matchAll(pattern)) found.push(m[1] as string);
  for (const m of code.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1] as string);
  return found;
}

/** The relative imports of each file, resolved to files. */
function graph(files: string[]): Map<string, string[]> {
  const known = new Set(files);
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const targets: string[] = [];
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
      const candidates = [target, `${target}.ts`, join(target, "index.ts")];
      const hit = candidates.find((c) => known.has(c));
      if (hit !== undefined) targets.push(hit);
    }
    edges.set(file, targets);
  }
  return edges;
}

/** The cycles of a graph, each as a list of files (Tarjan's strongly connected components). */
export function cycles(edges: Map<string, string[]>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, indexOf.get(w) as number));
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(component);
    }
  };
  for (const v of edges.keys()) if (!indexOf.has(v)) visit(v);
  return found;
}

describe("the import graph", () => {
  it("finds cycles, type-only imports included (the check itself)", () => {
    const code = `import type { A } from "./a.js";\nexport { B } from "./b.js";\nimport "./c.js";`;
    expect(specifiers(code)).toEqual(["./a.js", "./b.js", "./c.js"]);
    // An example in a doc comment is not an import.
    expect(specifiers(`/**\n * import { x } from "ws";\n */\n// import "y";\nimport "./z.js";`)).toEqual([
      "./z.js",
    ]);
    const edges = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
      ["d", ["a"]],
    ]);
    expect(cycles(edges).map((c) => c.sort())).toEqual([["a", "b", "c"]]);
    expect(
      cycles(
        new Map([
          ["a", ["b"]],
          ["b", []],
        ]),
      ),
    ).toEqual([]);
  });

  for (const pkg of readdirSync(PACKAGES)) {
    it(`packages/${pkg}/src has no import cycle`, () => {
      const files = sources(join(PACKAGES, pkg, "src"));
      expect(files.length).toBeGreaterThan(0);
      const found = cycles(graph(files)).map((c) => c.map((f) => relative(ROOT, f)).sort());
      expect(found).toEqual([]);
    });
  }

  it("the packages' imports of each other have no cycle, and no package imports itself by name", () => {
    const folderOf = new Map<string, string>();
    for (const pkg of readdirSync(PACKAGES)) {
      const { name } = JSON.parse(readFileSync(join(PACKAGES, pkg, "package.json"), "utf8")) as {
        name: string;
      };
      folderOf.set(name, pkg);
    }
    const edges = new Map<string, string[]>();
    for (const pkg of readdirSync(PACKAGES)) {
      const targets = new Set<string>();
      for (const file of sources(join(PACKAGES, pkg, "src"))) {
        for (const spec of specifiers(readFileSync(file, "utf8"))) {
          // `@scope/name` or `@scope/name/entry`: the package is the first two segments.
          const target = folderOf.get(spec.split("/").slice(0, 2).join("/"));
          if (target !== undefined) targets.add(target);
        }
      }
      edges.set(pkg, [...targets]);
    }
    expect(edges.get("adapter-ws")).toContain("core"); // the graph is read at all
    expect(cycles(edges)).toEqual([]);
  });

  it("core imports no transport, store or client package", () => {
    const offenders: string[] = [];
    for (const file of sources(join(PACKAGES, "core", "src"))) {
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        if (/^@whisperchat\/(?!core\b)|^(ws|socket\.io|ioredis)$/.test(spec))
          offenders.push(`${relative(ROOT, file)} -> ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
