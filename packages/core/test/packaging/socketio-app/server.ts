// The quickstart on an app's own Socket.IO server, with JWT authentication from
// @whisperchat/core/jwt (jose only: no argon2 is installed next to it).
import http from "node:http";
import { attachSocketIo } from "@whisperchat/adapter-socketio";
import { createWhisper } from "@whisperchat/core";
import { createJwtAuth } from "@whisperchat/core/jwt";
import { createMemoryStore } from "@whisperchat/store-memory";
import { Server } from "socket.io";

const secret = process.env.JWT_SECRET;
if (secret === undefined) throw new Error("JWT_SECRET is not set");

const server = http.createServer((_req, res) => res.end("my app\n"));
const io = new Server(server);

const jwt = createJwtAuth({ secret });
const hub = createWhisper({ store: createMemoryStore(), authenticate: jwt.authenticate });
attachSocketIo(hub, { io });

server.listen(Number(process.env.PORT ?? 3000), () => {
  const { port } = server.address() as { port: number };
  console.log(`chat on http://localhost:${port}`);
});
