/** A test body: may return a promise. */
export type TestFn = () => void | Promise<void>;

/**
 * The few functions of a test runner the conformance suites need. vitest, jest and
 * `node:test` all fit, e.g. `import { describe, it, beforeEach, afterEach } from "vitest"`.
 * The suites assert with `node:assert/strict`, so no `expect` is needed.
 */
export interface TestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: TestFn, timeoutMs?: number): void;
  beforeEach(fn: TestFn): void;
  afterEach(fn: TestFn): void;
}
