export type {
  AccountErrorCode,
  AccountErrorStatus,
  AccountIdentity,
  Accounts,
  AccountsOptions,
  LoginInput,
  LoginRateOptions,
  LoginResult,
  NameRules,
  PasswordHashOptions,
  PasswordRules,
  RegisteredAccount,
  RegisterInput,
} from "./accounts.js";
export {
  ACCOUNT_ERROR_STATUS,
  AccountError,
  accountNameKey,
  createAccounts,
  isAccountError,
  normalizeAccountName,
} from "./accounts.js";
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
export type { AdminAction, ClientAction, RolePolicyOptions, RoleRule } from "./policy.js";
export { ADMIN_ACTIONS, CLIENT_ACTIONS, isAdminAction, isClientAction, rolePolicy } from "./policy.js";
