import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseOptions } from "@node-rs/argon2";
import { createMemoryStore, type MemoryStore } from "@whisperchat/store-memory";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  AccountError,
  type AccountErrorCode,
  type AccountsOptions,
  accountNameKey,
  createAccounts,
  normalizeAccountName,
} from "./accounts.js";
import { createJwtAuth } from "./jwt.js";

// Count the hashes the accounts verify against, without changing what argon2 does.
const seen = vi.hoisted(() => ({ verified: [] as string[] }));
vi.mock("@node-rs/argon2", async (importOriginal) => {
  const actual = await importOriginal<typeof import("@node-rs/argon2")>();
  return {
    ...actual,
    verify: (hashed: string | Uint8Array, password: string | Uint8Array) => {
      seen.verified.push(String(hashed));
      return actual.verify(hashed, password);
    },
  };
});

const CHEAP = { memoryCost: 64, timeCost: 1, parallelism: 1 };
const jwt = createJwtAuth({ secret: "accounts-test-secret-of-at-least-32-bytes" });
const PASSWORD = "correct horse battery";

let store: MemoryStore;
beforeEach(() => {
  store = createMemoryStore();
  seen.verified.length = 0;
});
afterEach(async () => {
  await store.close();
});

function accounts(extra: Partial<AccountsOptions> = {}) {
  return createAccounts({ store, jwt, hashOptions: CHEAP, ...extra });
}

async function failure(promise: Promise<unknown>, code: AccountErrorCode): Promise<AccountError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AccountError);
  expect((error as AccountError).code).toBe(code);
  return error as AccountError;
}

describe("register", () => {
  it("creates an account (201) whose token carries its identity", async () => {
    const a = accounts();
    const created = await a.register({ name: "Alice", password: PASSWORD, roles: ["admin"] });
    expect(created).toEqual({ userId: expect.any(String), name: "Alice" });
    const record = await store.accounts.get("alice");
    expect(record).toMatchObject({
      userId: created.userId,
      name: "Alice",
      nameKey: "alice",
      roles: ["admin"],
    });
    expect(record?.passwordHash).toMatch(/^\$argon2id\$v=19\$m=64,t=1,p=1\$/);

    const login = await a.login({ name: "alice", password: PASSWORD, ip: "10.0.0.1" });
    expect(login).toMatchObject({ userId: created.userId, name: "Alice", roles: ["admin"] });
    const verified = await jwt.verify(login.token);
    expect(verified.identity).toEqual({
      userId: created.userId,
      name: "Alice",
      roles: ["admin"],
      expiresAt: login.expiresAt,
    });
    expect(login.expiresAt).toBe(verified.expiresAt);
  });

  it("refuses invalid input with 400", async () => {
    const a = accounts();
    const bad: [unknown, unknown][] = [
      ["al", PASSWORD], // too short
      ["x".repeat(33), PASSWORD], // too long
      ["bad\u0000name", PASSWORD], // control character
      ["<script>", PASSWORD], // characters outside the rules
      ["alice", "short"], // password under 8
      ["alice", "p".repeat(1025)], // password over 1024
      [42, PASSWORD],
      ["alice", undefined],
    ];
    for (const [name, password] of bad) {
      const error = await failure(
        a.register({ name, password } as { name: string; password: string }),
        "invalid_input",
      );
      expect(error.status).toBe(400);
    }
    expect(await store.accounts.get("alice")).toBeUndefined();
  });

  it("accepts names in one script, with digits, spaces and punctuation", async () => {
    const a = accounts();
    for (const name of ["José", "Ана", "李小龙", "Ana-Maria 2", "山田たろう", "Άννα_3"]) {
      expect((await a.register({ name, password: PASSWORD })).name, name).toBe(name);
    }
    // Once NFKC-normalised: decomposed "é" and full-width letters fold into the usual form.
    expect((await a.register({ name: "Rene\u0301e", password: PASSWORD })).name).toBe("Renée");
  });

  it("refuses bidi controls, invisible characters and mixed scripts with invalid_input (400)", async () => {
    const a = accounts();
    const cases: [string, RegExp][] = [
      ["\u202Enimda", /text-direction/],
      ["ab\u200Ecd", /text-direction/],
      ["ab\u2067cd", /text-direction/],
      ["ab\u061Ccd", /text-direction/],
      ["\u200B", /invisible/],
      ["ali\u200Bce", /invisible/],
      ["ali\u200Dce", /invisible/],
      ["ali\u2060ce", /invisible/],
      ["\uFEFFalice", /invisible/],
      ["ali\u00ADce", /invisible/],
      ["alice\uFE0F", /invisible/], // a variation selector: a look-alike of "alice"
      ["\u3164\u3164\u3164", /invisible/], // Hangul fillers
      ["ali\u0441e", /mix scripts/], // Latin with a Cyrillic с
      ["\u0391lice", /mix scripts/], // Latin with a Greek Α
      ["\u3000 \u00A0", /characters/], // empty once normalised and trimmed
      ["\u0301\u0301\u0301", /characters/], // nothing but combining marks
    ];
    for (const [name, message] of cases) {
      const error = await failure(a.register({ name, password: PASSWORD }), "invalid_input");
      expect(error.status).toBe(400);
      expect(error.message, JSON.stringify(name)).toMatch(message);
    }
    expect(await store.accounts.get("alice")).toBeUndefined();
  });

  it("looks no account up under a name it refuses: a mixed-script login finds nothing (401)", async () => {
    const a = accounts();
    await a.register({ name: "alice", password: PASSWORD });
    // An account stored before names were checked this way cannot be logged into either.
    await store.accounts.create({
      userId: "legacy",
      name: "ali\u0441e",
      nameKey: accountNameKey("ali\u0441e"),
      passwordHash: (await store.accounts.get("alice"))!.passwordHash,
      roles: [],
      createdAt: 0,
    });
    seen.verified.length = 0;
    const refused = await failure(a.login({ name: "ali\u0441e", password: PASSWORD }), "invalid_credentials");
    expect(refused.status).toBe(401);
    expect(seen.verified).toHaveLength(1); // the stand-in hash, as for an unknown name
    await expect(a.login({ name: "alice", password: PASSWORD })).resolves.toMatchObject({ name: "alice" });
  });

  it("normalises names: ' Alice ', 'alice' and 'ＡＬＩＣＥ' collide (409)", async () => {
    const a = accounts();
    expect((await a.register({ name: " Alice ", password: PASSWORD })).name).toBe("Alice");
    for (const name of ["alice", "ALICE", "\uFF21\uFF2C\uFF29\uFF23\uFF25"]) {
      const error = await failure(a.register({ name, password: PASSWORD }), "name_taken");
      expect(error.status).toBe(409);
    }
    // The login name is normalised the same way.
    await expect(a.login({ name: "  ALICE", password: PASSWORD })).resolves.toMatchObject({ name: "Alice" });
  });

  it("gives one of two concurrent registrations of a name the account", async () => {
    const a = accounts();
    const results = await Promise.allSettled([
      a.register({ name: "bob", password: PASSWORD }),
      a.register({ name: "Bob", password: PASSWORD }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ code: "name_taken" });
  });

  it("limits registrations per address (429)", async () => {
    const a = accounts({ registerRate: { capacity: 2, ratePerSec: 0.01 } });
    await a.register({ name: "one", password: PASSWORD, ip: "10.0.0.9" });
    await a.register({ name: "two", password: PASSWORD, ip: "10.0.0.9" });
    const error = await failure(
      a.register({ name: "three", password: PASSWORD, ip: "10.0.0.9" }),
      "rate_limited",
    );
    expect(error.status).toBe(429);
    expect(error.retryAfterMs).toBeGreaterThan(0);
    await a.register({ name: "three", password: PASSWORD, ip: "10.0.0.10" });
  });
});

describe("normalisation helpers", () => {
  it("fold case, width and spacing into one key", () => {
    expect(normalizeAccountName("  Anna   Maria ")).toBe("Anna Maria");
    expect(accountNameKey("Straße")).toBe(accountNameKey("STRASSE"));
    expect(accountNameKey("\uFF21lice")).toBe("alice");
  });
});

describe("login", () => {
  it("answers an unknown name and a wrong password alike (401), verifying a hash either way", async () => {
    const a = accounts();
    await a.register({ name: "carol", password: PASSWORD });
    seen.verified.length = 0;
    const wrong = await failure(
      a.login({ name: "carol", password: "not the password" }),
      "invalid_credentials",
    );
    const unknown = await failure(
      a.login({ name: "nobody", password: "not the password" }),
      "invalid_credentials",
    );
    const invalidName = await failure(
      a.login({ name: "x", password: "not the password" }),
      "invalid_credentials",
    );
    expect(wrong.status).toBe(401);
    expect(unknown.message).toBe(wrong.message);
    expect(invalidName.message).toBe(wrong.message);
    // One argon2 verification each, and the stand-in hash has the same parameters as a real one.
    expect(seen.verified).toHaveLength(3);
    const real = parseOptions(seen.verified[0]!);
    const dummy = parseOptions(seen.verified[1]!);
    expect(dummy).toEqual(real);
    expect(seen.verified[1]).not.toBe(seen.verified[0]);
  });

  it("re-hashes a password whose stored parameters differ from the configured ones", async () => {
    await accounts().register({ name: "dave", password: PASSWORD });
    const before = (await store.accounts.get("dave"))!.passwordHash;
    const stronger = accounts({ hashOptions: { memoryCost: 128, timeCost: 2, parallelism: 1 } });
    await stronger.login({ name: "dave", password: PASSWORD });
    const after = (await store.accounts.get("dave"))!.passwordHash;
    expect(after).not.toBe(before);
    expect(parseOptions(after)).toMatchObject({ memoryCost: 128, timeCost: 2, parallelism: 1 });
    // Still verifies, and is left alone now that it matches.
    await stronger.login({ name: "dave", password: PASSWORD });
    expect((await store.accounts.get("dave"))!.passwordHash).toBe(after);
    // A wrong password never re-hashes.
    await failure(accounts().login({ name: "dave", password: "wrong password" }), "invalid_credentials");
    expect((await store.accounts.get("dave"))!.passwordHash).toBe(after);
  });

  it("limits attempts per (name, address) before any password work (429, retryAfterMs)", async () => {
    const a = accounts();
    await a.register({ name: "erin", password: PASSWORD });
    seen.verified.length = 0;
    for (let i = 0; i < 5; i++) {
      await failure(
        a.login({ name: "erin", password: `guess number ${i}`, ip: "10.1.0.1" }),
        "invalid_credentials",
      );
    }
    // Even the right password: this address spent its attempts at this name.
    const limited = await failure(
      a.login({ name: "Erin", password: PASSWORD, ip: "10.1.0.1" }),
      "rate_limited",
    );
    expect(limited.status).toBe(429);
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(seen.verified).toHaveLength(5);
    // The same address at other names, and other addresses at this name, are not affected.
    await a.register({ name: "frank", password: PASSWORD });
    await expect(a.login({ name: "frank", password: PASSWORD, ip: "10.1.0.1" })).resolves.toMatchObject({
      name: "frank",
    });
    await expect(a.login({ name: "erin", password: PASSWORD, ip: "10.1.0.2" })).resolves.toMatchObject({
      name: "erin",
    });
  });

  it("does not let a stranger lock the owner out: the right password passes after others' failures", async () => {
    const a = accounts();
    await a.register({ name: "olga", password: PASSWORD });
    seen.verified.length = 0;
    // A stranger at address B guesses until refused, then moves on to B2, B3...: with the
    // defaults, 5 attempts per (name, address), and the name's back-off fills at 10 failures.
    const answers: AccountErrorCode[] = [];
    let lastLimited: AccountError | undefined;
    for (let b = 1; b <= 4; b++) {
      for (let i = 0; i < 8; i++) {
        const error = await a.login({ name: "olga", password: `guess ${b}.${i}`, ip: `10.9.0.${b}` }).then(
          () => expect.unreachable("a wrong password was accepted"),
          (e: unknown) => e as AccountError,
        );
        expect(error).toBeInstanceOf(AccountError);
        answers.push(error.code);
        if (error.code === "rate_limited") lastLimited = error;
      }
    }
    // The stranger is refused with 429 and a Retry-After...
    expect(lastLimited?.status).toBe(429);
    expect(lastLimited?.retryAfterMs).toBeGreaterThan(0);
    expect(answers.filter((c) => c === "invalid_credentials").length).toBeLessThanOrEqual(10);
    // ...and never made the server verify more than 5 hashes per address.
    expect(seen.verified.length).toBeLessThanOrEqual(4 * 5);
    // A wrong password from a fresh address is answered 429 now that the name is backing off.
    const backOff = await failure(
      a.login({ name: "olga", password: "guess again", ip: "10.9.1.1" }),
      "rate_limited",
    );
    expect(backOff.retryAfterMs).toBeGreaterThan(0);
    // The owner, at address A, with the right password, logs in.
    await expect(a.login({ name: "Olga", password: PASSWORD, ip: "10.8.0.1" })).resolves.toMatchObject({
      name: "olga",
    });
    // A right password also passes from a fresh address the stranger never used.
    await expect(
      a.verifyCredentials({ name: "olga", password: PASSWORD, ip: "10.8.0.2" }),
    ).resolves.toMatchObject({
      name: "olga",
    });
  });

  it("answers a wrong password 429 once the name's failures fill perName, and an unknown name alike", async () => {
    const a = accounts({ loginRate: { perName: { capacity: 2, ratePerSec: 0.01 } } });
    await a.register({ name: "pam", password: PASSWORD });
    for (const name of ["pam", "ghost"]) {
      await failure(a.login({ name, password: "wrong one", ip: "10.7.0.1" }), "invalid_credentials");
      await failure(a.login({ name, password: "wrong two", ip: "10.7.0.2" }), "invalid_credentials");
      const limited = await failure(
        a.login({ name, password: "wrong three", ip: "10.7.0.3" }),
        "rate_limited",
      );
      expect(limited.retryAfterMs).toBeGreaterThan(0);
    }
    await expect(a.login({ name: "pam", password: PASSWORD, ip: "10.7.0.1" })).resolves.toMatchObject({
      name: "pam",
    });
  });

  it("limits attempts at invalid names per address, before hashing", async () => {
    const a = accounts({ loginRate: { perNameAndIp: { capacity: 2, ratePerSec: 0.01 } } });
    seen.verified.length = 0;
    await failure(a.login({ name: "x", password: PASSWORD, ip: "10.6.0.1" }), "invalid_credentials");
    await failure(a.login({ name: "<y>", password: PASSWORD, ip: "10.6.0.1" }), "invalid_credentials");
    await failure(a.login({ name: "z", password: PASSWORD, ip: "10.6.0.1" }), "rate_limited");
    expect(seen.verified).toHaveLength(2);
  });

  it("limits attempts per address across names", async () => {
    const a = accounts({ loginRate: { perIp: { capacity: 3, ratePerSec: 0.01 } } });
    for (const name of ["n1x", "n2x", "n3x"]) {
      await failure(a.login({ name, password: PASSWORD, ip: "10.2.0.1" }), "invalid_credentials");
    }
    await failure(a.login({ name: "n4x", password: PASSWORD, ip: "10.2.0.1" }), "rate_limited");
    await failure(a.login({ name: "n4x", password: PASSWORD, ip: "10.2.0.2" }), "invalid_credentials");
  });

  it("refuses non-string input with 400", async () => {
    const a = accounts();
    await failure(
      a.login({ name: "gina", password: 5 } as unknown as { name: string; password: string }),
      "invalid_input",
    );
  });

  it("works without a signer through verifyCredentials, and takes a sign function", async () => {
    const bare = createAccounts({ store, hashOptions: CHEAP });
    const created = await bare.register({ name: "hank", password: PASSWORD });
    await expect(bare.verifyCredentials({ name: "hank", password: PASSWORD })).resolves.toEqual({
      userId: created.userId,
      name: "hank",
      roles: [],
    });
    await expect(bare.login({ name: "hank", password: PASSWORD })).rejects.toThrow(TypeError);
    const custom = createAccounts({
      store,
      hashOptions: CHEAP,
      tokenTtlSec: 60,
      jwt: async (subject, options) => ({
        token: `t-${subject.userId}-${options?.expiresInSec}`,
        expiresAt: 1,
      }),
    });
    await expect(custom.login({ name: "hank", password: PASSWORD })).resolves.toMatchObject({
      token: `t-${created.userId}-60`,
      expiresAt: 1,
    });
  });

  it("queues argon2 work beyond maxConcurrentHashes and refuses it past maxQueuedHashes", async () => {
    await accounts().register({ name: "jill", password: PASSWORD });
    const a = accounts({ maxConcurrentHashes: 1, maxQueuedHashes: 1 });
    const results = await Promise.allSettled(
      Array.from({ length: 3 }, () => a.login({ name: "jill", password: PASSWORD })),
    );
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({
      code: "rate_limited",
      retryAfterMs: 1000,
    });
    // Once the queue drains, logins go through again.
    await expect(a.login({ name: "jill", password: PASSWORD })).resolves.toMatchObject({ name: "jill" });
  });

  it("keeps the event loop running during 20 concurrent logins with the default (OWASP) parameters", async () => {
    const a = createAccounts({
      store,
      jwt,
      loginRate: {
        perNameAndIp: { capacity: 100, ratePerSec: 1 },
        perName: { capacity: 100, ratePerSec: 1 },
        perIp: { capacity: 100, ratePerSec: 1 },
      },
    });
    await a.register({ name: "ivy", password: PASSWORD });
    expect(parseOptions((await store.accounts.get("ivy"))!.passwordHash)).toMatchObject({
      memoryCost: 19456,
      timeCost: 2,
      parallelism: 1,
    });
    const delay = monitorEventLoopDelay({ resolution: 1 });
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
    }, 5);
    delay.enable();
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => a.login({ name: "ivy", password: PASSWORD, ip: "10.3.0.1" })),
      );
      expect(results).toHaveLength(20);
      for (const r of results) expect(r.name).toBe("ivy");
    } finally {
      delay.disable();
      clearInterval(timer);
    }
    // Hashing on the main thread would run all 20 back to back without letting a timer fire.
    expect(ticks).toBeGreaterThanOrEqual(3);
  });
});
