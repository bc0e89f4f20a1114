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

// ARGV: message JSON, limit (>= 0), ttl (ms). Every append gives the room and its history
// a fresh ttl: an active room lives on, an idle one goes.
const APPEND = script(
  "rooms.append",
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local limit = tonumber(ARGV[2])
if limit < 1 then
  redis.call('DEL', KEYS[2])
else
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('LTRIM', KEYS[2], -limit, -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
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
