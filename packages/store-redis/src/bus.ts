import type { BusMessage, BusStore } from "@whisperchat/core";
import type { Keys } from "./keys.js";
import { attempt, isCluster, type RedisClient, storeError } from "./redis.js";

/** Which pub/sub the bus uses: sharded (SPUBLISH/SSUBSCRIBE, Redis 7) or classic. */
export type PubSubMode = "sharded" | "classic";

export interface BusOptions {
  pubsub: PubSubMode | "auto";
  onHandlerError: (error: unknown, nodeId: string) => void;
  onError: (error: unknown) => void;
}

interface Subscription {
  readonly nodeId: string;
  readonly handler: (message: BusMessage) => void;
}

/**
 * Routing between nodes: node `id` listens on the channel `<prefix>bus:{id}`. Messages are
 * JSON (a relay batch is a JSON array of messages); `publish` resolves with whether Redis handed the message to at least one subscriber.
 * One connection publishes (the user's client, in call order), and one duplicated connection,
 * created on the first `subscribe`, receives for every node of this store.
 */
export class RedisBus implements BusStore {
  readonly #client: RedisClient;
  readonly #keys: Keys;
  readonly #options: BusOptions;
  /** channel → subscription. */
  readonly #subscriptions = new Map<string, Subscription>();
  /** Channels whose unsubscribe failed (Redis was down): retried when the connection is back. */
  readonly #stale = new Set<string>();
  #subscriber: RedisClient | undefined;
  #mode: PubSubMode | undefined;
  #detecting: Promise<PubSubMode> | undefined;
  #closed = false;

  constructor(client: RedisClient, keys: Keys, options: BusOptions) {
    this.#client = client;
    this.#keys = keys;
    this.#options = options;
    if (options.pubsub !== "auto") this.#mode = options.pubsub;
  }

  /** The pub/sub in use: sharded when the server has SPUBLISH, unless set by the options. */
  async mode(): Promise<PubSubMode> {
    if (this.#mode !== undefined) return this.#mode;
    this.#detecting ??= this.#client.call("COMMAND", "INFO", "SPUBLISH").then(
      (reply) => {
        const known = Array.isArray(reply) && reply.length > 0 && Array.isArray(reply[0]);
        if (!known && isCluster(this.#client)) {
          throw new Error("Redis Cluster needs sharded pub/sub (SPUBLISH, Redis 7 or later)");
        }
        this.#mode = known ? "sharded" : "classic";
        return this.#mode;
      },
      (error: unknown) => {
        this.#detecting = undefined; // try again on the next call
        throw error;
      },
    );
    return this.#detecting;
  }

  /** The pub/sub in use, when already known (set by the options or detected). */
  knownMode(): PubSubMode | undefined {
    return this.#mode;
  }

  async subscribe(nodeId: string, handler: (message: BusMessage) => void): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error("bus.subscribe: the store is closed");
    const channel = this.#keys.bus(nodeId);
    if (this.#subscriptions.has(channel)) {
      throw new Error(
        `bus.subscribe: node "${nodeId}" is already subscribed on this store; give each hub its own nodeId`,
      );
    }
    const subscription: Subscription = { nodeId, handler };
    this.#subscriptions.set(channel, subscription);
    this.#stale.delete(channel);
    try {
      const mode = await this.mode();
      const subscriber = this.#ensureSubscriber();
      await (mode === "sharded" ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel));
    } catch (error) {
      if (this.#subscriptions.get(channel) === subscription) this.#subscriptions.delete(channel);
      throw storeError("bus.subscribe", error);
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      if (this.#subscriptions.get(channel) !== subscription) return;
      this.#subscriptions.delete(channel);
      await this.#unsubscribe(channel);
    };
  }

  publish(nodeId: string, message: BusMessage): Promise<boolean> {
    return this.publishAll(nodeId, [message]);
  }

  /** Publishes messages as one delivery (a JSON array when more than one; see `#deliver`). */
  publishAll(nodeId: string, messages: readonly BusMessage[]): Promise<boolean> {
    const channel = this.#keys.bus(nodeId);
    const payload = JSON.stringify(messages.length === 1 ? messages[0] : messages);
    // Without an await when the mode is known, so that publishes go out in call order.
    if (this.#mode !== undefined) return this.#send(this.#mode, channel, payload);
    return attempt("bus.publish", () => this.mode()).then((mode) => this.#send(mode, channel, payload));
  }

  async #send(mode: PubSubMode, channel: string, payload: string): Promise<boolean> {
    const receivers = await attempt("bus.publish", () =>
      mode === "sharded" ? this.#client.spublish(channel, payload) : this.#client.publish(channel, payload),
    );
    return Number(receivers) > 0;
  }

  async #unsubscribe(channel: string): Promise<void> {
    const subscriber = this.#subscriber;
    if (subscriber === undefined) return;
    try {
      const mode = await this.mode();
      await (mode === "sharded" ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel));
    } catch (error) {
      // The connection would subscribe it again when it comes back: undo that then.
      this.#stale.add(channel);
      throw storeError("bus.unsubscribe", error);
    }
  }

  #ensureSubscriber(): RedisClient {
    if (this.#subscriber !== undefined) return this.#subscriber;
    const client = this.#client;
    // On a cluster, one sharded subscriber per master, so that each SSUBSCRIBE goes to the shard
    // of its channel. On one server, commands queue while connecting: SSUBSCRIBE is sent once
    // the connection is ready, and still fails after the client's maxRetriesPerRequest when
    // Redis is unreachable.
    const subscriber = isCluster(client)
      ? client.duplicate([], { shardedSubscribers: true })
      : client.duplicate({ enableOfflineQueue: true });
    subscriber.on("error", (error: unknown) => this.#options.onError(error));
    subscriber.on("ready", () => {
      for (const channel of this.#stale) {
        if (this.#subscriptions.has(channel)) continue;
        this.#stale.delete(channel);
        this.#unsubscribe(channel).catch(() => {});
      }
    });
    const deliver = (channel: string, payload: string): void => this.#deliver(channel, payload);
    subscriber.on("smessage", deliver);
    subscriber.on("message", deliver);
    this.#subscriber = subscriber;
    return subscriber;
  }

  #deliver(channel: string, payload: string): void {
    const subscription = this.#subscriptions.get(channel);
    if (subscription === undefined) return;
    let parsed: BusMessage | BusMessage[];
    try {
      parsed = JSON.parse(payload) as BusMessage | BusMessage[];
    } catch (error) {
      this.#options.onHandlerError(error, subscription.nodeId);
      return;
    }
    // A relay batch arrives as one array (see relay.ts); the handler gets its messages in order.
    if (!Array.isArray(parsed)) this.#handle(subscription, parsed);
    else for (const message of parsed) this.#handle(subscription, message);
  }

  #handle(subscription: Subscription, message: BusMessage): void {
    try {
      subscription.handler(message);
    } catch (error) {
      this.#options.onHandlerError(error, subscription.nodeId);
    }
  }

  /** Closes the subscriber connection (never the user's client). */
  close(): void {
    this.#closed = true;
    this.#subscriptions.clear();
    this.#stale.clear();
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
  }
}
