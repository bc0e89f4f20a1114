/**
 * Turns benchmark results into the markdown summary table and the SVG chart.
 */
import type { BenchResults, ResultRow } from "./results.js";

/** How one benchmark script fared in a harness run. */
export interface ScriptStatus {
  name: string;
  /** `ok`, or what went wrong. */
  status: "ok" | "missing" | "failed" | "no results" | "not run";
  detail?: string;
  seconds?: number;
}

/** A results file and whether it comes from the current run. */
export interface LoadedResults {
  results: BenchResults;
  current: boolean;
}

function grouped(n: number, digits: number): string {
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A figure with its unit, rounded for reading. */
export function formatValue(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  if (unit === "bytes") {
    if (abs >= 1024 * 1024) return `${grouped(value / (1024 * 1024), 1)} MiB`;
    if (abs >= 1024) return `${grouped(value / 1024, 1)} KiB`;
    return `${grouped(value, 0)} B`;
  }
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return `${grouped(value, digits)} ${unit}`;
}

export function formatRatio(ratio: number | null): string {
  return ratio === null ? "n/a" : `${ratio.toFixed(2)}x`;
}

export function formatTarget(row: ResultRow): string {
  if (row.target === undefined) return "";
  return `${row.target.op === ">=" ? "≥" : "≤"} ${row.target.ratio}x`;
}

function metCell(row: ResultRow): string {
  if (row.target === undefined) return "";
  if (row.met === undefined) return "n/a";
  return row.met ? "yes" : "**no**";
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** The table of every row, one bold line per benchmark, and a footnote for older results. */
export function summaryTable(loaded: LoadedResults[]): string[] {
  const lines: string[] = [];
  lines.push(
    "| group | metric | ours | baseline | ratio | target | met |",
    "|---|---|---:|---:|---:|---|---|",
  );
  let earlier = false;
  for (const { results, current } of loaded) {
    const mark = current ? "" : " *";
    if (!current) earlier = true;
    lines.push(`| **${cell(results.name)}**${mark}${results.quick ? " (quick)" : ""} | | | | | | |`);
    for (const r of results.rows) {
      lines.push(
        `| ${cell(r.group)} | ${cell(r.metric)} | ${formatValue(r.ours, r.unit)} | ` +
          `${formatValue(r.baseline, r.unit)} (${cell(r.baselineName)}) | ${formatRatio(r.ratio)} | ${formatTarget(r)} | ${metCell(r)} |`,
      );
    }
  }
  if (earlier)
    lines.push("", "\\* from an earlier run (the script was not run, or did not write results, this time).");
  return lines;
}

/** The markdown summary: status of each script, one table of every row, the notes. */
export function summaryMarkdown(
  loaded: LoadedResults[],
  scripts: ScriptStatus[],
  info: { quick: boolean; date: string; cpus: number; cpuModel?: string; node: string },
): string {
  const lines: string[] = [];
  lines.push("# Benchmark summary", "");
  lines.push(
    `${info.quick ? "Quick run" : "Full run"} of ${info.date}, Node ${info.node}, ${info.cpus} CPU${info.cpus === 1 ? "" : "s"}` +
      `${info.cpuModel ? ` (${info.cpuModel})` : ""}. Every ratio is ours / baseline, both measured in the same run; ` +
      "for latency, memory and CPU a lower figure is better. ![chart](chart.svg)",
    "",
  );
  lines.push(...summaryTable(loaded));
  lines.push("", "## Scripts", "");
  for (const s of scripts) {
    const time = s.seconds === undefined ? "" : ` (${s.seconds.toFixed(1)} s)`;
    lines.push(`- \`${s.name}\`: ${s.status}${time}${s.detail ? `: ${s.detail}` : ""}`);
  }
  const withNotes = loaded.filter((l) => (l.results.notes?.length ?? 0) > 0);
  if (withNotes.length > 0) {
    lines.push("", "## Notes");
    for (const { results } of withNotes) {
      lines.push("", `**${results.name}**${results.quick ? " (quick)" : ""}, ${results.date}:`, "");
      for (const n of results.notes ?? []) lines.push(`- ${n}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * A horizontal bar chart of every row with a target, one section per benchmark: one bar per
 * ratio, the target marked on it, green when met and red when missed. Hand-written SVG.
 */
export function chartSvg(sections: { name: string; rows: ResultRow[] }[], title: string): string {
  type Line = { kind: "head"; name: string } | { kind: "bar"; row: ResultRow };
  const lines: Line[] = [];
  for (const section of sections) {
    const bars = section.rows.filter((r) => r.target !== undefined);
    if (bars.length === 0) continue;
    lines.push({ kind: "head", name: section.name });
    for (const row of bars) lines.push({ kind: "bar", row });
  }
  const bars = lines.flatMap((l) => (l.kind === "bar" ? [l.row] : []));
  const labelW = 540;
  const plotW = 320;
  const valueW = 190;
  const rowH = 24;
  const top = 50;
  const width = labelW + plotW + valueW;
  const axisY = top + Math.max(1, lines.length) * rowH + 4;
  const height = axisY + 58;
  const finite = bars.map((r) => r.ratio ?? 0).filter(Number.isFinite);
  const wanted = Math.max(
    2,
    ...finite.map((r) => r * 1.05),
    ...bars.map((r) => (r.target?.ratio ?? 0) * 1.15),
  );
  const max = Math.min(4, Math.ceil(wanted * 2) / 2);
  const x = (ratio: number) => labelW + (Math.min(ratio, max) / max) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="28" font-size="16" font-weight="600" fill="#1a1a1a">${esc(title)}</text>`,
  );
  for (let t = 0; t <= max + 1e-9; t += 0.5) {
    const gx = x(t).toFixed(1);
    const strong = Math.abs(t - 1) < 1e-9;
    out.push(
      `<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${axisY}" stroke="${strong ? "#888" : "#e6e6e6"}"` +
        `${strong ? ' stroke-dasharray="4 3"' : ""}/>`,
      `<text x="${gx}" y="${axisY + 15}" text-anchor="middle" fill="#555">${t.toFixed(1)}x</text>`,
    );
  }
  lines.forEach((line, i) => {
    const y = top + i * rowH;
    if (line.kind === "head") {
      out.push(`<text x="16" y="${y + 16}" font-weight="600" fill="#1a1a1a">${esc(line.name)}</text>`);
      return;
    }
    const r = line.row;
    const label = `${r.group} · ${r.metric} ${r.higherIsBetter ? "↑" : "↓"}`;
    out.push(`<text x="${labelW - 10}" y="${y + 16}" text-anchor="end" fill="#1a1a1a">${esc(label)}</text>`);
    const color = r.met === undefined ? "#9e9e9e" : r.met ? "#2e7d32" : "#c62828";
    if (r.ratio !== null) {
      const w = Math.max(1, x(r.ratio) - labelW);
      out.push(
        `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" rx="2" fill="${color}"/>`,
      );
      if (r.ratio > max) {
        out.push(`<text x="${labelW + plotW - 4}" y="${y + 16}" text-anchor="end" fill="#fff">»</text>`);
      }
    }
    if (r.target !== undefined) {
      const tx = x(r.target.ratio).toFixed(1);
      out.push(
        `<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#111" stroke-width="2.5"/>`,
      );
    }
    const value = `${formatRatio(r.ratio)} · target ${formatTarget(r)}`;
    out.push(`<text x="${labelW + plotW + 10}" y="${y + 16}" fill="#1a1a1a">${esc(value)}</text>`);
  });
  out.push(
    `<text x="16" y="${axisY + 42}" fill="#333">${esc(
      "Ratios are ours / baseline, measured in the same run. Black tick: the target; green: met, red: missed, grey: not measured. " +
        "↑ higher is better, ↓ lower is better.",
    )}</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}
