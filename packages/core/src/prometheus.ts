import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { WhisperHub } from "./hub.js";

/** Options of {@link prometheusMetrics}. */
export interface PrometheusOptions {
  /** The registry to register on: pass your app's own to serve one `/metrics`. @default a new Registry */
  registry?: Registry;
  /** Prefix of every metric name. @default "whisperchat_" */
  prefix?: string;
  /** Labels added to every metric, e.g. `{ node: "eu-1" }`. @default none */
  labels?: Record<string, string>;
  /**
   * Store latency (`store_operation_seconds`) times one call in this many per operation: timing
   * every call costs a clock read and a promise reaction on the relay's hot path. Its `_count`
   * is then the number of timed calls. `1` times every call. @default 16
   */
  storeLatencySampleEvery?: number;
}

/** The metrics of one hub, registered on a prom-client registry. */
export interface PrometheusMetrics {
  /** Where the metrics are registered. */
  readonly registry: Registry;
  /** The Prometheus text format, for a `/metrics` route. */
  metrics(): Promise<string>;
  /** The `Content-Type` of {@link PrometheusMetrics.metrics}. */
  readonly contentType: string;
  /** Stops observing the hub and removes the metrics from the registry. */
  close(): void;
}

/**
 * Observes a hub with prom-client: sessions by state, waiting pool size, matches, time to
 * match, messages, rate-limited actions by kind, errors by code, resumes, refused handshakes
 * and store latency. `prom-client` is an optional peer dependency: install it to use this.
 *
 * ```ts
 * import { prometheusMetrics } from "@whisperchat/core/prometheus";
 * const metrics = prometheusMetrics(hub, { registry: myRegistry });
 * app.get("/metrics", async (_req, res) => res.type(metrics.contentType).send(await metrics.metrics()));
 * ```
 */
export function prometheusMetrics(hub: WhisperHub, options: PrometheusOptions = {}): PrometheusMetrics {
  const registry = options.registry ?? new Registry();
  const p = options.prefix ?? "whisperchat_";
  const base = options.labels ?? {};
  const baseNames = Object.keys(base);
  const registers = [registry];

  new Gauge({
    name: `${p}sessions`,
    help: "Open sessions on this node, by state (idle, waiting, room, away).",
    labelNames: [...baseNames, "state"],
    registers,
    collect() {
      for (const [state, n] of Object.entries(hub.localCounts())) this.set({ ...base, state }, n);
    },
  });
  new Gauge({
    name: `${p}pool_waiting`,
    help: "Sessions waiting in the pool, on every node sharing the store.",
    labelNames: baseNames,
    registers,
    async collect() {
      this.set(base, await hub.store.pool.size());
    },
  });
  const matches = new Counter({
    name: `${p}matches_total`,
    help: "Pairs matched by this node.",
    labelNames: baseNames,
    registers,
  });
  const timeToMatch = new Histogram({
    name: `${p}time_to_match_seconds`,
    help: "How long each matched session had waited in the pool.",
    labelNames: baseNames,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers,
  });
  // Messages, refusals and errors are counted by the hub anyway: read on scrape, they cost
  // nothing per message (no event, no label hashing on the relay's hot path).
  new Counter({
    name: `${p}messages_total`,
    help: "Chat messages relayed.",
    labelNames: baseNames,
    registers,
    collect() {
      this.reset();
      this.inc(base, hub.totals().messages);
    },
  });
  new Counter({
    name: `${p}rate_limited_total`,
    help: "Actions refused by a limiter, by kind (connect, message, churn, requests, auth).",
    labelNames: [...baseNames, "kind"],
    registers,
    collect() {
      this.reset();
      for (const [kind, n] of Object.entries(hub.totals().limited)) this.inc({ ...base, kind }, n);
    },
  });
  new Counter({
    name: `${p}errors_total`,
    help: "Requests answered with an error frame, by code.",
    labelNames: [...baseNames, "code"],
    registers,
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(hub.totals().errors)) this.inc({ ...base, code }, n ?? 0);
    },
  });
  const resumes = new Counter({
    name: `${p}resumes_total`,
    help: "Resume attempts by result (ok, failed: unknown/used/expired token or grace over).",
    labelNames: [...baseNames, "result"],
    registers,
  });
  const refused = new Counter({
    name: `${p}handshakes_refused_total`,
    help: "Handshakes refused, by HTTP status.",
    labelNames: [...baseNames, "status"],
    registers,
  });
  const storeLatency = new Histogram({
    name: `${p}store_operation_seconds`,
    help: "Latency of store calls (one in storeLatencySampleEvery per operation), by operation and outcome.",
    labelNames: [...baseNames, "operation", "ok"],
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers,
  });

  const onMatched = ({ waitedMs }: { waitedMs: [number, number] }) => {
    matches.inc(base);
    timeToMatch.observe(base, waitedMs[0] / 1000);
    timeToMatch.observe(base, waitedMs[1] / 1000);
  };
  const onResume = ({ ok }: { ok: boolean }) => resumes.inc({ ...base, result: ok ? "ok" : "failed" });
  const onRefused = ({ status }: { status: number }) => refused.inc({ ...base, status: String(status) });
  hub.on("matched", onMatched);
  hub.on("resume", onResume);
  hub.on("refused", onRefused);
  // One child per (operation, outcome), made on first use: an observation hashes no labels.
  const latencyOf = new Map<string, { observe(seconds: number): void }>();
  hub.observeStore(
    (operation, seconds, ok) => {
      const key = ok ? operation : `${operation}\0`;
      let child = latencyOf.get(key);
      if (child === undefined) {
        child = storeLatency.labels({ ...base, operation, ok: ok ? "true" : "false" });
        latencyOf.set(key, child);
      }
      child.observe(seconds);
    },
    { sampleEvery: options.storeLatencySampleEvery ?? 16 },
  );

  const names = [
    "sessions",
    "pool_waiting",
    "matches_total",
    "time_to_match_seconds",
    "messages_total",
    "rate_limited_total",
    "errors_total",
    "resumes_total",
    "handshakes_refused_total",
    "store_operation_seconds",
  ].map((n) => `${p}${n}`);
  return {
    registry,
    contentType: registry.contentType,
    metrics: () => registry.metrics(),
    close() {
      hub.off("matched", onMatched);
      hub.off("resume", onResume);
      hub.off("refused", onRefused);
      hub.observeStore(undefined);
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
