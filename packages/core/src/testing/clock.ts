import type { Clock, Timer } from "../clock.js";

/** A clock a test moves by hand (see {@link manualClock}). */
export interface ManualClock extends Clock {
  /**
   * Moves time forward by `ms`, running every timer that comes due, in order (the clock reads
   * each timer's time while it runs). Between timers, and at the end, the event loop gets a few
   * turns, so that the work a timer starts (promises, the memory store) is done when this
   * resolves.
   */
  advance(ms: number): Promise<void>;
  /** Timers armed and neither run nor cancelled. */
  readonly pending: number;
}

interface Armed {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * The real `setImmediate`, taken when this module loads: a test that fakes timers later (e.g.
 * `vi.useFakeTimers()`, which fakes `setImmediate` too) must not stop `advance`.
 */
const realSetImmediate = globalThis.setImmediate;

/** Lets the event loop run: pending promise reactions, then I/O callbacks, twice. */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => realSetImmediate(resolve));
}

/**
 * A clock that stands still until `advance` moves it: pass it to `createWhisper({ clock })` (and
 * to `createMemoryStore({ clock })`) to test grace periods, cooldowns, token expiry and
 * rate limits in milliseconds, whatever test runner or fake timers are in use.
 *
 * ```ts
 * const clock = manualClock();
 * const hub = createWhisper({ store: createMemoryStore({ clock }), clock });
 * // ... a client drops
 * await clock.advance(30_000); // its resume grace is over
 * ```
 *
 * @param start The time it starts at, in ms since the epoch. @default 1_800_000_000_000 (2027-01-15)
 */
export function manualClock(start = 1_800_000_000_000): ManualClock {
  if (typeof start !== "number" || !Number.isFinite(start))
    throw new RangeError(
      `manualClock: start must be a finite number of ms since the epoch, got ${String(start)}`,
    );
  let time = start;
  let seq = 0;
  const timers: Armed[] = [];
  const due = (limit: number): Armed | undefined => {
    let best: Armed | undefined;
    for (const t of timers) {
      if (t.cancelled || t.at > limit) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  };
  const drop = (t: Armed): void => {
    const i = timers.indexOf(t);
    if (i >= 0) timers.splice(i, 1);
  };
  return {
    now: () => time,
    after(ms: number, fn: () => void): Timer {
      // As setTimeout: a delay that is not a number runs at once; an infinite one never does.
      const delay = Number.isNaN(ms) ? 0 : Math.max(0, ms);
      const armed: Armed = { at: time + delay, seq: seq++, fn, cancelled: false };
      timers.push(armed);
      return {
        cancel: () => {
          armed.cancelled = true;
          drop(armed);
        },
      };
    },
    async advance(ms: number): Promise<void> {
      if (!Number.isFinite(ms) || ms < 0)
        throw new RangeError(`advance: ms must be a non-negative number, got ${ms}`);
      const target = time + ms;
      await settle();
      for (let next = due(target); next !== undefined; next = due(target)) {
        drop(next);
        time = Math.max(time, next.at);
        next.fn();
        await settle();
      }
      time = target;
      await settle();
    },
    get pending(): number {
      return timers.length;
    },
  };
}
