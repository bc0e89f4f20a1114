export { attachSocketIo } from "./attach.js";
export type {
  AckAnswer,
  AckError,
  AttachToServerOptions,
  CloseEventData,
  CreateServerOptions,
  RefusalData,
  SocketIoAdapter,
  SocketIoAdapterOptions,
} from "./options.js";
export { CLOSE_EVENT } from "./options.js";
