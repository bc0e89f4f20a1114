// `@whisperchat/core/auth`: accounts (argon2id through @node-rs/argon2) and JWTs (jose). Both
// libraries are optional peer dependencies, loaded only through this entry (or
// `@whisperchat/core/jwt` for JWTs alone), so the main entry never loads native code.
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
export * from "./jwt-entry.js";
