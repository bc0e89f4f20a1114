// Two clients of the packed @whisperchat/client meet through the quickstart server whose URL
// is the first argument, about a kilometre apart, and exchange a message each way.
import { createClient, type WhisperClient, type WhisperClientEvents } from "@whisperchat/client";
import { WebSocket } from "ws";

const url = process.argv[2];
if (url === undefined) throw new Error("usage: node chat.js <ws url>");

function once<K extends keyof WhisperClientEvents>(
  client: WhisperClient,
  event: K,
): Promise<WhisperClientEvents[K]> {
  return new Promise((resolve) => client.once(event, resolve));
}

const ana = createClient({ url, WebSocket, reconnect: false });
const ben = createClient({ url, WebSocket, reconnect: false });
await Promise.all([ana.connect(), ben.connect()]);
const anaMatched = once(ana, "matched");
const benMatched = once(ben, "matched");
await ana.join({ location: { lat: 48.8566, lng: 2.3522 }, rangeKm: 10, name: "Ana" });
await ben.join({ location: { lat: 48.8606, lng: 2.3376 }, rangeKm: 10, name: "Ben" });
const [forAna, forBen] = await Promise.all([anaMatched, benMatched]);

const benHears = once(ben, "message");
await ana.send("hello from Ana");
const anaHears = once(ana, "message");
await ben.send("hello from Ben");
const heard = [(await benHears).text, (await anaHears).text];

await Promise.all([ana.close(), ben.close()]);
console.log(JSON.stringify({ anaMetWith: forAna.partner.name, benMetWith: forBen.partner.name, heard }));
