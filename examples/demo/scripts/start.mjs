// `npm start`: the demo as users run WhisperChat, on the built packages (each one's dist/), not
// on the TypeScript sources through a loader. What is not built yet, or is older than its
// sources, is built first, so that `npm install && npm start` works on a fresh clone.
import { pathToFileURL } from "node:url";
import { buildIfStale } from "./built.mjs";

await import(pathToFileURL(buildIfStale()).href);
