import type { EventEmitter } from "eventemitter3";
import type { Identity } from "../connection.js";
import type { Counters } from "../counters.js";
import type { HubEvents, SessionInfo } from "../events.js";
import type { MatchOutcome } from "../matchmaking.js";
import type { Router } from "../router.js";
import type { AuthorizeHook, HubSettings } from "../settings.js";
import type { PoolEntry, Store } from "../store.js";

/**
 * Everything a session needs from its node, and nothing more: sessions depend on this, never on
 * the hub class (docs/design.md, "Parts and seams"). The hub builds one and shares it.
 */
export interface SessionHost {
  /** This node's id (a session's address for routing). */
  readonly nodeId: string;
  readonly store: Store;
  readonly settings: HubSettings;
  /** Where the host app's events go (the hub). */
  readonly events: EventEmitter<HubEvents>;
  /** Routing of room frames, the relay of chat messages, closing rooms. */
  readonly router: Pick<Router, "route" | "relay" | "closeRoom">;
  readonly counters: Counters;
  /** The authorisation hook; `undefined` allows everything. */
  readonly authorize: AuthorizeHook | undefined;
  /** Searches a partner for a session just put in the pool. */
  match(entry: PoolEntry, who: SessionInfo): Promise<MatchOutcome>;
  /** Ends a dead node's session whose grace is over (see `Liveness.endOrphan`). */
  endOrphan(sessionId: string, deadNode: string): Promise<void>;
  /** Checks a token sent with `auth`; resolves the identity it names, or throws `unauthorized`. */
  reauthenticate(token: string, current: Identity): Promise<Identity>;
  /** A message id unique across nodes and restarts. */
  nextMessageId(): string;
  /** The session ended: this node no longer holds it. */
  forget(session: { readonly id: string }): void;
  /** Lets the hub's `close` wait for this clean-up of a session that already left the hub. */
  settle(work: Promise<unknown>): void;
}
