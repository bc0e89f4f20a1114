import { CLIENT_FRAME_TYPES, type ClientFrameType } from "../protocol.js";
import type { AuthorizeHook, HubAction } from "../settings.js";

/** What a client may ask for over its connection: one action per client frame type. */
export type ClientAction = ClientFrameType;

/** What the server side (the host app, an admin route) may do to users and the hub. */
export type AdminAction = "kick" | "ban" | "unban" | "stats";

/** Every client action, in the order of the protocol's table. */
export const CLIENT_ACTIONS: readonly ClientAction[] = CLIENT_FRAME_TYPES;

/** Every admin action. */
export const ADMIN_ACTIONS: readonly AdminAction[] = ["kick", "ban", "unban", "stats"];

const CLIENT_SET: ReadonlySet<string> = new Set(CLIENT_ACTIONS);
const ADMIN_SET: ReadonlySet<string> = new Set(ADMIN_ACTIONS);

/** True for an admin action (`kick`, `ban`, `unban`, `stats`). */
export function isAdminAction(action: string): action is AdminAction {
  return ADMIN_SET.has(action);
}

/** True for a client action (one per client frame type). */
export function isClientAction(action: string): action is ClientAction {
  return CLIENT_SET.has(action);
}

/**
 * Who a {@link rolePolicy} rule lets do an action:
 * - `"guests-too"`: everyone, guests included;
 * - `"anyone"`: every authenticated identity (not a guest), whatever its roles;
 * - a list of roles: an authenticated identity holding at least one of them (an empty list lets
 *   nobody). Guests never match a role list, whatever roles they carry.
 */
export type RoleRule = readonly string[] | "anyone" | "guests-too";

/** Options of {@link rolePolicy}. */
export interface RolePolicyOptions {
  /** The rule for client actions (and `connect`) not named in `rules`. @default "guests-too" */
  clientDefault?: RoleRule;
  /** The roles allowed every admin action not named in `rules`. @default ["admin"] */
  adminRoles?: readonly string[];
}

/**
 * A role-based {@link AuthorizeHook} for `createWhisper({ authorize })`. Each action is decided
 * by its rule in `rules`; an action without a rule follows the defaults:
 * - client actions (`join`, `message`, `typing`, `next`, `leave`, `block`, `auth`, `ping`) and
 *   `connect` (asked at the handshake; a refusal is HTTP 403): `options.clientDefault`, which lets
 *   everyone, guests included;
 * - admin actions (`kick`, `ban`, `unban`, `stats`): `options.adminRoles`, the `admin` role.
 *
 * An action the policy does not know (a string outside `HubAction`) is refused. The context is
 * not looked at: compose with your own hook for rules about targets or rooms.
 *
 * @example
 * // Only signed-in users may chat; moderators may kick; admins keep every admin action.
 * const authorize = rolePolicy({ message: "anyone", kick: ["moderator", "admin"] });
 */
export function rolePolicy(
  rules: Partial<Record<HubAction, RoleRule>>,
  options: RolePolicyOptions = {},
): AuthorizeHook {
  if (typeof rules !== "object" || rules === null) throw new TypeError("rolePolicy: rules must be an object");
  const client = options.clientDefault ?? "guests-too";
  const admin = options.adminRoles ?? ["admin"];
  checkRule(client, "options.clientDefault");
  checkRule(admin, "options.adminRoles");
  // Spelled out so that the compiler flags an action added to HubAction without a default here.
  const defaults: Record<HubAction, RoleRule> = {
    connect: client,
    join: client,
    message: client,
    typing: client,
    next: client,
    leave: client,
    block: client,
    auth: client,
    ping: client,
    kick: admin,
    ban: admin,
    unban: admin,
    stats: admin,
  };
  const table = new Map<string, RoleRule>(Object.entries(defaults));
  for (const [action, rule] of Object.entries(rules)) {
    if (!table.has(action)) {
      throw new TypeError(
        `rolePolicy: unknown action "${action}"; actions are ${[...table.keys()].join(", ")}`,
      );
    }
    if (rule === undefined) continue;
    checkRule(rule, `rules.${action}`);
    table.set(action, Array.isArray(rule) ? [...rule] : rule);
  }
  return (identity, action) => {
    const rule = table.get(action);
    if (rule === undefined) return false;
    if (rule === "guests-too") return true;
    if (identity.guest === true) return false;
    if (rule === "anyone") return true;
    return identity.roles.some((role) => rule.includes(role));
  };
}

function checkRule(rule: unknown, what: string): void {
  if (rule === "anyone" || rule === "guests-too") return;
  if (Array.isArray(rule) && rule.every((role) => typeof role === "string")) return;
  throw new TypeError(`rolePolicy: ${what} must be "anyone", "guests-too" or an array of role names`);
}
