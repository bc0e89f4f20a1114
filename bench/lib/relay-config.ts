/** Settings shared by the relay benchmark's coordinator, server and load processes. */

/**
 * The servers compared: WhisperChat bare (`whisper`), with `prometheusMetrics` attached
 * (`whisper-metrics`), in the demo's configuration (`whisper-demo`: metrics, the JWT hook, the
 * role policy, both transports mounted), and the bare `ws` and Socket.IO relays.
 */
export type ServerKind = "whisper" | "whisper-metrics" | "whisper-demo" | "ws" | "socketio";

/** Whether a server speaks WhisperChat's protocol (its clients join and chat). */
export function isWhisper(kind: ServerKind): boolean {
  return kind.startsWith("whisper");
}

/** Payload size of every relayed message, in bytes (ASCII text). */
export const PAYLOAD_BYTES = 100;
