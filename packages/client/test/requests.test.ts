import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ClientFrame, WhisperClientError } from "../src/index.js";
import { type RequestLink, Requests } from "../src/requests.js";

/** A link that records what it sends; `open` decides whether a send goes through. */
function fakeLink() {
  const sent: ClientFrame[] = [];
  const link = {
    open: true,
    sent,
    heartbeatTimeouts: 0,
    requestTimeouts: 0,
    send(frame: ClientFrame): boolean {
      if (!link.open) return false;
      sent.push(frame);
      return true;
    },
    heartbeatTimedOut() {
      link.heartbeatTimeouts++;
    },
    requestTimedOut() {
      link.requestTimeouts++;
    },
  } satisfies RequestLink & Record<string, unknown>;
  return link;
}

/** The settled outcome of a promise, or "pending". */
async function outcome<T>(promise: Promise<T>): Promise<T | WhisperClientError | "pending"> {
  const pending = Symbol("pending");
  const result = await Promise.race([
    promise.catch((e: WhisperClientError) => e),
    new Promise<typeof pending>((r) => setImmediate(() => r(pending))),
  ]);
  return result === pending ? "pending" : (result as T | WhisperClientError);
}

describe("Requests", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] }));
  afterEach(() => vi.useRealTimers());

  it("settles a request with a reply of its types only, and rejects with the server's error", async () => {
    const link = fakeLink();
    const requests = new Requests(link, 1000);
    const join = requests.request({ type: "join", location: { lat: 1, lng: 2 }, rangeKm: 5 }, ["waiting"]);
    const leave = requests.request({ type: "leave" }, ["ack"]);
    const [joinId, leaveId] = link.sent.map((f) => f.id as string);
    expect(joinId).not.toBe(leaveId);
    expect(link.sent[0]).toMatchObject({ type: "join", id: joinId, rangeKm: 5 });

    requests.reply({ type: "ack", id: joinId as string, ts: 1 }); // not a reply to join
    expect(await outcome(join)).toBe("pending");
    requests.reply({ type: "waiting", id: joinId as string, since: 1 });
    expect(await outcome(join)).toMatchObject({ type: "waiting", id: joinId });

    requests.reply({
      type: "error",
      id: leaveId as string,
      code: "rate_limited",
      message: "slow down",
      retryAfterMs: 1500,
    });
    const error = await outcome(leave);
    expect(error).toBeInstanceOf(WhisperClientError);
    expect(error).toMatchObject({ code: "rate_limited", requestId: leaveId, retryAfterMs: 1500 });
  });

  it("rejects with not_connected, carrying the id, when the frame cannot be sent", async () => {
    const link = fakeLink();
    link.open = false;
    const requests = new Requests(link, 1000);
    const error = await outcome(requests.request({ type: "ping" }, ["pong"]));
    expect(error).toMatchObject({ code: "not_connected", requestId: expect.any(String) });
  });

  it("times a request out, then asks for a probe; a heartbeat's timeout reports a dead link instead", async () => {
    const link = fakeLink();
    const requests = new Requests(link, 1000);
    const next = requests.request({ type: "next" }, ["waiting"]);
    vi.advanceTimersByTime(999);
    expect(await outcome(next)).toBe("pending");
    vi.advanceTimersByTime(1);
    expect(await outcome(next)).toMatchObject({
      code: "timeout",
      message: "no reply to next within 1000 ms",
    });
    expect(link.requestTimeouts).toBe(1);
    requests.reply({ type: "waiting", id: link.sent[0]?.id as string, since: 1 }); // too late: ignored

    void requests.request({ type: "ping" }, ["pong"], true);
    expect(requests.probing).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(link.heartbeatTimeouts).toBe(1);
    expect(link.requestTimeouts).toBe(1);
    expect(requests.probing).toBe(false);
  });

  it("keeps messages across a drop, resends them in order, and fails each with its own id and the close code", async () => {
    const link = fakeLink();
    const requests = new Requests(link, 1000);
    const first = requests.message({ type: "message", id: "m1", text: "one" });
    link.open = false;
    const second = requests.message({ type: "message", id: "m2", text: "two" });
    expect(requests.queued("m2")).toBe(second);
    expect(requests.unacknowledged).toBe(2);
    requests.holdMessages();
    vi.advanceTimersByTime(5000); // held: no timeout while the connection is down
    expect(await outcome(first)).toBe("pending");

    link.open = true;
    link.sent.length = 0;
    requests.resendMessages();
    expect(link.sent.map((f) => f.id)).toEqual(["m1", "m2"]);
    requests.reply({ type: "ack", id: "m1", messageId: "m1", ts: 1 });
    expect(await outcome(first)).toMatchObject({ type: "ack", id: "m1" });
    expect(requests.unacknowledged).toBe(1);

    const leave = requests.request({ type: "leave" }, ["ack"]);
    const lost = new WhisperClientError("connection_lost", "dropped", { closeCode: 1006 });
    requests.failRequests(lost);
    expect(await outcome(leave)).toMatchObject({
      code: "connection_lost",
      requestId: link.sent.at(-1)?.id,
      closeCode: 1006,
    });
    expect(await outcome(second)).toBe("pending");
    requests.failMessages(new WhisperClientError("closed", "closed", { closeCode: 1008 }));
    expect(await outcome(second)).toMatchObject({ code: "closed", requestId: "m2", closeCode: 1008 });
    expect(requests.unacknowledged).toBe(0);
  });
});
