// Two socket.io-client users with tokens signed by @whisperchat/core/jwt meet through the
// server whose URL is the first argument and exchange a message each way.
import { createJwtAuth } from "@whisperchat/core/jwt";
import { io, type Socket } from "socket.io-client";

const url = process.argv[2];
const secret = process.env.JWT_SECRET;
if (url === undefined || secret === undefined) throw new Error("usage: JWT_SECRET=... node chat.js <url>");
const jwt = createJwtAuth({ secret });

interface Matched {
  partner: { name: string };
}

async function connect(userId: string, name: string): Promise<Socket> {
  const { token } = await jwt.sign({ userId, name, roles: [] });
  const socket = io(url as string, { auth: { token }, transports: ["websocket"], reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

function request(socket: Socket, type: string, payload: object): Promise<{ ok: boolean }> {
  return new Promise((resolve) => socket.emit(type, payload, resolve));
}

function next<T>(socket: Socket, event: string): Promise<T> {
  return new Promise((resolve) => socket.once(event, resolve));
}

const ana = await connect("u-ana", "Ana");
const ben = await connect("u-ben", "Ben");
const anaMatched = next<Matched>(ana, "matched");
const benMatched = next<Matched>(ben, "matched");
const joined = [
  await request(ana, "join", { location: { lat: 48.8566, lng: 2.3522 }, rangeKm: 10 }),
  await request(ben, "join", { location: { lat: 48.8606, lng: 2.3376 }, rangeKm: 10 }),
];
const [forAna, forBen] = await Promise.all([anaMatched, benMatched]);

const benHears = next<{ text: string }>(ben, "message");
const sent = await request(ana, "message", { text: "hello from Ana" });
const heard = (await benHears).text;

ana.disconnect();
ben.disconnect();
console.log(
  JSON.stringify({ joined, sent, anaMetWith: forAna.partner.name, benMetWith: forBen.partner.name, heard }),
);
