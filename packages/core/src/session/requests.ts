/** One settled promise shared by every idle session's queue. */
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * A session's request order: tasks run one at a time, in the order they were scheduled. When
 * nothing else is queued or running a task starts at once, with no extra turn of the event loop
 * (the relay's hot path). A task's failure is reported and does not stop the queue.
 */
export class RequestQueue {
  /** The last task scheduled (settled when everything before it ran). */
  private last: Promise<void> = RESOLVED;
  /** Tasks queued or running. */
  private depth = 0;
  /** Requests accepted and not answered yet (a queued chat message counts until it is acked). */
  pending = 0;

  constructor(private readonly owner: { reportError(error: unknown): void }) {}

  /** Resolves once every task scheduled so far has run. */
  get tail(): Promise<void> {
    return this.last;
  }

  /** Runs `task` after every task scheduled before it. */
  schedule(task: () => Promise<void>): void {
    this.depth++;
    const run = async (): Promise<void> => {
      try {
        await task();
      } catch (error) {
        this.owner.reportError(error);
      } finally {
        this.depth--;
      }
    };
    this.last = this.depth === 1 ? run() : this.last.then(run);
  }
}
