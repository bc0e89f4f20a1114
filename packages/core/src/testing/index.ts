export type { ClusterHarness, ClusterNode } from "./cluster-suite.js";
export { clusterConformance } from "./cluster-suite.js";
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
