import http from "node:http";
import { attachWebSocket } from "@whisperchat/adapter-ws";
import { createWhisper } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";

// Your existing app: WhisperChat only takes the upgrade requests on /whisper.
const server = http.createServer((_req, res) => res.end("my app\n"));

const hub = createWhisper({ store: createMemoryStore() });
attachWebSocket(hub, { server, path: "/whisper" });

hub.on("matched", ({ identity, partner, distanceKm }) => {
  console.log(`${identity.name} matched ${partner.name}, within ${distanceKm} km`);
});

server.listen(Number(process.env.PORT ?? 3000), () => {
  const { port } = server.address() as { port: number };
  console.log(`chat on ws://localhost:${port}/whisper`);
});
