import {
  type AccountRecord,
  type AccountStore,
  type BanRecord,
  type BanStore,
  type MailboxStore,
  NODE_MEMORY_MS,
  type NodeStore,
  type RoomFrame,
  type SessionRecord,
  type SessionStore,
} from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, expireLua, keepOf, parse, pxOf, type RedisClient, run, script } from "./redis.js";

// A session is a hash: d = the record's JSON, t = its current tokenHash, n = its current nodeId
// (t and n win over the copies in d, so that a takeover never rewrites the JSON).
const SESSION_PUT = script(
  "sessions.put",
  `
redis.call('HSET', KEYS[1], 'd', ARGV[1], 't', ARGV[2], 'n', ARGV[3])
${expireLua(4)}
return 1
`,
);

// ARGV: expected tokenHash, new nodeId, new tokenHash, ttl. Returns the fields as they were.
const SESSION_TAKEOVER = script(
  "sessions.takeover",
  `
local v = redis.call('HMGET', KEYS[1], 'd', 't', 'n')
if not v[1] or v[2] ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 't', ARGV[3], 'n', ARGV[2])
${expireLua(4)}
return v
`,
);

function sessionOf(fields: readonly (string | null)[]): SessionRecord | undefined {
  const [json, tokenHash, nodeId] = fields;
  if (typeof json !== "string") return undefined;
  const record = parse<SessionRecord>(json);
  if (typeof tokenHash === "string") record.tokenHash = tokenHash;
  if (typeof nodeId === "string") record.nodeId = nodeId;
  return record;
}

/** Session records as hashes with a ttl; `takeover` is a compare-and-set on the token hash. */
export class RedisSessions implements SessionStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;

  constructor(client: RedisClient, keys: Keys) {
    this.#client = client;
    this.#keys = keys;
  }

  async put(record: SessionRecord, ttlMs: number): Promise<void> {
    const px = pxOf(ttlMs, "sessions.put");
    const key = this.#keys.session(record.sessionId);
    await attempt("sessions.put", async () => {
      if (px === undefined) await this.#client.del(key);
      else
        await run(
          this.#client,
          SESSION_PUT,
          [key],
          [JSON.stringify(record), record.tokenHash, record.nodeId, px],
        );
    });
  }

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    const fields = await attempt("sessions.get", () =>
      this.#client.hmget(this.#keys.session(sessionId), "d", "t", "n"),
    );
    return sessionOf(fields);
  }

  async delete(sessionId: string): Promise<boolean> {
    const n = await attempt("sessions.delete", () => this.#client.del(this.#keys.session(sessionId)));
    return n > 0;
  }

  async takeover(
    sessionId: string,
    expectedTokenHash: string,
    nodeId: string,
    newTokenHash: string,
    ttlMs: number,
  ): Promise<SessionRecord | undefined> {
    // A ttl of 0 or less would end the session at once: keep it for a millisecond instead, so
    // that the caller still wins the token exactly once.
    const px = pxOf(ttlMs, "sessions.takeover") ?? 1;
    const fields = await attempt("sessions.takeover", () =>
      run(
        this.#client,
        SESSION_TAKEOVER,
        [this.#keys.session(sessionId)],
        [expectedTokenHash, nodeId, newTokenHash, px],
      ),
    );
    return Array.isArray(fields) ? sessionOf(fields as (string | null)[]) : undefined;
  }
}

// ARGV: frame JSON, limit (>= 1), ttl.
const MAILBOX_PUSH = script(
  "mailbox.push",
  `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
${expireLua(3)}
return 1
`,
);

const MAILBOX_DRAIN = script(
  "mailbox.drain",
  `
local frames = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return frames
`,
);

/** Mailboxes as capped lists that expire after the last push; `drain` reads and deletes at once. */
export class RedisMailbox implements MailboxStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;

  constructor(client: RedisClient, keys: Keys) {
    this.#client = client;
    this.#keys = keys;
  }

  async push(sessionId: string, frame: RoomFrame, limit: number, ttlMs: number): Promise<void> {
    const keep = keepOf(limit, "mailbox.push");
    const px = pxOf(ttlMs, "mailbox.push");
    const key = this.#keys.mailbox(sessionId);
    await attempt("mailbox.push", async () => {
      if (keep === 0 || px === undefined) await this.#client.del(key);
      else await run(this.#client, MAILBOX_PUSH, [key], [JSON.stringify(frame), keep, px]);
    });
  }

  async drain(sessionId: string): Promise<RoomFrame[]> {
    const frames = (await attempt("mailbox.drain", () =>
      run(this.#client, MAILBOX_DRAIN, [this.#keys.mailbox(sessionId)], []),
    )) as string[];
    return frames.map((f) => parse<RoomFrame>(f));
  }
}

/** Accounts as JSON strings by normalised name, without expiry. */
export class RedisAccounts implements AccountStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;

  constructor(client: RedisClient, keys: Keys) {
    this.#client = client;
    this.#keys = keys;
  }

  async create(account: AccountRecord): Promise<boolean> {
    const reply = await attempt("accounts.create", () =>
      this.#client.set(this.#keys.account(account.nameKey), JSON.stringify(account), "NX"),
    );
    return reply === "OK";
  }

  async get(nameKey: string): Promise<AccountRecord | undefined> {
    const value = await attempt("accounts.get", () => this.#client.get(this.#keys.account(nameKey)));
    return value === null ? undefined : parse<AccountRecord>(value);
  }

  async update(account: AccountRecord): Promise<boolean> {
    const reply = await attempt("accounts.update", () =>
      this.#client.set(this.#keys.account(account.nameKey), JSON.stringify(account), "XX"),
    );
    return reply === "OK";
  }
}

/** Bans as JSON strings by user, expiring at `until` (PXAT) when it is given. */
export class RedisBans implements BanStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;

  constructor(client: RedisClient, keys: Keys) {
    this.#client = client;
    this.#keys = keys;
  }

  async add(ban: BanRecord): Promise<void> {
    const { until } = ban;
    if (until !== undefined && Number.isNaN(until)) {
      throw new RangeError("bans.add: until must be a time in ms since the epoch, or undefined (forever)");
    }
    const key = this.#keys.ban(ban.userId);
    const json = JSON.stringify(ban);
    await attempt("bans.add", async () => {
      if (until === undefined || until === Number.POSITIVE_INFINITY) await this.#client.set(key, json);
      else if (until <= Date.now()) await this.#client.del(key);
      else await this.#client.set(key, json, "PXAT", Math.ceil(until));
    });
  }

  async get(userId: string): Promise<BanRecord | undefined> {
    const value = await attempt("bans.get", () => this.#client.get(this.#keys.ban(userId)));
    if (value === null) return undefined;
    const ban = parse<BanRecord>(value);
    // The key expires on the Redis clock; this node's clock has the last word.
    if (ban.until !== undefined && ban.until <= Date.now()) return undefined;
    return ban;
  }

  async remove(userId: string): Promise<boolean> {
    const n = await attempt("bans.remove", () => this.#client.del(this.#keys.ban(userId)));
    return n > 0;
  }
}

/**
 * Node liveness: one key per node with the heartbeat's ttl, and one that keeps when that ttl ends
 * for a day past it (`deadSince`). Both keys of a node share its hash tag: one round trip.
 */
export class RedisNodes implements NodeStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;

  constructor(client: RedisClient, keys: Keys) {
    this.#client = client;
    this.#keys = keys;
  }

  async heartbeat(nodeId: string, ttlMs: number): Promise<void> {
    const px = pxOf(ttlMs, "nodes.heartbeat");
    const key = this.#keys.node(nodeId);
    const untilKey = this.#keys.nodeUntil(nodeId);
    await attempt("nodes.heartbeat", async () => {
      if (px === undefined) await this.#client.multi().del(key).del(untilKey).exec();
      else if (px === "inf") await this.#client.multi().set(key, String(Date.now())).del(untilKey).exec();
      else {
        const until = Date.now() + px;
        await this.#client
          .multi()
          .set(key, String(Date.now()), "PX", px)
          .set(untilKey, String(until), "PX", px + NODE_MEMORY_MS)
          .exec();
      }
    });
  }

  async alive(nodeIds: readonly string[]): Promise<Set<string>> {
    const unique = [...new Set(nodeIds)];
    if (unique.length === 0) return new Set();
    // One EXISTS per node, sent together: each key may live on another cluster slot.
    const found = await attempt("nodes.alive", () =>
      Promise.all(unique.map((id) => this.#client.exists(this.#keys.node(id)))),
    );
    return new Set(unique.filter((_, i) => found[i] === 1));
  }

  async remove(nodeId: string): Promise<void> {
    await attempt("nodes.remove", () =>
      this.#client.multi().del(this.#keys.node(nodeId)).del(this.#keys.nodeUntil(nodeId)).exec(),
    );
  }

  async deadSince(nodeIds: readonly string[]): Promise<Map<string, number>> {
    const unique = [...new Set(nodeIds)];
    const out = new Map<string, number>();
    if (unique.length === 0) return out;
    const found = await attempt("nodes.deadSince", () =>
      Promise.all(unique.map((id) => this.#client.get(this.#keys.nodeUntil(id)))),
    );
    const now = Date.now();
    unique.forEach((id, i) => {
      const until = Number(found[i] ?? Number.NaN);
      if (Number.isFinite(until) && until <= now) out.set(id, until);
    });
    return out;
  }
}
