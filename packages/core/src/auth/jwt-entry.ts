// `@whisperchat/core/jwt`: JWT authentication alone, for apps whose tokens come from elsewhere.
// It loads jose (an optional peer dependency) and nothing native; `@whisperchat/core/auth`
// adds the accounts on top.
export type {
  ClaimPath,
  JwtAlgorithm,
  JwtAuth,
  JwtAuthOptions,
  JwtClaimMapping,
  JwtKeyAlgorithm,
  JwtSecretAlgorithm,
  RemoteJwksOptions,
  SignedToken,
  SignTokenFunction,
  SignTokenOptions,
  TokenSubject,
  VerifiedToken,
} from "./jwt.js";
export { createJwtAuth } from "./jwt.js";
