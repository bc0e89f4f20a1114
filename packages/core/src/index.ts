export type { TrustedProxies } from "./address.js";
export { clientAddress, normalizeAddress, proxyMatcher } from "./address.js";
export { hashToken } from "./admission.js";
export type { AdminAction, ClientAction, RolePolicyOptions, RoleRule } from "./auth/policy.js";
export { ADMIN_ACTIONS, CLIENT_ACTIONS, isAdminAction, isClientAction, rolePolicy } from "./auth/policy.js";
export type { Clock, Timer } from "./clock.js";
export { systemClock } from "./clock.js";
export type {
  Admission,
  Admitted,
  Connection,
  Handshake,
  Identity,
  Refusal,
  Reply,
  ResumeTicket,
  SessionLink,
} from "./connection.js";
export type { CloseCodeValue, ErrorCode, WhisperErrorOptions } from "./errors.js";
export { CloseCode, ERROR_CODES, isWhisperError, WhisperError } from "./errors.js";
export type { HubEvents, SessionInfo } from "./events.js";
export type { GeoBox } from "./geo.js";
export { EARTH_RADIUS_KM, haversineKm, publicDistanceKm, rangeBoxes } from "./geo.js";
export type { AdminCaller, HubCloseOptions, HubStats } from "./hub.js";
export { createWhisper, WhisperHub } from "./hub.js";
export { randomId } from "./ids.js";
export type { BucketState } from "./limiter.js";
export { assertBucketRule, drainMs, leakyBucket, leakyBucketInPlace } from "./limiter.js";
export type { Claimed, MatchFilter } from "./matcher.js";
export { searchAndClaim } from "./matcher.js";
export type { Logger, StoreObservation, StoreObserver, StoreObserverOptions } from "./observe.js";
export { observedStore, silentLogger } from "./observe.js";
export type { LocationGrid, ObfuscatedJoin } from "./privacy.js";
export { locationGrid } from "./privacy.js";
export type {
  AckFrame,
  AuthFrame,
  BlockFrame,
  ClientFrame,
  ClientFrameType,
  ClientLimits,
  ErrorFrame,
  JoinFrame,
  LatLng,
  LeaveFrame,
  MatchedFrame,
  MessageFrame,
  MessageRequestFrame,
  NextFrame,
  PartnerAwayFrame,
  PartnerBackFrame,
  PartnerLeftFrame,
  PartnerLeftReason,
  PingFrame,
  PongFrame,
  PublicUser,
  ReplyFrame,
  RoomFrame,
  ServerFrame,
  TypingFrame,
  TypingRequestFrame,
  WaitingFrame,
  WelcomeFrame,
} from "./protocol.js";
export { CLIENT_FRAME_TYPES, PROTOCOL_VERSION, SUBPROTOCOL } from "./protocol.js";
export type { SessionState } from "./session/session.js";
export type {
  AuthenticateHook,
  AuthorizeHook,
  HubAction,
  HubActionContext,
  HubSettings,
  ReauthenticateHook,
  WhisperOptions,
} from "./settings.js";
export type {
  AccountRecord,
  AccountStore,
  BanRecord,
  BanStore,
  BucketRule,
  BusMessage,
  BusStore,
  ExclusionStore,
  FrameMessage,
  JoinParams,
  LimiterStore,
  LimitResult,
  MailboxStore,
  NodeStore,
  PoolEntry,
  PoolStore,
  RelayBatch,
  RelayResult,
  RelayStore,
  ReleasedMessage,
  ReleaseMessage,
  RoomMember,
  RoomRecord,
  RoomStore,
  SessionRecord,
  SessionSnapshot,
  SessionStore,
  Store,
  StoredMessage,
} from "./store.js";
export { NODE_MEMORY_MS } from "./store.js";
export { withStoreClose } from "./store-wrap.js";
export type { AdmitOptions, Admitter, Corkable } from "./transport.js";
export {
  admitHandshake,
  closeReason,
  corkForTick,
  refusal,
  refuseUpgrade,
  unavailable,
} from "./transport.js";
export type {
  RefusalBody,
  UpgradeClaim,
  UpgradeEmitter,
  UpgradeGuardOptions,
  UpgradeRegistration,
  UpgradeRequest,
} from "./upgrades.js";
export { answerUpgrade, guardUpgrades } from "./upgrades.js";
export type { ValidationLimits } from "./validate.js";
export { FrameError, isPlainObject, parseClientFrame, validateClientFrame } from "./validate.js";
