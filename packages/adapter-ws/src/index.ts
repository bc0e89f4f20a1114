export type { WebSocketAdapter, WebSocketAdapterOptions } from "./attach.js";
export { attachWebSocket } from "./attach.js";
