import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createMemoryStore } from "@whisperchat/store-memory";
import type { CryptoKey, JWK, JWTPayload } from "jose";
import { base64url, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Handshake } from "../connection.js";
import { WhisperError } from "../errors.js";
import { createWhisper } from "../hub.js";
import { createJwtAuth, type JwtAuth } from "./jwt.js";

const SECRET = "a-test-secret-that-is-long-enough-for-hs256";
const SECRET_512 = "x".repeat(64);
const NOW = Date.UTC(2030, 0, 1);
const NOW_SEC = NOW / 1000;
/** When a token from `token()` expires, in ms. */
const EXP_MS = (NOW_SEC + 600) * 1000;
const handshake: Handshake = { transport: "test", headers: {}, params: {}, remoteAddress: "127.0.0.1" };

type KeyLike = Uint8Array | CryptoKey;

async function token(
  key: KeyLike,
  claims: JWTPayload = {},
  { alg = "HS256", kid, exp = NOW_SEC + 600 }: { alg?: string; kid?: string; exp?: number | null } = {},
): Promise<string> {
  const jwt = new SignJWT({ sub: "u1", name: "Alice", roles: ["member"], ...claims })
    .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
    .setIssuedAt(NOW_SEC);
  if (exp !== null) jwt.setExpirationTime(exp);
  return jwt.sign(key);
}

const secretKey = new TextEncoder().encode(SECRET);

function secretAuth(extra: Parameters<typeof createJwtAuth>[0] = {}): JwtAuth {
  return createJwtAuth({ secret: SECRET, now: () => NOW, ...extra });
}

async function refusal(promise: Promise<unknown>): Promise<WhisperError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WhisperError);
  return error as WhisperError;
}

async function expectUnauthorized(promise: Promise<unknown>, message: RegExp): Promise<WhisperError> {
  const error = await refusal(promise);
  expect(error.code).toBe("unauthorized");
  expect(error.message).toMatch(message);
  return error;
}

describe("createJwtAuth with a shared secret", () => {
  it("resolves the identity from sub, name and roles, with the expiry in ms", async () => {
    const auth = secretAuth();
    const result = await auth.verify(await token(secretKey));
    expect(result.identity).toEqual({ userId: "u1", name: "Alice", roles: ["member"], expiresAt: EXP_MS });
    expect(result.expiresAt).toBe((NOW_SEC + 600) * 1000);
    expect(await auth.authenticate(handshake, await token(secretKey))).toEqual(result.identity);
  });

  it("resolves null without a token (or with an empty one): the hub decides about guests", async () => {
    const auth = secretAuth();
    expect(await auth.authenticate(handshake, undefined)).toBeNull();
    expect(await auth.authenticate(handshake, "")).toBeNull();
  });

  it("reauthenticate resolves the fresh token's identity and expiry, and refuses bad tokens", async () => {
    const auth = secretAuth();
    const current = { userId: "u1", name: "Alice", roles: [], expiresAt: NOW + 1000 };
    const fresh = await token(secretKey, {}, { exp: NOW_SEC + 3600 });
    expect(await auth.reauthenticate(fresh, current)).toMatchObject({
      userId: "u1",
      expiresAt: NOW + 3_600_000,
    });
    const stale = await token(secretKey, {}, { exp: NOW_SEC - 60 });
    await expectUnauthorized(Promise.resolve(auth.reauthenticate(stale, current)), /expired/);
  });

  it("refuses garbage as malformed", async () => {
    const auth = secretAuth();
    for (const garbage of ["garbage", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30"]) {
      const error = await expectUnauthorized(auth.verify(garbage), /malformed/);
      expect(error.cause).toBeDefined();
    }
    await expectUnauthorized(Promise.resolve(auth.authenticate(handshake, "garbage")), /malformed/);
  });

  it("refuses a token signed with another key", async () => {
    const other = new TextEncoder().encode(`${SECRET}-but-another-one`);
    await expectUnauthorized(secretAuth().verify(await token(other)), /bad token signature/);
  });

  it("refuses an expired token, allowing the clock tolerance", async () => {
    const auth = secretAuth();
    await expectUnauthorized(auth.verify(await token(secretKey, {}, { exp: NOW_SEC - 10 })), /expired/);
    // 3 s late is within the default 5 s tolerance.
    expect((await auth.verify(await token(secretKey, {}, { exp: NOW_SEC - 3 }))).identity.userId).toBe("u1");
    const strict = secretAuth({ clockToleranceSec: 0 });
    await expectUnauthorized(strict.verify(await token(secretKey, {}, { exp: NOW_SEC - 3 })), /expired/);
  });

  it("refuses a token that is not yet valid (nbf)", async () => {
    await expectUnauthorized(
      secretAuth().verify(await token(secretKey, { nbf: NOW_SEC + 60 })),
      /not yet valid/,
    );
    expect((await secretAuth().verify(await token(secretKey, { nbf: NOW_SEC + 2 }))).identity.userId).toBe(
      "u1",
    );
  });

  it("refuses a wrong or missing issuer", async () => {
    const auth = secretAuth({ issuer: ["https://issuer.example", "other"] });
    expect((await auth.verify(await token(secretKey, { iss: "other" }))).identity.userId).toBe("u1");
    await expectUnauthorized(auth.verify(await token(secretKey, { iss: "https://evil.example" })), /issuer/);
    await expectUnauthorized(auth.verify(await token(secretKey)), /issuer/);
  });

  it("refuses a wrong or missing audience", async () => {
    const auth = secretAuth({ audience: "chat" });
    expect((await auth.verify(await token(secretKey, { aud: ["web", "chat"] }))).identity.userId).toBe("u1");
    await expectUnauthorized(auth.verify(await token(secretKey, { aud: "billing" })), /audience/);
    await expectUnauthorized(auth.verify(await token(secretKey)), /audience/);
  });

  it('refuses an unsecured token (alg "none")', async () => {
    const header = base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }));
    const payload = base64url.encode(JSON.stringify({ sub: "admin", roles: ["admin"], exp: NOW_SEC + 600 }));
    const auth = secretAuth();
    await expectUnauthorized(auth.verify(`${header}.${payload}.`), /algorithm not allowed/);
    // Even with a signature part attached.
    await expectUnauthorized(auth.verify(`${header}.${payload}.c2ln`), /algorithm not allowed/);
  });

  it("refuses an algorithm that is not configured, even with the right secret", async () => {
    const auth = createJwtAuth({ secret: SECRET_512, now: () => NOW });
    const hs512 = await token(new TextEncoder().encode(SECRET_512), {}, { alg: "HS512" });
    await expectUnauthorized(auth.verify(hs512), /algorithm not allowed/);
    const both = createJwtAuth({ secret: SECRET_512, algorithms: ["HS256", "HS512"], now: () => NOW });
    expect((await both.verify(hs512)).identity.userId).toBe("u1");
  });

  it("refuses an RS256 token when the server expects HS256", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    await expectUnauthorized(
      secretAuth().verify(await token(privateKey, {}, { alg: "RS256" })),
      /algorithm not allowed/,
    );
  });

  it("refuses a token without exp unless requireExpiry is false", async () => {
    const noExp = await token(secretKey, {}, { exp: null });
    await expectUnauthorized(secretAuth().verify(noExp), /no expiry/);
    const lax = secretAuth({ requireExpiry: false });
    expect(await lax.verify(noExp)).toMatchObject({ identity: { userId: "u1" }, expiresAt: undefined });
  });

  it("refuses a token older than maxTokenAgeSec", async () => {
    const auth = createJwtAuth({ secret: SECRET, maxTokenAgeSec: 60, now: () => NOW + 120_000 });
    await expectUnauthorized(auth.verify(await token(secretKey, {}, { exp: NOW_SEC + 600 })), /too old/);
    const fresh = createJwtAuth({ secret: SECRET, maxTokenAgeSec: 60, now: () => NOW + 30_000 });
    expect((await fresh.verify(await token(secretKey))).identity.userId).toBe("u1");
  });

  it("maps claims: name falls back to the user id, roles must be strings, sub is required", async () => {
    const auth = secretAuth();
    expect(
      (await auth.verify(await token(secretKey, { name: undefined, roles: undefined }))).identity,
    ).toEqual({
      userId: "u1",
      name: "u1",
      roles: [],
      expiresAt: EXP_MS,
    });
    expect((await auth.verify(await token(secretKey, { name: "   " }))).identity.name).toBe("u1");
    await expectUnauthorized(
      auth.verify(await token(secretKey, { roles: "admin" })),
      /roles must be an array/,
    );
    await expectUnauthorized(
      auth.verify(await token(secretKey, { roles: ["a", 1] })),
      /roles must be an array/,
    );
    await expectUnauthorized(auth.verify(await token(secretKey, { name: 42 })), /name must be a string/);
    await expectUnauthorized(auth.verify(await token(secretKey, { sub: undefined })), /no user id/);
  });

  it("maps custom claims, including nested paths and dotted names", async () => {
    const auth = secretAuth({
      claims: { userId: "uid", name: "https://example.com/name", roles: ["realm_access", "roles"] },
    });
    const t = await token(secretKey, {
      uid: "u9",
      "https://example.com/name": "Bob",
      realm_access: { roles: ["admin"] },
    });
    expect((await auth.verify(t)).identity).toEqual({
      userId: "u9",
      name: "Bob",
      roles: ["admin"],
      expiresAt: EXP_MS,
    });
  });

  it("signs tokens it verifies, with issuer, audience and expiry", async () => {
    const auth = secretAuth({ issuer: "demo", audience: "chat", tokenTtlSec: 120 });
    expect(auth.canSign).toBe(true);
    const signed = await auth.sign(
      { userId: "u2", name: "Carol", roles: ["admin"] },
      { claims: { extra: 1 } },
    );
    expect(signed.expiresAt).toBe(NOW + 120_000);
    const verified = await auth.verify(signed.token);
    expect(verified.identity).toEqual({
      userId: "u2",
      name: "Carol",
      roles: ["admin"],
      expiresAt: NOW + 120_000,
    });
    expect(verified.payload).toMatchObject({ iss: "demo", aud: "chat", extra: 1, iat: NOW_SEC });
    const short = await auth.sign({ userId: "u2", name: "Carol", roles: [] }, { expiresInSec: 5 });
    expect(short.expiresAt).toBe(NOW + 5000);
  });

  it("a token signed late in a second still lives its whole lifetime (exp rounded up)", async () => {
    const late = secretAuth({ now: () => NOW + 999, clockToleranceSec: 0 });
    const signed = await late.sign({ userId: "u2", name: "Carol", roles: [] }, { expiresInSec: 1 });
    expect(signed.expiresAt).toBe(NOW + 2000);
    const verified = await late.verify(signed.token);
    expect(verified.payload).toMatchObject({ iat: NOW_SEC, exp: NOW_SEC + 2 });
  });

  it("rejects configuration mistakes at once", () => {
    expect(() => createJwtAuth({})).toThrow(TypeError);
    expect(() => createJwtAuth({ secret: "short" })).toThrow(/at least 32 bytes/);
    expect(() => createJwtAuth({ secret: SECRET, algorithms: ["HS512"] })).toThrow(/at least 64 bytes/);
    expect(() => createJwtAuth({ secret: SECRET, algorithms: ["RS256"] })).toThrow(
      /cannot be used with a secret/,
    );
    expect(() => createJwtAuth({ secret: SECRET, jwks: { keys: [] } })).toThrow(/one key source/);
    expect(() => createJwtAuth({ publicKey: "not a pem", algorithms: ["RS256"] })).toThrow(
      /not a valid public key/,
    );
    expect(() => createJwtAuth({ jwksUrl: "http://keys.example/jwks.json", algorithms: ["RS256"] })).toThrow(
      /https/,
    );
  });
});

describe("createJwtAuth with public keys", () => {
  let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
  let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
  let rsaPem: string;

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256", { extractable: true });
    ec = await generateKeyPair("ES256", { extractable: true });
    rsaPem = await exportSPKI(rsa.publicKey);
  });

  it("requires algorithms with a key: never taken from the token", () => {
    expect(() => createJwtAuth({ publicKey: rsaPem })).toThrow(/algorithms.*is required/);
    expect(() => createJwtAuth({ publicKey: rsaPem, algorithms: ["HS256"] })).toThrow(
      /cannot be used with a key/,
    );
  });

  it("verifies with a PEM public key", async () => {
    const auth = createJwtAuth({ publicKey: rsaPem, algorithms: ["RS256"], now: () => NOW });
    expect(auth.canSign).toBe(false);
    expect((await auth.verify(await token(rsa.privateKey, {}, { alg: "RS256" }))).identity.userId).toBe("u1");
    const { privateKey: otherKey } = await generateKeyPair("RS256");
    await expectUnauthorized(auth.verify(await token(otherKey, {}, { alg: "RS256" })), /bad token signature/);
    await expect(auth.sign({ userId: "u", name: "u", roles: [] })).rejects.toThrow(TypeError);
  });

  it("refuses an HS256 token signed with the public key as the secret (algorithm confusion)", async () => {
    const auth = createJwtAuth({ publicKey: rsaPem, algorithms: ["RS256"], now: () => NOW });
    const forged = await token(new TextEncoder().encode(rsaPem), {}, { alg: "HS256" });
    await expectUnauthorized(auth.verify(forged), /algorithm not allowed/);
  });

  it("refuses a token whose allowed algorithm does not fit the key", async () => {
    const auth = createJwtAuth({ publicKey: rsaPem, algorithms: ["RS256", "ES256"], now: () => NOW });
    await expectUnauthorized(auth.verify(await token(ec.privateKey, {}, { alg: "ES256" })), /does not fit/);
  });

  it("verifies with a JWK", async () => {
    const jwk: JWK = await exportJWK(ec.publicKey);
    const auth = createJwtAuth({ publicKey: jwk, algorithms: ["ES256"], now: () => NOW });
    expect((await auth.verify(await token(ec.privateKey, {}, { alg: "ES256" }))).identity.userId).toBe("u1");
    await expectUnauthorized(
      auth.verify(await token(rsa.privateKey, {}, { alg: "RS256" })),
      /algorithm not allowed/,
    );
    expect(() => createJwtAuth({ publicKey: { ...jwk, alg: "ES384" }, algorithms: ["ES256"] })).toThrow(
      /not in algorithms/,
    );
  });

  it("signs with a private key and verifies with its public part", async () => {
    const pkcs8 = await exportPKCS8(ec.privateKey);
    const auth = createJwtAuth({ privateKey: pkcs8, algorithms: ["ES256"], keyId: "k1", now: () => NOW });
    const signed = await auth.sign({ userId: "u3", name: "Dan", roles: [] });
    expect((await auth.verify(signed.token)).identity).toMatchObject({
      userId: "u3",
      name: "Dan",
      roles: [],
    });
    const byPublic = createJwtAuth({
      publicKey: await exportJWK(ec.publicKey),
      algorithms: ["ES256"],
      now: () => NOW,
    });
    expect((await byPublic.verify(signed.token)).identity.userId).toBe("u3");
  });

  it("verifies with a local JWKS, choosing the key by kid", async () => {
    const jwks = {
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: "rsa", alg: "RS256" },
        { ...(await exportJWK(ec.publicKey)), kid: "ec", alg: "ES256" },
      ],
    };
    const auth = createJwtAuth({ jwks, algorithms: ["RS256", "ES256"], now: () => NOW });
    expect(
      (await auth.verify(await token(rsa.privateKey, {}, { alg: "RS256", kid: "rsa" }))).identity.userId,
    ).toBe("u1");
    expect(
      (await auth.verify(await token(ec.privateKey, {}, { alg: "ES256", kid: "ec" }))).identity.userId,
    ).toBe("u1");
    await expectUnauthorized(
      auth.verify(await token(ec.privateKey, {}, { alg: "ES256", kid: "unknown" })),
      /no known key/,
    );
    const { privateKey: stranger } = await generateKeyPair("ES256");
    await expectUnauthorized(
      auth.verify(await token(stranger, {}, { alg: "ES256", kid: "ec" })),
      /bad token signature/,
    );
  });
});

describe("createJwtAuth with a remote JWKS", () => {
  let server: Server;
  let url: string;
  let hits = 0;
  let status = 200;
  let keys: { publicKey: CryptoKey; privateKey: CryptoKey };

  beforeAll(async () => {
    keys = await generateKeyPair("ES256", { extractable: true });
    const body = JSON.stringify({
      keys: [{ ...(await exportJWK(keys.publicKey)), kid: "k1", alg: "ES256" }],
    });
    server = createServer((_req, res) => {
      hits++;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(status === 200 ? body : "{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });

  afterEach(() => {
    hits = 0;
    status = 200;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("fetches the key set once and serves later verifications from jose's cache", async () => {
    const auth = createJwtAuth({ jwksUrl: url, algorithms: ["ES256"], now: () => NOW });
    const a = await token(keys.privateKey, { sub: "a" }, { alg: "ES256", kid: "k1" });
    const b = await token(keys.privateKey, { sub: "b" }, { alg: "ES256", kid: "k1" });
    expect((await auth.verify(a)).identity.userId).toBe("a");
    expect((await auth.verify(b)).identity.userId).toBe("b");
    expect(hits).toBe(1);
    // An unknown kid within the cooldown does not refetch.
    await expectUnauthorized(
      auth.verify(await token(keys.privateKey, {}, { alg: "ES256", kid: "k2" })),
      /no known key/,
    );
    expect(hits).toBe(1);
  });

  it("refetches once the cache is older than cacheMaxAge", async () => {
    const auth = createJwtAuth({
      jwksUrl: url,
      algorithms: ["ES256"],
      jwksOptions: { cacheMaxAge: 0 },
      now: () => NOW,
    });
    const t = await token(keys.privateKey, {}, { alg: "ES256", kid: "k1" });
    await auth.verify(t);
    await auth.verify(t);
    expect(hits).toBe(2);
  });

  it("reports a key set that cannot be fetched as internal, not as the client's fault", async () => {
    status = 500;
    const auth = createJwtAuth({ jwksUrl: url, algorithms: ["ES256"], now: () => NOW });
    const error = await refusal(auth.verify(await token(keys.privateKey, {}, { alg: "ES256", kid: "k1" })));
    expect(error.code).toBe("internal");
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/jwks`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const dead = createJwtAuth({ jwksUrl: deadUrl, algorithms: ["ES256"], now: () => NOW });
    const error2 = await refusal(dead.verify(await token(keys.privateKey, {}, { alg: "ES256", kid: "k1" })));
    expect(error2.code).toBe("internal");
  });
});

describe("createJwtAuth in a hub", () => {
  it("admits a valid token with its identity and refuses a bad one with 401", async () => {
    const store = createMemoryStore();
    const auth = secretAuth();
    const hub = createWhisper({ store, authenticate: auth.authenticate, allowGuests: false });
    try {
      const good = await token(secretKey);
      const ok = await hub.admit({ ...handshake, params: { token: good } });
      expect(ok).toMatchObject({ ok: true, identity: { userId: "u1", name: "Alice", roles: ["member"] } });
      const expired = await token(secretKey, {}, { exp: NOW_SEC - 60 });
      expect(await hub.admit({ ...handshake, params: { token: expired } })).toMatchObject({
        ok: false,
        status: 401,
        code: "unauthorized",
        message: "token expired",
      });
      expect(await hub.admit(handshake)).toMatchObject({ ok: false, status: 401 });
    } finally {
      await hub.close();
      await store.close();
    }
  });
});
