// What the attack reproductions of both transports share: raw HTTP over TCP, polling for a
// bound, and the process's file descriptors (the servers under test run in this process).
import { existsSync, readdirSync } from "node:fs";
import { type Socket, connect as tcpConnect } from "node:net";

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Whether {@link fdCount} can be read here (Linux). */
export const hasProcFd = existsSync("/proc/self/fd");

/** Polls `check` until it holds or `ms` pass; resolves whether it held. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(25);
  }
}

/** A raw TCP connection to 127.0.0.1:`port` that sends `lines` as one HTTP request head. */
export function rawSocket(port: number, lines: string[]): Socket {
  const socket = tcpConnect(port, "127.0.0.1", () => socket.write(`${lines.join("\r\n")}\r\n\r\n`));
  socket.on("error", () => undefined);
  return socket;
}

/** Resolves what came back on `socket` once the server closed it or `waitMs` passed. */
export function answerOf(socket: Socket, waitMs = 3000): Promise<{ data: string; socket: Socket }> {
  return new Promise((resolve) => {
    let data = "";
    socket.on("data", (d) => {
      data += d.toString();
    });
    const done = () => resolve({ data, socket });
    socket.on("close", done);
    setTimeout(done, waitMs).unref();
  });
}

/** The head of a WebSocket upgrade request for `path`. */
export function upgradeLines(path: string, extra: string[] = []): string[] {
  return [
    `GET ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...extra,
  ];
}
