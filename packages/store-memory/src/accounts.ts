import type { AccountRecord, AccountStore } from "@whisperchat/core";

/** A copy that shares nothing mutable with `account` (its `roles` is copied too). */
function copy(account: AccountRecord): AccountRecord {
  return { ...account, roles: [...account.roles] };
}

/**
 * Accounts by normalised name. Every method does its work synchronously before returning its
 * promise, so of several concurrent `create`s of one name exactly one succeeds. Records are
 * copied on the way in and out. Accounts never expire: they last as long as the process.
 */
export class MemoryAccounts implements AccountStore {
  readonly #byName = new Map<string, AccountRecord>();

  async create(account: AccountRecord): Promise<boolean> {
    if (this.#byName.has(account.nameKey)) return false;
    this.#byName.set(account.nameKey, copy(account));
    return true;
  }

  async get(nameKey: string): Promise<AccountRecord | undefined> {
    const account = this.#byName.get(nameKey);
    return account === undefined ? undefined : copy(account);
  }

  async update(account: AccountRecord): Promise<boolean> {
    if (!this.#byName.has(account.nameKey)) return false;
    this.#byName.set(account.nameKey, copy(account));
    return true;
  }

  /** How many accounts are held. */
  get count(): number {
    return this.#byName.size;
  }

  clear(): void {
    this.#byName.clear();
  }
}
