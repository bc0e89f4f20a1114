import { createMemoryStore } from "@whisperchat/store-memory";
import { describe, expect, it } from "vitest";
import type { Identity } from "../connection.js";
import { createWhisper } from "../hub.js";
import type { HubAction as Action } from "../settings.js";
import { ADMIN_ACTIONS, CLIENT_ACTIONS, isAdminAction, isClientAction, rolePolicy } from "./policy.js";

const guest: Identity = { userId: "guest-1", name: "Guest", roles: [], guest: true };
const member: Identity = { userId: "u1", name: "Alice", roles: ["member"] };
const plain: Identity = { userId: "u2", name: "Bob", roles: [] };
const admin: Identity = { userId: "u3", name: "Root", roles: ["admin"] };
const moderator: Identity = { userId: "u4", name: "Mo", roles: ["moderator"] };
/** A guest carrying a role (a custom authenticate hook could produce one): guests never match role lists. */
const guestWithRole: Identity = { userId: "guest-2", name: "G", roles: ["admin"], guest: true };

describe("rolePolicy defaults", () => {
  const policy = rolePolicy({});

  it("allows every client action to everyone, guests included", async () => {
    for (const action of CLIENT_ACTIONS) {
      for (const who of [guest, member, plain, admin]) {
        expect(await policy(who, action, { sessionId: "s" })).toBe(true);
      }
    }
  });

  it("allows admin actions only to the admin role", async () => {
    for (const action of ADMIN_ACTIONS) {
      expect(await policy(admin, action, {})).toBe(true);
      for (const who of [guest, member, plain, moderator, guestWithRole]) {
        expect(await policy(who, action, { targetUserId: "u1" })).toBe(false);
      }
    }
  });

  it("lets everyone connect", async () => {
    for (const who of [guest, member, plain, admin]) expect(await policy(who, "connect", {})).toBe(true);
  });

  it("refuses an action it does not know", async () => {
    expect(await policy(admin, "shutdown" as Action, {})).toBe(false);
  });
});

describe("rolePolicy rules", () => {
  it('"anyone" shuts guests out but lets every signed-in identity in', async () => {
    const policy = rolePolicy({ message: "anyone" });
    expect(await policy(guest, "message", {})).toBe(false);
    expect(await policy(plain, "message", {})).toBe(true);
    expect(await policy(member, "message", {})).toBe(true);
    // Other client actions keep the default.
    expect(await policy(guest, "join", {})).toBe(true);
  });

  it("a role list needs one of the roles, and never matches a guest", async () => {
    const policy = rolePolicy({ kick: ["moderator", "admin"], join: ["member"] });
    expect(await policy(moderator, "kick", {})).toBe(true);
    expect(await policy(admin, "kick", {})).toBe(true);
    expect(await policy(member, "kick", {})).toBe(false);
    expect(await policy(member, "join", {})).toBe(true);
    expect(await policy(plain, "join", {})).toBe(false);
    expect(await policy({ ...guest, roles: ["member"] }, "join", {})).toBe(false);
    // Unnamed admin actions stay admin-only.
    expect(await policy(moderator, "ban", {})).toBe(false);
  });

  it("an empty role list lets nobody, and guests-too opens an admin action to all", async () => {
    const policy = rolePolicy({ block: [], stats: "guests-too" });
    expect(await policy(admin, "block", {})).toBe(false);
    expect(await policy(guest, "stats", {})).toBe(true);
  });

  it("a connect rule decides who is admitted at all", async () => {
    const policy = rolePolicy({ connect: "anyone" });
    expect(await policy(guest, "connect", {})).toBe(false);
    expect(await policy(plain, "connect", {})).toBe(true);
  });

  it("options change the defaults", async () => {
    const policy = rolePolicy({ ping: "guests-too" }, { clientDefault: "anyone", adminRoles: ["ops"] });
    expect(await policy(guest, "join", {})).toBe(false);
    expect(await policy(guest, "connect", {})).toBe(false);
    expect(await policy(guest, "ping", {})).toBe(true);
    expect(await policy(plain, "join", {})).toBe(true);
    expect(await policy({ ...plain, roles: ["ops"] }, "ban", {})).toBe(true);
    expect(await policy(admin, "ban", {})).toBe(false);
  });

  it("copies the rules: changing them later changes nothing", async () => {
    const roles = ["moderator"];
    const policy = rolePolicy({ kick: roles });
    roles.push("member");
    expect(await policy(member, "kick", {})).toBe(false);
  });

  it("rejects unknown actions and malformed rules at once", () => {
    expect(() => rolePolicy({ shutdown: ["admin"] } as Partial<Record<Action, string[]>>)).toThrow(
      /unknown action/,
    );
    expect(() => rolePolicy({ kick: "admin" } as unknown as Partial<Record<Action, string[]>>)).toThrow(
      TypeError,
    );
    expect(() => rolePolicy({ kick: [1] } as unknown as Partial<Record<Action, string[]>>)).toThrow(
      TypeError,
    );
    expect(() => rolePolicy({}, { clientDefault: "everyone" as "anyone" })).toThrow(TypeError);
  });
});

describe("action lists", () => {
  it("tell client and admin actions apart", () => {
    expect(CLIENT_ACTIONS.every(isClientAction)).toBe(true);
    expect(ADMIN_ACTIONS.every(isAdminAction)).toBe(true);
    expect(CLIENT_ACTIONS.some(isAdminAction)).toBe(false);
    expect(isClientAction("kick")).toBe(false);
  });
});

describe("rolePolicy in a hub", () => {
  it("plugs into createWhisper({ authorize }): a refused connect is HTTP 403", async () => {
    const store = createMemoryStore();
    const hub = createWhisper({ store, authorize: rolePolicy({ connect: "anyone" }) });
    try {
      const handshake = { transport: "test", headers: {}, params: {}, remoteAddress: "127.0.0.1" };
      expect(await hub.admit(handshake)).toMatchObject({ ok: false, status: 403, code: "forbidden" });
    } finally {
      await hub.close();
      await store.close();
    }
  });
});
