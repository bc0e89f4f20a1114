// The device id over Socket.IO (`auth.device`, docs/protocol.md section 6, "Location privacy"):
// a guest with the same device id is the same user on every session; a malformed one is refused.
import type { WelcomeFrame } from "@whisperchat/core";
import { io, type Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import { type SioHarness, startSocketIoHarness } from "./harness.js";

let h: SioHarness | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await h?.close();
  h = undefined;
});

/** Connects with `auth` and resolves the `welcome`. */
function welcomeWith(harness: SioHarness, auth: Record<string, string>): Promise<WelcomeFrame> {
  const socket = io(harness.origin, { auth, transports: ["websocket"], forceNew: true, reconnection: false });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("welcome", (w: Omit<WelcomeFrame, "type">) => resolve({ type: "welcome", ...w }));
    socket.once("connect_error", reject);
  });
}

describe("device id over Socket.IO", () => {
  it("auth.device makes a guest the same user on every session; another id, or none, is another user", async () => {
    h = await startSocketIoHarness();
    const device = "socketio-device-0123456789";
    const one = await welcomeWith(h, { device });
    const two = await welcomeWith(h, { device });
    expect(two.sessionId).not.toBe(one.sessionId);
    expect(two.user.userId).toBe(one.user.userId);
    expect(two.user.userId).not.toContain(device);
    expect((await welcomeWith(h, { device: "another-device-0123456789" })).user.userId).not.toBe(
      one.user.userId,
    );
    expect((await welcomeWith(h, {})).user.userId).not.toBe(one.user.userId);
  });

  it("a malformed auth.device is refused with 400", async () => {
    h = await startSocketIoHarness();
    const refused = await h.connectRefused({ auth: { device: "short" } });
    expect(refused.status).toBe(400);
    expect((await h.connectRefused({ auth: { device: 42 } })).status).toBe(400);
  });
});
