import { ConfigError, readConfig } from "./config.js";
import { startDemo } from "./server.js";

try {
  const config = readConfig();
  const demo = await startDemo(config);
  console.log(
    `WhisperChat demo listening on ${demo.url}  (WebSocket: ${demo.url.replace(/^http/, "ws")}/whisper)`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: draining…`);
    demo.close().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`whisperchat demo: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
