import type { RoomRecord, RoomStore, StoredMessage } from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, keepOf, parse, type RedisClient, run, script } from "./redis.js";

// KEYS: room, history. The room is a JSON string; the history a list, oldest first.
const CREATE = script(
  "rooms.create",
  `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`,
);

const DELETE = script(
  "rooms.delete",
  `
local room = redis.call('GET', KEYS[1])
if not room then return false end
redis.call('DEL', KEYS[1], KEYS[2])
return room
`,
);

/**
 * Lua that sets `appended` to 1 after pushing ARGV[first..last] (Lua expressions) onto the
 * history, keeping the newest `limit` (none when `limit` < 1) and giving the room and its
 * history a fresh ttl (ms): an active room lives on, an idle one goes. When the room does not
 * exist, it sets `appended` to 0 and does nothing. Inlined, not a Lua function (see limiter.ts).
 */
export function appendLua(
  room: string,
  history: string,
  first: string,
  last: string,
  limit: string,
  ttl: string,
): string {
  return `
local appended = 0
if redis.call('EXISTS', ${room}) == 1 then
  appended = 1
  if ${limit} < 1 then
    redis.call('DEL', ${history})
  else
    redis.call('RPUSH', ${history}, unpack(ARGV, ${first}, ${last}))
    redis.call('LTRIM', ${history}, -${limit}, -1)
    redis.call('PEXPIRE', ${history}, ${ttl})
  end
  redis.call('PEXPIRE', ${room}, ${ttl})
end
`;
}

// ARGV: message JSON, limit (>= 0), ttl (ms).
const APPEND = script(
  "rooms.append",
  `
local limit = tonumber(ARGV[2])
${appendLua("KEYS[1]", "KEYS[2]", "1", "1", "limit", "ARGV[3]")}
return appended
`,
);

/** Rooms as JSON strings and histories as capped lists, both expiring after `ttlMs` idle. */
export class RedisRooms implements RoomStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;
  readonly #ttlMs: number;

  constructor(client: RedisClient, keys: Keys, ttlMs: number) {
    this.#client = client;
    this.#keys = keys;
    this.#ttlMs = ttlMs;
  }

  #pair(roomId: string): string[] {
    return [this.#keys.room(roomId), this.#keys.roomHistory(roomId)];
  }

  async create(room: RoomRecord): Promise<void> {
    await attempt("rooms.create", () =>
      run(this.#client, CREATE, this.#pair(room.roomId), [JSON.stringify(room), this.#ttlMs]),
    );
  }

  async get(roomId: string): Promise<RoomRecord | undefined> {
    const value = await attempt("rooms.get", () => this.#client.get(this.#keys.room(roomId)));
    return value === null ? undefined : parse<RoomRecord>(value);
  }

  async delete(roomId: string): Promise<RoomRecord | undefined> {
    const value = await attempt("rooms.delete", () => run(this.#client, DELETE, this.#pair(roomId), []));
    return typeof value === "string" ? parse<RoomRecord>(value) : undefined;
  }

  async append(roomId: string, message: StoredMessage, limit: number): Promise<boolean> {
    const keep = keepOf(limit, "rooms.append");
    const appended = await attempt("rooms.append", () =>
      run(this.#client, APPEND, this.#pair(roomId), [JSON.stringify(message), keep, this.#ttlMs]),
    );
    return appended === 1;
  }

  async history(roomId: string): Promise<StoredMessage[]> {
    const values = await attempt("rooms.history", () =>
      this.#client.lrange(this.#keys.roomHistory(roomId), 0, -1),
    );
    return values.map((v) => parse<StoredMessage>(v));
  }
}
