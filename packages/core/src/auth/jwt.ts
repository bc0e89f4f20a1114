import type { KeyObject, JsonWebKey as NodeJsonWebKey } from "node:crypto";
import { createPrivateKey, createPublicKey } from "node:crypto";
import type { JSONWebKeySet, JWK, JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from "jose";
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, SignJWT } from "jose";
import type { Identity } from "../connection.js";
import { WhisperError } from "../errors.js";
import type { AuthenticateHook, ReauthenticateHook } from "../settings.js";

/** JWS algorithms for a shared secret (HMAC). */
export type JwtSecretAlgorithm = "HS256" | "HS384" | "HS512";

/** JWS algorithms for a public/private key pair. */
export type JwtKeyAlgorithm =
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512"
  | "ES256"
  | "ES384"
  | "ES512"
  | "EdDSA"
  | "Ed25519";

/** A JWS algorithm {@link createJwtAuth} accepts. `none` is never accepted. */
export type JwtAlgorithm = JwtSecretAlgorithm | JwtKeyAlgorithm;

const SECRET_ALGORITHMS: ReadonlySet<string> = new Set<JwtSecretAlgorithm>(["HS256", "HS384", "HS512"]);
const KEY_ALGORITHMS: ReadonlySet<string> = new Set<JwtKeyAlgorithm>([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
]);
/** RFC 7518 section 3.2: an HMAC key at least as long as the hash output. */
const MIN_SECRET_BYTES: Readonly<Record<JwtSecretAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 };

/**
 * Where a claim is read from (and written to by `sign`): a top-level claim name, or a path into
 * nested objects, e.g. `["realm_access", "roles"]`. A string is always one claim name, even
 * when it contains dots (namespaced claims such as `"https://example.com/roles"`).
 */
export type ClaimPath = string | readonly string[];

/** Which token claims make up the {@link Identity}. */
export interface JwtClaimMapping {
  /** The user id: a non-empty string claim, required. @default "sub" */
  userId?: ClaimPath;
  /**
   * The display name: a string claim. When it is missing or blank, the user id is used as the
   * name; a non-string value refuses the token. @default "name"
   */
  name?: ClaimPath;
  /** The roles: an array of strings. Missing means no roles; any other type refuses the token. @default "roles" */
  roles?: ClaimPath;
}

/** Options of the remote key set (passed to jose's `createRemoteJWKSet`). */
export interface RemoteJwksOptions {
  /** Timeout of one fetch of the key set, in ms. @default 5000 */
  timeoutDuration?: number;
  /** After a fetch, how long a token with an unknown `kid` waits before it may trigger another fetch, in ms. @default 30000 */
  cooldownDuration?: number;
  /** How long a fetched key set is used before it is fetched again, in ms. @default 600000 */
  cacheMaxAge?: number;
  /** Extra headers sent with the fetch. @default none */
  headers?: Record<string, string>;
}

/**
 * Options of {@link createJwtAuth}. Give exactly one key source for verification: `secret`,
 * `publicKey`, `jwks` or `jwksUrl`; or a `privateKey` alone (verification then uses its public
 * part). `privateKey` may accompany `publicKey`, `jwks` or `jwksUrl` to let {@link JwtAuth.sign}
 * issue tokens.
 */
export interface JwtAuthOptions {
  /**
   * A shared HMAC secret (a string is used as its UTF-8 bytes). It must be at least as long as
   * the hash of each configured algorithm: 32 bytes for HS256, 48 for HS384, 64 for HS512.
   * Enables {@link JwtAuth.sign}. @default none
   */
  secret?: string | Uint8Array;
  /** A public key: a PEM string (SPKI `PUBLIC KEY`, or an X.509 certificate) or a public JWK. @default none */
  publicKey?: string | JWK;
  /** A private key, to sign tokens: a PEM string (PKCS#8) or a private JWK. @default none */
  privateKey?: string | JWK;
  /** A local JSON Web Key Set (`{ keys: [...] }`); the token's `kid` and `alg` select the key. @default none */
  jwks?: JSONWebKeySet;
  /**
   * The URL of a remote JSON Web Key Set, fetched and cached by jose. Must be `https:`, except
   * for `localhost`, `127.0.0.1` and `::1`. @default none
   */
  jwksUrl?: string | URL;
  /** Fetching and caching of `jwksUrl`. @default jose's defaults (see {@link RemoteJwksOptions}) */
  jwksOptions?: RemoteJwksOptions;
  /**
   * The accepted algorithms. The token's `alg` header must be one of them; it never chooses the
   * algorithm by itself. Required with keys; with `secret` only HMAC algorithms are allowed.
   * The first one is used by {@link JwtAuth.sign}.
   * @default ["HS256"] with `secret`; required otherwise
   */
  algorithms?: readonly JwtAlgorithm[];
  /** The accepted issuers (`iss`); `sign` writes the first. @default any issuer, and `sign` writes none */
  issuer?: string | readonly string[];
  /** The accepted audiences (`aud`): the token must name at least one; `sign` writes them all. @default any audience */
  audience?: string | readonly string[];
  /** Clock skew allowed when checking `exp`, `nbf` and `iat`, in seconds. @default 5 */
  clockToleranceSec?: number;
  /** Whether a token without `exp` is refused. @default true */
  requireExpiry?: boolean;
  /** Refuse tokens issued (`iat`) longer ago than this, in seconds; tokens then need `iat`. @default no limit */
  maxTokenAgeSec?: number;
  /** Which claims make up the identity. @default { userId: "sub", name: "name", roles: "roles" } */
  claims?: JwtClaimMapping;
  /** Lifetime of tokens from {@link JwtAuth.sign}, in seconds. @default 3600 */
  tokenTtlSec?: number;
  /** The `kid` header of tokens from {@link JwtAuth.sign}. @default none */
  keyId?: string;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/** A verified token. */
export interface VerifiedToken {
  /** The identity from the token's claims (never a guest), with `expiresAt` when the token has `exp`. */
  identity: Identity;
  /** When the token expires (`exp`), in ms since the epoch; `undefined` when it has no `exp`. */
  expiresAt: number | undefined;
  /** Every claim of the token, for app-specific ones. */
  payload: JWTPayload;
}

/** What a token is issued for. */
export type TokenSubject = Pick<Identity, "userId" | "name" | "roles">;

/** Options of one {@link JwtAuth.sign} call. */
export interface SignTokenOptions {
  /**
   * The token's lifetime, in seconds: `exp` is the first whole second at least this long
   * after signing, so the token lives between `expiresInSec` and `expiresInSec + 1` seconds.
   * @default the `tokenTtlSec` option
   */
  expiresInSec?: number;
  /** Extra claims; the identity claims and registered claims (`iss`, `aud`, `iat`, `exp`) win over them. @default none */
  claims?: Record<string, unknown>;
}

/** An issued token. */
export interface SignedToken {
  token: string;
  /** When it expires, in ms since the epoch. */
  expiresAt: number;
}

/** Issues a token for a user: {@link JwtAuth.sign}, or an app's own. */
export type SignTokenFunction = (subject: TokenSubject, options?: SignTokenOptions) => Promise<SignedToken>;

/** The JWT authentication of {@link createJwtAuth}. */
export interface JwtAuth {
  /**
   * The hook for `createWhisper({ authenticate })`: no token (or an empty one) resolves `null`
   * (a guest, when the hub allows guests); a valid token resolves its identity; anything else
   * throws a `WhisperError` with code `unauthorized`. When a remote key set cannot be fetched it
   * throws code `internal` (the hub answers 503: try again).
   */
  readonly authenticate: AuthenticateHook;
  /**
   * The hook for `createWhisper({ reauthenticate })`: verifies a token sent with the `auth` frame
   * and resolves its identity (with the new `expiresAt`); rejects like {@link JwtAuth.verify}.
   * The hub checks that it names the session's user.
   */
  readonly reauthenticate: ReauthenticateHook;
  /**
   * Verifies a token. Rejects with a `WhisperError`: `unauthorized` with a message naming what
   * failed (expired, not yet valid, issuer, audience, signature, algorithm, malformed, claims),
   * the jose error as `cause`; or `internal` when a remote key set cannot be fetched.
   */
  verify(token: string): Promise<VerifiedToken>;
  /** Whether {@link JwtAuth.sign} works: a `secret` or a `privateKey` is configured. */
  readonly canSign: boolean;
  /**
   * Issues a token for the subject, with `iat`, `exp`, and `iss`/`aud` when configured, signed
   * with the first configured algorithm. Throws a `TypeError` when no secret or private key is
   * configured.
   */
  sign: SignTokenFunction;
}

const DEFAULT_CLAIMS = { userId: "sub", name: "name", roles: "roles" } as const;

/**
 * Creates a JWT authentication hook built on jose. Configuration mistakes (no key, a key and a
 * secret, a missing or unsuitable `algorithms`, a short secret, an unparsable key) throw a
 * `TypeError` at once.
 *
 * @example
 * const jwt = createJwtAuth({ secret: process.env.JWT_SECRET, issuer: "my-app" });
 * const hub = createWhisper({ store, authenticate: jwt.authenticate });
 */
export function createJwtAuth(options: JwtAuthOptions): JwtAuth {
  const sources = (["secret", "publicKey", "jwks", "jwksUrl"] as const).filter(
    (k) => options[k] !== undefined,
  );
  if (sources.length > 1) {
    throw new TypeError(`createJwtAuth: give one key source, not ${sources.join(" and ")}`);
  }
  if (sources.length === 0 && options.privateKey === undefined) {
    throw new TypeError("createJwtAuth: give a key source: secret, publicKey, jwks, jwksUrl or privateKey");
  }
  if (options.secret !== undefined && options.privateKey !== undefined) {
    throw new TypeError("createJwtAuth: a secret and a privateKey cannot be combined");
  }
  const usesSecret = options.secret !== undefined;
  const algorithms = checkAlgorithms(options.algorithms, usesSecret);
  const clockToleranceSec = options.clockToleranceSec ?? 5;
  if (!(Number.isFinite(clockToleranceSec) && clockToleranceSec >= 0)) {
    throw new TypeError("createJwtAuth: clockToleranceSec must be a non-negative number");
  }
  const maxTokenAgeSec = options.maxTokenAgeSec;
  if (maxTokenAgeSec !== undefined && !(Number.isFinite(maxTokenAgeSec) && maxTokenAgeSec >= 0)) {
    throw new TypeError("createJwtAuth: maxTokenAgeSec must be a non-negative number");
  }
  const tokenTtlSec = options.tokenTtlSec ?? 3600;
  checkTtl(tokenTtlSec, "tokenTtlSec");
  const now = options.now ?? Date.now;
  const claims = {
    userId: options.claims?.userId ?? DEFAULT_CLAIMS.userId,
    name: options.claims?.name ?? DEFAULT_CLAIMS.name,
    roles: options.claims?.roles ?? DEFAULT_CLAIMS.roles,
  };
  for (const [what, path] of Object.entries(claims)) {
    if ((typeof path === "string" ? [path] : path).some((p) => typeof p !== "string" || p === "")) {
      throw new TypeError(`createJwtAuth: claims.${what} must be a claim name or a non-empty path of names`);
    }
  }

  let secret: Uint8Array | undefined;
  let signingKey: KeyObject | Uint8Array | undefined;
  let verificationKey: KeyObject | Uint8Array | JWTVerifyGetKey;
  if (options.secret !== undefined) {
    secret = typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret;
    for (const alg of algorithms) {
      const min = MIN_SECRET_BYTES[alg as JwtSecretAlgorithm];
      if (secret.byteLength < min) {
        throw new TypeError(`createJwtAuth: ${alg} needs a secret of at least ${min} bytes`);
      }
    }
    signingKey = secret;
    verificationKey = secret;
  } else {
    let privateKey: KeyObject | undefined;
    if (options.privateKey !== undefined) {
      privateKey = importKey(options.privateKey, "private", algorithms);
      signingKey = privateKey;
    }
    if (options.publicKey !== undefined) {
      verificationKey = importKey(options.publicKey, "public", algorithms);
    } else if (options.jwks !== undefined) {
      try {
        verificationKey = createLocalJWKSet(options.jwks);
      } catch (cause) {
        throw new TypeError("createJwtAuth: jwks is not a valid JSON Web Key Set", { cause });
      }
    } else if (options.jwksUrl !== undefined) {
      verificationKey = remoteKeySet(options.jwksUrl, options.jwksOptions);
    } else {
      verificationKey = createPublicKey(privateKey!);
    }
  }

  const issuers =
    options.issuer === undefined
      ? undefined
      : typeof options.issuer === "string"
        ? [options.issuer]
        : [...options.issuer];
  const audiences =
    options.audience === undefined
      ? undefined
      : typeof options.audience === "string"
        ? [options.audience]
        : [...options.audience];
  if (issuers?.length === 0 || audiences?.length === 0) {
    throw new TypeError("createJwtAuth: issuer and audience must not be empty lists");
  }
  const requiredClaims = (options.requireExpiry ?? true) ? ["exp"] : [];

  const verify = async (token: string): Promise<VerifiedToken> => {
    if (typeof token !== "string" || token === "") {
      throw new WhisperError("unauthorized", "malformed token");
    }
    const verifyOptions: JWTVerifyOptions = {
      algorithms: [...algorithms],
      clockTolerance: clockToleranceSec,
      requiredClaims,
      currentDate: new Date(now()),
    };
    if (issuers !== undefined) verifyOptions.issuer = issuers;
    if (audiences !== undefined) verifyOptions.audience = audiences;
    if (maxTokenAgeSec !== undefined) verifyOptions.maxTokenAge = maxTokenAgeSec;
    let payload: JWTPayload;
    try {
      // Two calls for jose's two overloads (a key, or a function that picks one).
      if (typeof verificationKey === "function") {
        ({ payload } = await jwtVerify(token, verificationKey, verifyOptions));
      } else {
        ({ payload } = await jwtVerify(token, verificationKey, verifyOptions));
      }
    } catch (error) {
      throw toWhisperError(error);
    }
    const identity = identityFrom(payload, claims);
    const expiresAt = typeof payload.exp === "number" ? payload.exp * 1000 : undefined;
    if (expiresAt !== undefined) identity.expiresAt = expiresAt;
    return { identity, expiresAt, payload };
  };

  const sign = async (subject: TokenSubject, signOptions: SignTokenOptions = {}): Promise<SignedToken> => {
    if (signingKey === undefined) {
      throw new TypeError("JwtAuth.sign needs a secret or a privateKey in createJwtAuth's options");
    }
    if (typeof subject?.userId !== "string" || subject.userId === "") {
      throw new TypeError("JwtAuth.sign: userId must be a non-empty string");
    }
    const ttl = signOptions.expiresInSec ?? tokenTtlSec;
    checkTtl(ttl, "expiresInSec");
    const at = now();
    const issuedAt = Math.floor(at / 1000);
    // `exp` is in whole seconds: rounded up, so the token lives at least `ttl` seconds
    // (rounded down from `iat`, a 1 s token signed at x.999 s would be expired 1 ms later).
    const expiresAtSec = Math.ceil((at + ttl * 1000) / 1000);
    const body: Record<string, unknown> = structuredClone(signOptions.claims ?? {});
    for (const registered of ["iss", "aud", "iat", "exp", "nbf", "sub", "jti"]) delete body[registered];
    setClaim(body, claims.userId, subject.userId);
    setClaim(body, claims.name, subject.name);
    setClaim(body, claims.roles, [...subject.roles]);
    const header: { alg: string; typ: string; kid?: string } = { alg: algorithms[0]!, typ: "JWT" };
    if (options.keyId !== undefined) header.kid = options.keyId;
    const jwt = new SignJWT(body as JWTPayload)
      .setProtectedHeader(header)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAtSec);
    if (issuers !== undefined) jwt.setIssuer(issuers[0]!);
    if (audiences !== undefined) jwt.setAudience(audiences.length === 1 ? audiences[0]! : audiences);
    const token = await jwt.sign(signingKey);
    return { token, expiresAt: expiresAtSec * 1000 };
  };

  const authenticate: AuthenticateHook = async (_handshake, token) => {
    if (token === undefined || token === "") return null;
    return (await verify(token)).identity;
  };

  const reauthenticate: ReauthenticateHook = async (token) => (await verify(token)).identity;

  return { authenticate, reauthenticate, verify, sign, canSign: signingKey !== undefined };
}

function checkAlgorithms(given: readonly JwtAlgorithm[] | undefined, usesSecret: boolean): readonly string[] {
  if (given === undefined) {
    if (usesSecret) return ["HS256"];
    throw new TypeError(
      'createJwtAuth: with a public key or key set, `algorithms` is required (e.g. ["RS256"] or ["ES256"]): ' +
        "the algorithm is never taken from the token",
    );
  }
  if (!Array.isArray(given) || given.length === 0) {
    throw new TypeError("createJwtAuth: algorithms must be a non-empty array");
  }
  for (const alg of given as readonly string[]) {
    if (usesSecret && !SECRET_ALGORITHMS.has(alg)) {
      throw new TypeError(
        `createJwtAuth: algorithm ${alg} cannot be used with a secret; use HS256, HS384 or HS512`,
      );
    }
    if (!usesSecret && !KEY_ALGORITHMS.has(alg)) {
      throw new TypeError(
        `createJwtAuth: algorithm ${alg} cannot be used with a key; use one of ${[...KEY_ALGORITHMS].join(", ")}`,
      );
    }
  }
  return [...new Set(given)];
}

function checkTtl(seconds: number, what: string): void {
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new TypeError(`createJwtAuth: ${what} must be a positive number of seconds`);
  }
}

function importKey(key: string | JWK, kind: "public" | "private", algorithms: readonly string[]): KeyObject {
  const name = kind === "public" ? "publicKey" : "privateKey";
  if (typeof key !== "string") {
    if (typeof key !== "object" || key === null) {
      throw new TypeError(`createJwtAuth: ${name} must be a PEM string or a JWK object`);
    }
    if (key.alg !== undefined && !algorithms.includes(key.alg)) {
      throw new TypeError(`createJwtAuth: the ${name} JWK is for ${key.alg}, which is not in algorithms`);
    }
    if (kind === "private" && key.d === undefined) {
      throw new TypeError("createJwtAuth: privateKey is a public JWK; pass it as publicKey");
    }
  }
  try {
    const input =
      typeof key === "string" ? key : { key: key as unknown as NodeJsonWebKey, format: "jwk" as const };
    return kind === "public" ? createPublicKey(input) : createPrivateKey(input);
  } catch (cause) {
    throw new TypeError(`createJwtAuth: ${name} is not a valid ${kind} key (PEM or JWK)`, { cause });
  }
}

/** A key set fetch failure, told apart from a token that matches no key. */
class KeySetUnavailable extends Error {}

function remoteKeySet(url: string | URL, jwksOptions: RemoteJwksOptions | undefined): JWTVerifyGetKey {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new TypeError("createJwtAuth: jwksUrl is not a valid URL", { cause });
  }
  const local = ["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname);
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && local)) {
    throw new TypeError("createJwtAuth: jwksUrl must use https (plain http only for localhost)");
  }
  const remote = createRemoteJWKSet(parsed, { ...jwksOptions });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (
        error instanceof errors.JWKSNoMatchingKey ||
        error instanceof errors.JWKSMultipleMatchingKeys ||
        error instanceof errors.JOSENotSupported ||
        (error instanceof TypeError && !isFetchFailure(error))
      ) {
        throw error;
      }
      throw new KeySetUnavailable("the key set could not be fetched", { cause: error });
    }
  };
}

function isFetchFailure(error: TypeError): boolean {
  // undici reports network failures as `TypeError: fetch failed`.
  return error.message === "fetch failed";
}

/** Maps a verification failure to the error the hub and the `auth` frame report. */
function toWhisperError(error: unknown): WhisperError {
  if (error instanceof WhisperError) return error;
  if (error instanceof KeySetUnavailable) {
    return new WhisperError("internal", "the server could not fetch its token keys; try again", {
      cause: error,
    });
  }
  return new WhisperError("unauthorized", refusalMessage(error), { cause: error });
}

function refusalMessage(error: unknown): string {
  if (error instanceof errors.JWTExpired) {
    return error.claim === "iat" ? "token too old: issued too long ago" : "token expired";
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const missing = error.reason === "missing";
    switch (error.claim) {
      case "nbf":
        return "token not yet valid (nbf)";
      case "iss":
        return missing ? "token has no issuer (iss)" : "token issuer not accepted (iss)";
      case "aud":
        return missing ? "token has no audience (aud)" : "token audience not accepted (aud)";
      case "exp":
        return missing
          ? "token has no expiry (exp), which this server requires"
          : "malformed token: bad exp claim";
      case "iat":
        return missing
          ? "token has no issue time (iat), which this server requires"
          : "token issued in the future (iat)";
      default:
        return `token claim ${error.claim} not accepted`;
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "token algorithm not allowed";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "bad token signature";
  if (error instanceof errors.JWKSNoMatchingKey) return "no known key matches the token (kid/alg)";
  if (error instanceof errors.JWKSMultipleMatchingKeys) return "several keys match the token; it needs a kid";
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return "malformed token";
  // Every algorithm the configuration accepts is supported, so these mean a key of another type
  // (or an unsupported `crit` extension).
  if (error instanceof errors.JOSENotSupported || error instanceof TypeError) {
    return "token does not fit the configured key (key type or features not supported)";
  }
  return "invalid token";
}

function readClaim(payload: JWTPayload, path: ClaimPath): unknown {
  if (typeof path === "string") return payload[path];
  let value: unknown = payload;
  for (const part of path) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function setClaim(body: Record<string, unknown>, path: ClaimPath, value: unknown): void {
  const parts = typeof path === "string" ? [path] : path;
  let target = body;
  for (const part of parts.slice(0, -1)) {
    const next = target[part];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) {
      target = next as Record<string, unknown>;
    } else {
      const created: Record<string, unknown> = {};
      target[part] = created;
      target = created;
    }
  }
  target[parts[parts.length - 1]!] = value;
}

function claimName(path: ClaimPath): string {
  return typeof path === "string" ? path : path.join(".");
}

function identityFrom(payload: JWTPayload, claims: Required<JwtClaimMapping>): Identity {
  const userId = readClaim(payload, claims.userId);
  if (typeof userId !== "string" || userId === "") {
    throw new WhisperError("unauthorized", `token has no user id (claim ${claimName(claims.userId)})`);
  }
  const rawName = readClaim(payload, claims.name);
  if (rawName !== undefined && typeof rawName !== "string") {
    throw new WhisperError(
      "unauthorized",
      `malformed token: claim ${claimName(claims.name)} must be a string`,
    );
  }
  const name = rawName === undefined || rawName.trim() === "" ? userId : rawName;
  const roles = readClaim(payload, claims.roles);
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === "string"))) {
    throw new WhisperError(
      "unauthorized",
      `malformed token: claim ${claimName(claims.roles)} must be an array of strings`,
    );
  }
  return { userId, name, roles: roles === undefined ? [] : [...(roles as string[])] };
}
