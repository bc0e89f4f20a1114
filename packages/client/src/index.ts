export { createClient, WhisperClient } from "./client.js";
export type { Listener } from "./emitter.js";
export type { ClientErrorCode, ClientSideErrorCode, WhisperClientErrorOptions } from "./errors.js";
export { isWhisperClientError, WhisperClientError } from "./errors.js";
export type {
  AckFrame,
  ClientFrame,
  ClientLimits,
  ErrorFrame,
  LatLng,
  MatchedFrame,
  MessageFrame,
  PartnerAwayFrame,
  PartnerBackFrame,
  PartnerLeftFrame,
  PartnerLeftReason,
  PongFrame,
  ProtocolErrorCode,
  PublicUser,
  ServerFrame,
  ServerFrameType,
  TypingFrame,
  WaitingFrame,
  WelcomeFrame,
} from "./protocol.js";
export { CloseCode, PROTOCOL_VERSION, SUBPROTOCOL } from "./protocol.js";
export type { ReconnectOptions, ResolvedReconnectOptions } from "./reconnect.js";
export { backoffDelay, DEFAULT_RECONNECT, RECONNECT_CLOSE_CODES, shouldReconnect } from "./reconnect.js";
export type { ResumeStorage, WebStorageLike } from "./storage.js";
export { isDeviceId, randomDeviceId, webDeviceId, webStorage } from "./storage.js";
export { tokenExpiry } from "./token.js";
export type {
  Ack,
  ClientState,
  DisconnectInfo,
  JoinOptions,
  LifecycleEvents,
  Pong,
  ReconnectAttempt,
  SendOptions,
  ServerFrameEvents,
  StateChange,
  TokenRefresh,
  Waiting,
  WebSocketConstructor,
  WebSocketLike,
  Welcome,
  WhisperClientEvents,
  WhisperClientOptions,
} from "./types.js";
