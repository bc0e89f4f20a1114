/**
 * A tiny request/response layer over Node's IPC channel, so a benchmark can drive a server
 * process and a load process of its own.
 */
import { type ChildProcess, fork } from "node:child_process";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** How bench processes run: TypeScript sources through tsx, with `gc()` available. */
export const NODE_ARGS = ["--conditions=@whisperchat/source", "--import", "tsx", "--expose-gc"];

type Handler = (arg: unknown) => unknown;

interface Request {
  id: number;
  cmd: string;
  arg: unknown;
}

interface Response {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** A child process driven by {@link Worker.call}. */
export interface Worker {
  readonly child: ChildProcess;
  /** Runs a command in the child and resolves its result. */
  call<T = unknown>(cmd: string, arg?: unknown): Promise<T>;
  /** Asks the child to exit (so that `--cpu-prof` can write its profile) and waits for it. */
  exit(): Promise<void>;
}

/**
 * Forks `file` (a worker that calls {@link serve}) and resolves once it is ready.
 * `execArgv` is added to `nodeArgs` ({@link NODE_ARGS}: TypeScript through tsx; pass
 * `["--expose-gc"]` for a bundled JavaScript file, see `bundle.ts`).
 */
export function spawnWorker(
  file: string,
  execArgv: string[] = [],
  env?: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = NODE_ARGS,
): Promise<Worker> {
  const child = fork(file, [], {
    execArgv: [...nodeArgs, ...execArgv],
    env: env ?? process.env,
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let next = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("exit", (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`${file} exited (${code ?? signal}) during a call`));
    waiting.clear();
  });
  return new Promise((resolve, reject) => {
    const onEarlyExit = (code: number | null) =>
      reject(new Error(`${file} exited (${code}) before it was ready`));
    child.once("exit", onEarlyExit);
    child.on("message", (raw) => {
      const msg = raw as Response | { ready: true };
      if ("ready" in msg) {
        child.off("exit", onEarlyExit);
        resolve(worker);
        return;
      }
      const w = waiting.get(msg.id);
      if (w === undefined) return;
      waiting.delete(msg.id);
      if (msg.ok) w.resolve(msg.value);
      else w.reject(new Error(msg.error));
    });
    const worker: Worker = {
      child,
      call<T>(cmd: string, arg?: unknown): Promise<T> {
        const id = next++;
        return new Promise<T>((res, rej) => {
          waiting.set(id, { resolve: res as (v: unknown) => void, reject: rej });
          child.send({ id, cmd, arg } satisfies Request);
        });
      },
      async exit(): Promise<void> {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.send({ id: 0, cmd: "__exit", arg: undefined } satisfies Request);
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      },
    };
  });
}

/** The child side: answers calls with `handlers`, and exits on request. */
export function serve(handlers: Record<string, Handler>): void {
  process.on("message", (raw) => {
    const req = raw as Request;
    if (req.cmd === "__exit") {
      process.disconnect?.();
      setImmediate(() => process.exit(0));
      return;
    }
    const handler = handlers[req.cmd];
    const reply = (r: Response) => process.send?.(r);
    if (handler === undefined) {
      reply({ id: req.id, ok: false, error: `unknown command ${req.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(req.arg))
      .then(
        (value) => reply({ id: req.id, ok: true, value }),
        (error: unknown) =>
          reply({
            id: req.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          }),
      );
  });
  // Without a parent there is nothing to serve.
  process.on("disconnect", () => process.exit(0));
  process.send?.({ ready: true });
}

/** Runs a full garbage collection (by default several passes, so weak and finalised objects go too). */
export function fullGc(passes = 4): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc");
  for (let i = 0; i < passes; i++) gc();
}

/**
 * Listens on loopback with a deep accept backlog, on `port` (by default a free one, e.g. to
 * restart a killed node where its clients expect it); resolves the port.
 */
export async function listenLoopback(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: "127.0.0.1", backlog: 4096 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** This process's CPU time so far (user + system), microseconds: a server worker's `cpu()`. */
export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
