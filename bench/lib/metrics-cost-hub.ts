/**
 * The hub side of `bench/metrics-cost.ts`, one process per configuration so that each has its
 * own compiled code and heap. Driven over IPC:
 *
 * - `start({ kind })` makes the hub (`bare`, `metrics`: with `prometheusMetrics(hub)`, `demo`:
 *   metrics, the JWT hook with guests and the role policy, as `lib/relay-server.ts`'s
 *   `whisper-demo`), connects the pairs in-process and resolves once they are matched;
 * - `relay({ count })` relays `count` messages, each pair keeping `WINDOW` in flight (a message
 *   received by the partner lets its sender send the next), and resolves the CPU µs it took.
 *
 * Connections are in-process objects (`hub.admit` + `hub.open`, frames handed over as text, as
 * adapter-ws does): what is measured is the hub, its store calls and its observers, not a
 * transport.
 */
import type { Connection, SessionLink, WhisperHub } from "@whisperchat/core";
import { prometheusMetrics } from "@whisperchat/core/prometheus";
import { cpuMicros, fullGc, serve } from "./ipc.js";
import { benchHub } from "./no-limits.js";

/** The configurations compared. */
export type CostKind = "bare" | "metrics" | "demo";

const PAIRS = 50;
const WINDOW = 8;
const FRAME = JSON.stringify({ type: "message", text: "x".repeat(100) });

let hub: WhisperHub | undefined;
const links: SessionLink[][] = [];
let onMessage: (pair: number, side: number) => void = () => undefined;

async function start({ kind }: { kind: CostKind }): Promise<void> {
  hub = benchHub(kind === "demo");
  if (kind !== "bare") prometheusMetrics(hub);
  const matched: Promise<void>[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    const sides: SessionLink[] = [];
    for (let side = 0; side < 2; side++) {
      let isMatched: () => void = () => undefined;
      matched.push(new Promise<void>((resolve) => (isMatched = resolve)));
      const connection: Connection = {
        send: (frame) => {
          if (frame.type === "message") onMessage(pair, side);
          else if (frame.type === "matched") isMatched();
        },
        close: () => undefined,
        bufferedAmount: 0,
      };
      const admission = await hub.admit({
        transport: "bench",
        headers: {},
        params: {},
        remoteAddress: `198.18.${pair}.${side + 1}`,
      });
      if (!admission.ok) throw new Error(`connection refused: ${admission.status}`);
      const link = hub.open(admission, connection);
      sides.push(link);
      // Each pair at its own place, 50 km from the next, with a 1 km range: pairing is deterministic.
      link.receiveText(
        JSON.stringify({
          type: "join",
          location: { lat: 10, lng: 0.45 * pair },
          rangeKm: 1,
          name: `p${pair}`,
        }),
      );
    }
    links.push(sides);
  }
  await Promise.all(matched);
}

function relay({ count }: { count: number }): Promise<number> {
  fullGc();
  return new Promise((resolve) => {
    let received = 0;
    let sent = 0;
    const send = (pair: number, side: number) => {
      if (sent >= count) return;
      sent++;
      links[pair]?.[side]?.receiveText(FRAME);
    };
    const start = cpuMicros();
    onMessage = (pair, side) => {
      if (++received === count) {
        onMessage = () => undefined;
        resolve(cpuMicros() - start);
        return;
      }
      send(pair, 1 - side);
    };
    for (let pair = 0; pair < PAIRS; pair++)
      for (let side = 0; side < 2; side++) for (let i = 0; i < WINDOW / 2; i++) send(pair, side);
  });
}

serve({
  start: (arg) => start(arg as { kind: CostKind }),
  relay: (arg) => relay(arg as { count: number }),
});
