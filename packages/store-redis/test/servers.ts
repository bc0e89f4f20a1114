import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

function onPath(command: string): boolean {
  return spawnSync(command, ["--version"]).status === 0;
}

/** Whether the tests can start private Redis servers (and clusters). */
export const hasRedisServer = onPath("redis-server") && onPath("redis-cli");
if (!hasRedisServer) {
  const reason = "redis-server or redis-cli is not on PATH";
  if (process.env.CI) throw new Error(`${reason}: the tests with private Redis servers must run under CI`);
  console.warn(`${reason}: skipping the tests with private Redis servers`);
}

async function waitForPing(port: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      probe.disconnect();
    }
  }
}

/** A private, throwaway redis-server on `port` (nothing saved to disk). */
export async function startRedis(port: number, args: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--save", "", "--appendonly", "no", ...args], {
    stdio: "ignore",
  });
  try {
    await waitForPing(port);
  } catch (error) {
    await stopRedis(child);
    throw error;
  }
  return child;
}

export async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

/** A private Redis Cluster (three masters unless asked otherwise). */
export interface TestCluster {
  readonly ports: readonly number[];
  /**
   * Kills the master on `port` (SIGKILL) and starts it again: it keeps its place in the cluster
   * (its node file) and its slots; its data only with `persist` (an fsync'd append-only file),
   * otherwise it comes back empty. Resolves once the cluster is ok again.
   */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /**
   * Each master keeps its data in an append-only file fsync'd on every write, so that a restart
   * keeps it.
   * @default false
   */
  persist?: boolean;
  /**
   * How many masters (no replicas), each with an even, contiguous share of the 16,384 slots.
   * Three or more are set up by `redis-cli --cluster create`, which refuses fewer; one or two
   * are set up here, master i taking [floor(i * 16384 / n), floor((i + 1) * 16384 / n) - 1].
   * @default 3
   */
  masters?: number;
}

/** Starts a cluster of `masters` masters (default three) on free ports. */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const masters = options.masters ?? 3;
  if (!(Number.isInteger(masters) && masters >= 1)) {
    throw new RangeError(`startCluster: masters must be a whole number >= 1, got ${masters}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "whisper-cluster-"));
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) ports.push(await freePort());
  const children: ChildProcess[] = [];
  const argsOf = new Map<number, string[]>();
  const busPorts: number[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopRedis));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const busPort = await freePort();
      busPorts.push(busPort);
      const args = [
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        String(busPort),
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--dir",
        dir,
        // A lone node never met by another does not know its address and announces none.
        ...(masters < 3 ? ["--cluster-announce-ip", "127.0.0.1"] : []),
        ...(options.persist === true
          ? ["--appendonly", "yes", "--appendfsync", "always", "--appenddirname", `aof-${port}`]
          : []),
      ];
      argsOf.set(port, args);
      children.push(await startRedis(port, args));
    }
    if (masters >= 3) {
      const created = spawnSync(
        "redis-cli",
        [
          "--cluster",
          "create",
          ...ports.map((p) => `127.0.0.1:${p}`),
          "--cluster-replicas",
          "0",
          "--cluster-yes",
        ],
        { encoding: "utf8" },
      );
      if (created.status !== 0)
        throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    } else {
      assembleCluster(ports, busPorts);
    }
    await clusterOk(ports);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    stop,
    async restart(port) {
      const i = ports.indexOf(port);
      const args = argsOf.get(port);
      if (i < 0 || args === undefined) throw new Error(`no master on port ${port}`);
      await stopRedis(children[i] as ChildProcess);
      children[i] = await startRedis(port, args);
      await clusterOk(ports);
    },
  };
}

/**
 * Makes a cluster of `ports` by hand (what `redis-cli --cluster create` does, for any number of
 * masters): each takes its share of the slots, and the first meets the others (on their bus ports).
 */
function assembleCluster(ports: readonly number[], busPorts: readonly number[]): void {
  const cli = (port: number, ...args: string[]) => {
    const out = spawnSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });
    if (out.status !== 0 || !out.stdout.startsWith("OK"))
      throw new Error(`redis-cli -p ${port} ${args.join(" ")} failed: ${out.stdout}${out.stderr}`);
  };
  ports.forEach((port, i) => {
    const first = Math.floor((i * 16384) / ports.length);
    const last = Math.floor(((i + 1) * 16384) / ports.length) - 1;
    cli(port, "cluster", "addslotsrange", String(first), String(last));
  });
  ports.forEach((port, i) => {
    if (i > 0) cli(ports[0] as number, "cluster", "meet", "127.0.0.1", String(port), String(busPorts[i]));
  });
}

/** Waits until every node sees the cluster as ok, with every slot assigned and every master known. */
async function clusterOk(ports: readonly number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (const port of ports) {
    for (;;) {
      const info = spawnSync("redis-cli", ["-p", String(port), "cluster", "info"], {
        encoding: "utf8",
      }).stdout;
      if (
        info.includes("cluster_state:ok") &&
        info.includes("cluster_slots_assigned:16384") &&
        /cluster_known_nodes:(\d+)/.exec(info)?.[1] === String(ports.length)
      )
        break;
      if (Date.now() > deadline) throw new Error(`cluster node ${port} is not ok: ${info}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
