/** Settings shared by the relay benchmark's coordinator, server and load processes. */

/** The servers compared. */
export type ServerKind = "whisper" | "ws" | "socketio";

/** Payload size of every relayed message, in bytes (ASCII text). */
export const PAYLOAD_BYTES = 100;
