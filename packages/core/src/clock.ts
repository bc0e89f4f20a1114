/** A timer armed on a {@link Clock}. */
export interface Timer {
  /** Stops the timer; nothing happens if it already ran. */
  cancel(): void;
}

/**
 * Time as the hub sees it: what time it is, and timers. Every grace period, cooldown, expiry,
 * heartbeat and retry of a hub runs on its clock, so a test can replace it with one it moves by
 * hand (`manualClock` in `@whisperchat/core/testing`).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once, `ms` milliseconds from now. Timers never keep the process alive. */
  after(ms: number, fn: () => void): Timer;
}

/** setTimeout holds at most ~24.8 days. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The clock of the machine: `Date.now` and unref'd `setTimeout`s. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, Math.min(Math.max(0, ms), MAX_DELAY_MS));
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};
