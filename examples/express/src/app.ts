import http from "node:http";
import { attachWebSocket, type WebSocketAdapter } from "@whisperchat/adapter-ws";
import { createWhisper, type WhisperHub } from "@whisperchat/core";
import { createMemoryStore } from "@whisperchat/store-memory";
import express, { type Express } from "express";

/** The Express app with WhisperChat mounted next to its own routes. */
export interface ChatApp {
  app: Express;
  server: http.Server;
  hub: WhisperHub;
  chat: WebSocketAdapter;
  /** Drains the chat (clients may resume elsewhere), then closes the HTTP server. */
  close(): Promise<void>;
}

/** Options of {@link createChatApp}. */
export interface ChatAppOptions {
  /** Where the app logs chat events. @default console.log */
  log?: (line: string) => void;
}

export function createChatApp({ log = console.log }: ChatAppOptions = {}): ChatApp {
  // 1. The app you already have, with its own routes and middleware.
  const app = express();
  app.use(express.json());
  app.get("/api/hello", (_req, res) => {
    res.json({ hello: "world" });
  });

  // 2. WhisperChat: one hub, mounted on the same HTTP server as the app.
  const hub = createWhisper({ store: createMemoryStore() });
  const server = http.createServer(app);
  const chat = attachWebSocket(hub, { server }); // ws://<host>/whisper; other paths stay Express's

  // 3. The app's routes may use the hub, e.g. a small status endpoint...
  app.get("/api/chat/stats", async (_req, res) => {
    const { sessions, waiting, rooms, messages } = await hub.stats();
    res.json({ sessions, waiting, rooms, messages });
  });
  // ...and react to what happens in the chat.
  hub.on("matched", ({ identity, partner, distanceKm }) => {
    log(`${identity.name} matched ${partner.name}, within ${distanceKm} km`);
  });

  return {
    app,
    server,
    hub,
    chat,
    async close() {
      await hub.close({ code: 1012 });
      await chat.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
