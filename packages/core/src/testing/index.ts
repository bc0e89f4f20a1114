export type { StoreFactory, TestHub, TestHubOptions } from "./app-kit.js";
export { createTestHub } from "./app-kit.js";
export type {
  CloseInfo,
  ConnectOptions,
  FrameOf,
  JoinOptions,
  TestChatClient,
  WaitOptions,
} from "./client.js";
export { ConnectionRefusedError } from "./client.js";
export type { ManualClock } from "./clock.js";
export { manualClock } from "./clock.js";
export type { ClusterHarness, ClusterNode } from "./cluster-suite.js";
export { clusterConformance } from "./cluster-suite.js";
export type { InProcessConnectOptions, InProcessHub } from "./in-process.js";
export { connectInProcess } from "./in-process.js";
export { accountsConformance } from "./store/accounts.js";
export { bansConformance } from "./store/bans.js";
export { busConformance } from "./store/bus.js";
export { exclusionsConformance } from "./store/exclusions.js";
export { limiterConformance } from "./store/limiter.js";
export { mailboxConformance } from "./store/mailbox.js";
export { nodesConformance } from "./store/nodes.js";
export { poolConformance } from "./store/pool.js";
export type { RelayConformanceOptions } from "./store/relay.js";
export { relayConformance } from "./store/relay.js";
export { roomsConformance } from "./store/rooms.js";
export { sessionsConformance } from "./store/sessions.js";
export type { MakeStore, StoreCapabilityOptions, StorePart } from "./store/shared.js";
export { prng } from "./store/shared.js";
export type { StoreConformanceOptions } from "./store-suite.js";
export { storeConformance } from "./store-suite.js";
export type { TestApi, TestFn } from "./test-api.js";
export type {
  HarnessOverrides,
  OutboundFrame,
  RefusedConnection,
  TestClient,
  TransportHarness,
  TransportSuiteOptions,
} from "./transport-suite.js";
export { expectFrame, transportConformance } from "./transport-suite.js";
export type { TestWebSocket, TestWebSocketConstructor, WsConnectOptions } from "./ws-client.js";
export { connectWs } from "./ws-client.js";
