/**
 * The load generator of the cross-node relay benchmark (`bench/redis.ts`): a process of its
 * own, talking over loopback to two server nodes that share one Redis. Every pair is split
 * across the nodes: its first client connects to node 0, its partner to node 1, so every
 * message crosses Redis. The load is the single-node relay benchmark's (`lib/load-common.ts`).
 */
import type { Socket as IoSocket } from "socket.io-client";
import type { ClusterKind } from "./cluster-node.js";
import { serve } from "./ipc.js";
import { type Client, inBatches, ioConnect, WindowedLoad, whisperPair } from "./load-common.js";

const CONNECT_BATCH = 50;

/** Socket.IO: each client tells its node its partner's socket id. */
async function ioPair(ports: readonly [number, number]): Promise<[Client, Client]> {
  const [a, b] = await Promise.all([ioConnect(ports[0]), ioConnect(ports[1])]);
  const tell = (from: IoSocket, partner: IoSocket) =>
    new Promise<void>((resolve) => from.emit("partner", partner.id, () => resolve()));
  await Promise.all([tell(a.socket, b.socket), tell(b.socket, a.socket)]);
  return [a.client, b.client];
}

const load = new WindowedLoad();

serve({
  async connectPairs(arg) {
    const { kind, ports, pairs } = arg as { kind: ClusterKind; ports: [number, number]; pairs: number };
    const made = await inBatches(pairs, CONNECT_BATCH, (i) =>
      kind === "whisper" ? whisperPair(ports, i) : ioPair(ports),
    );
    load.clients = made.flat();
    return load.clients.length;
  },
  start(arg) {
    load.start((arg as { window: number }).window);
    return null;
  },
  mark() {
    load.mark();
    return null;
  },
  stop: () => load.stop(200),
  async closeAll() {
    await load.closeAll();
    return null;
  },
});
