import { type Clock, type Store, systemClock, type Timer } from "@whisperchat/core";
import { MemoryAccounts } from "./accounts.js";
import { MemoryBans } from "./bans.js";
import { MemoryBus } from "./bus.js";
import { MemoryExclusions } from "./exclusions.js";
import { MemoryLimiter } from "./limiter.js";
import { MemoryMailbox } from "./mailbox.js";
import { MemoryNodes } from "./nodes.js";
import { MemoryPool } from "./pool.js";
import { MemoryRooms } from "./rooms.js";
import { MemorySessions } from "./sessions.js";

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * How often expired entries are swept, in milliseconds: exclusions, drained limiter buckets,
   * session records, mailboxes, ended bans and node heartbeats. Expired entries are also dropped
   * when read; the sweep bounds what is never read again. The timer is unref'd: it never keeps
   * the process alive.
   * @default 30_000
   */
  sweepIntervalMs?: number;
  /**
   * Most limiter buckets held at once. Past it, the least recently used bucket is dropped (which
   * forgets that key's level), so a flood of new keys cannot grow memory without bound.
   * @default 100_000
   */
  maxBuckets?: number;
  /**
   * The clock used by every expiry (exclusion, session, mailbox and heartbeat ttls, ban ends),
   * limiter buckets and the sweep, in milliseconds since the epoch. Tests can pass a clock they
   * drive.
   * @default Date.now
   */
  now?: () => number;
  /**
   * A clock (core's `Clock`, e.g. `manualClock()` of `@whisperchat/core/testing`) for the expiries
   * and for the sweep's timer: with it, `now` is `clock.now` and the sweep runs on `clock.after`,
   * so a test that moves the clock sweeps as time passes too. The app test kit passes its own.
   * @default none: `now` for the time, the system's timers (unref'd) for the sweep
   */
  clock?: Clock;
  /**
   * Called when a bus handler throws while receiving a message. The message still counts as
   * delivered (`publish` resolves `true`).
   * @default logs the error with `console.error`
   */
  onHandlerError?: (error: unknown, nodeId: string) => void;
}

/** What a memory store holds right now (see {@link MemoryStore.stats}). */
export interface MemoryStoreStats {
  /** Sessions in the waiting pool. */
  waiting: number;
  /** Open rooms. */
  rooms: number;
  /** Excluded pairs, including expired ones not yet swept. */
  exclusions: number;
  /** Limiter buckets, including drained ones not yet swept. */
  buckets: number;
  /** Nodes subscribed to the bus. */
  subscribers: number;
  /** Session records, including expired ones not yet swept. */
  sessions: number;
  /** Non-empty mailboxes, including expired ones not yet swept. */
  mailboxes: number;
  /** Accounts. */
  accounts: number;
  /** Bans, including ended ones not yet swept. */
  bans: number;
  /** Node heartbeats, including expired ones not yet swept. */
  nodes: number;
}

/** A {@link Store} that keeps everything in this process's memory. */
export interface MemoryStore extends Store {
  /** Counts of what the store holds, for metrics and tests. */
  stats(): MemoryStoreStats;
  /** Drops every expired entry and drained bucket now, as the periodic sweep does. */
  sweep(): void;
}

function positive(name: string, value: number | undefined, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value)))) {
    throw new RangeError(
      `createMemoryStore: ${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`,
    );
  }
  return value;
}

function logHandlerError(error: unknown, nodeId: string): void {
  console.error(`@whisperchat/store-memory: a bus handler of node "${nodeId}" threw`, error);
}

/**
 * Creates a store for one process: zero setup, the default and the test store. Pass the same
 * instance to several hubs to run several nodes in one process. Its waiting pool is an rbush
 * index of each waiting session's range.
 *
 * Pool entries are copied into compact columns. Rooms, messages and mailbox frames are kept as
 * given (not copied): do not mutate them after handing them to the store. Session records, accounts and bans are copied on
 * the way in and out, so mutating one never changes what the store holds.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const sweepIntervalMs = positive("sweepIntervalMs", options.sweepIntervalMs, 30_000, false);
  const maxBuckets = positive("maxBuckets", options.maxBuckets, 100_000, true);
  const { clock } = options;
  if (clock !== undefined && options.now !== undefined)
    throw new TypeError("createMemoryStore: give `now` or `clock`, not both (a clock has its own now)");
  const now = clock === undefined ? (options.now ?? Date.now) : () => clock.now();

  const pool = new MemoryPool();
  const rooms = new MemoryRooms();
  const exclusions = new MemoryExclusions(now);
  const limiter = new MemoryLimiter(now, maxBuckets);
  const bus = new MemoryBus(options.onHandlerError ?? logHandlerError);
  const sessions = new MemorySessions(now);
  const mailbox = new MemoryMailbox(now);
  const accounts = new MemoryAccounts();
  const bans = new MemoryBans(now);
  const nodes = new MemoryNodes(now);

  const sweep = (): void => {
    const at = now();
    exclusions.sweep(at);
    limiter.sweep(at);
    sessions.sweep(at);
    mailbox.sweep(at);
    bans.sweep(at);
    nodes.sweep(at);
  };
  // The sweep runs on the given clock, else on the system's timers (unref'd).
  const timers = clock ?? systemClock;
  let sweeping: Timer | undefined;
  const arm = (): void => {
    sweeping = timers.after(sweepIntervalMs, () => {
      if (sweeping === undefined) return; // closed meanwhile
      sweep();
      arm();
    });
  };
  arm();

  return {
    pool,
    rooms,
    exclusions,
    bus,
    limiter,
    sessions,
    mailbox,
    accounts,
    bans,
    nodes,
    stats: () => ({
      waiting: pool.count,
      rooms: rooms.count,
      exclusions: exclusions.count,
      buckets: limiter.count,
      subscribers: bus.count,
      sessions: sessions.count,
      mailboxes: mailbox.count,
      accounts: accounts.count,
      bans: bans.count,
      nodes: nodes.count,
    }),
    sweep,
    async close(): Promise<void> {
      sweeping?.cancel();
      sweeping = undefined;
      pool.clear();
      rooms.clear();
      exclusions.clear();
      limiter.clear();
      bus.clear();
      sessions.clear();
      mailbox.clear();
      accounts.clear();
      bans.clear();
      nodes.clear();
    },
  };
}
