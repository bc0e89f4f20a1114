/**
 * The key layout. Keys that one script touches together share a hash tag (the part in braces),
 * so that on Redis Cluster they live in one slot: the whole pool is tagged `{<prefix>pool}` (the
 * prefix inside the tag, so that two apps with different prefixes on one cluster put their pools
 * in different slots), a room and its history are tagged with the room id. Every other script
 * touches one key.
 */
export interface Keys {
  readonly prefix: string;
  /** Pool: sessionId → `<tier> <entry JSON>`. */
  readonly poolEntries: string;
  /** Pool: sessionIds of the entries too near a pole for Redis GEO (a set, scanned whole). */
  readonly poolPolar: string;
  /** Pool: one GEO set per range tier, in the order of the tiers. */
  readonly poolTiers: readonly string[];
  room(roomId: string): string;
  roomHistory(roomId: string): string;
  exclusions(userId: string): string;
  bus(nodeId: string): string;
  limiter(key: string): string;
  session(sessionId: string): string;
  mailbox(sessionId: string): string;
  account(nameKey: string): string;
  ban(userId: string): string;
  node(nodeId: string): string;
  /** When node `nodeId`'s last heartbeat expires (kept after it stops; see `NodeStore.deadSince`). */
  nodeUntil(nodeId: string): string;
}

/** The keys of a store with this prefix and these tier bounds (km, ascending). */
export function makeKeys(prefix: string, tiersKm: readonly number[]): Keys {
  const pool = `${prefix}{${prefix}pool}`;
  return {
    prefix,
    poolEntries: `${pool}:entries`,
    poolPolar: `${pool}:polar`,
    poolTiers: [...tiersKm.map((km) => `${pool}:geo:${km}`), `${pool}:geo:max`],
    room: (roomId) => `${prefix}room:{${roomId}}`,
    roomHistory: (roomId) => `${prefix}room:{${roomId}}:history`,
    exclusions: (userId) => `${prefix}excl:{${userId}}`,
    bus: (nodeId) => `${prefix}bus:{${nodeId}}`,
    limiter: (key) => `${prefix}limit:{${key}}`,
    session: (sessionId) => `${prefix}session:{${sessionId}}`,
    mailbox: (sessionId) => `${prefix}mailbox:{${sessionId}}`,
    account: (nameKey) => `${prefix}account:{${nameKey}}`,
    ban: (userId) => `${prefix}ban:{${userId}}`,
    node: (nodeId) => `${prefix}node:{${nodeId}}`,
    nodeUntil: (nodeId) => `${prefix}nodeuntil:{${nodeId}}`,
  };
}
