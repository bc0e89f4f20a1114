import type { EventEmitter } from "eventemitter3";
import type { ErrorCode } from "./errors.js";
import type { HubEvents } from "./events.js";

/** What a node counts since it started (see `hub.stats()`), and the events that go with it. */
export class Counters {
  /** Chat messages relayed. */
  messages = 0;
  /** Error answers, by code. */
  readonly errors: Partial<Record<ErrorCode, number>> = {};
  /** Rate-limited actions, by kind. */
  readonly limited: Record<string, number> = {};

  constructor(private readonly events: EventEmitter<HubEvents>) {}

  /** A chat message was relayed. */
  message(): void {
    this.messages++;
  }

  /** A request was answered with an error frame (event `requestError`). */
  error(code: ErrorCode, sessionId: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    if (this.events.listenerCount("requestError") > 0) this.events.emit("requestError", { code, sessionId });
  }

  /** An action was refused by a limiter (event `rateLimited`). */
  limit(kind: string, sessionId: string | undefined): void {
    this.limited[kind] = (this.limited[kind] ?? 0) + 1;
    if (this.events.listenerCount("rateLimited") > 0) this.events.emit("rateLimited", { kind, sessionId });
  }
}
