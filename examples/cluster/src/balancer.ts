import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A round-robin TCP load balancer with no stickiness: each new connection (HTTP or WebSocket)
 * goes to the next backend that accepts it. It stands in for the load balancer of a real
 * deployment, to show that WhisperChat needs no sticky sessions.
 */
export function startBalancer(
  backends: () => readonly { host: string; port: number }[],
  port: number,
  host: string,
): Promise<Server> {
  let next = 0;
  const server = createServer((client: Socket) => {
    const list = backends();
    const tryBackend = (attempt: number): void => {
      if (attempt >= list.length) {
        client.destroy();
        return;
      }
      const target = list[next++ % list.length] as { host: string; port: number };
      const upstream = connect(target.port, target.host);
      let connected = false;
      upstream.once("connect", () => {
        connected = true;
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.once("error", () => {
        if (!connected) tryBackend(attempt + 1);
        else client.destroy();
      });
      client.once("error", () => upstream.destroy());
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    };
    tryBackend(0);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
