import { type BucketState, leakyBucketInPlace } from "../limiter.js";
import type { HubSettings } from "../settings.js";
import type { LimitResult } from "../store.js";

/** The limits a session keeps on its own node (see {@link LocalBuckets}). */
export type LocalLimit = "message" | "request" | "typing" | "auth";

/**
 * A session's leaky buckets that need no store round trip: a session lives on one node at a time
 * (the per-user buckets, shared by every node, are in the store). After a move to another node
 * they start afresh. Each is created on first use, so an idle session costs nothing.
 */
export class LocalBuckets {
  private message: BucketState | undefined;
  private request: BucketState | undefined;
  private typing: BucketState | undefined;
  private auth: BucketState | undefined;

  constructor(private readonly settings: HubSettings) {}

  /** Takes `cost` from a bucket (0 only reads its level). */
  consume(which: LocalLimit, cost: number): LimitResult {
    const { settings } = this;
    const now = settings.now();
    switch (which) {
      case "message":
        this.message ??= { level: 0, at: now };
        return leakyBucketInPlace(this.message, settings.messageRate, cost, now);
      case "request":
        this.request ??= { level: 0, at: now };
        return leakyBucketInPlace(this.request, settings.requestRate, cost, now);
      case "typing":
        this.typing ??= { level: 0, at: now };
        return leakyBucketInPlace(this.typing, settings.typingRate, cost, now);
      case "auth":
        this.auth ??= { level: 0, at: now };
        return leakyBucketInPlace(this.auth, settings.authRate, cost, now);
    }
  }
}
