import assert from "node:assert/strict";
import type { WhisperHub } from "../hub.js";
import type { ServerFrame, WelcomeFrame } from "../protocol.js";
import type { WhisperOptions } from "../settings.js";
import type { Store } from "../store.js";
import type { TestApi } from "./test-api.js";
import { expectFrame, type TestClient, type TransportHarness } from "./transport-suite.js";

/** One node of a test cluster: a hub on the shared store, mounted on a transport. */
export interface ClusterNode extends TransportHarness {
  readonly hub: WhisperHub;
  /** Kills the node as a crash would (`hub.halt()`, then its transport stops). */
  crash(): Promise<void>;
}

/** What the cluster suite needs: a shared store per test, and a way to start nodes on it. */
export interface ClusterHarness {
  /** A fresh store shared by the nodes of one test (closed by the suite at the end). */
  makeStore(): Promise<Store>;
  /** Starts a node (a hub with these options, on a transport) on the shared store. */
  startNode(store: Store, options: Partial<WhisperOptions>): Promise<ClusterNode>;
}

/**
 * Several nodes on one store, as a load balancer without sticky sessions would use them:
 * matching and chatting across nodes, resuming on another node, draining a node, and a node
 * that stops heartbeating. Run it for every store that claims to support many nodes.
 */
export function clusterConformance(
  t: TestApi,
  harness: ClusterHarness,
  options: { name?: string } = {},
): void {
  t.describe(options.name ?? "cluster conformance", () => {
    let store: Store;
    const nodes: ClusterNode[] = [];
    const clients: TestClient[] = [];
    t.beforeEach(async () => {
      store = await harness.makeStore();
    });
    t.afterEach(async () => {
      await Promise.allSettled(clients.splice(0).map((c) => c.close()));
      await Promise.allSettled(nodes.splice(0).map((n) => n.close()));
      await store.close();
    });

    async function node(opts: Partial<WhisperOptions> = {}): Promise<ClusterNode> {
      const n = await harness.startNode(store, {
        nodeHeartbeatMs: 100,
        connectRate: { capacity: 1000, ratePerSec: 1000 },
        ...opts,
      });
      nodes.push(n);
      return n;
    }
    async function client(
      n: ClusterNode,
      resume?: string,
    ): Promise<{ c: TestClient; welcome: WelcomeFrame }> {
      const c = await n.connect(resume === undefined ? {} : { resume });
      clients.push(c);
      return { c, welcome: await expectFrame(c, "welcome") };
    }
    async function pairAcross(n1: ClusterNode, n2: ClusterNode) {
      const a = await client(n1);
      const b = await client(n2);
      a.c.send({ type: "join", location: { lat: 52.52, lng: 13.405 }, rangeKm: 10, name: "Ana" });
      await expectFrame(a.c, "waiting");
      b.c.send({ type: "join", location: { lat: 52.53, lng: 13.41 }, rangeKm: 10, name: "Ben" });
      await expectFrame(b.c, "waiting");
      const mb = await expectFrame(b.c, "matched");
      const ma = await expectFrame(a.c, "matched");
      assert.equal(ma.roomId, mb.roomId);
      assert.equal(ma.partner.name, "Ben");
      assert.equal(mb.partner.name, "Ana");
      return { a, b, roomId: ma.roomId };
    }
    async function chat(from: TestClient, to: TestClient, text: string): Promise<void> {
      from.send({ type: "message", id: text, text });
      assert.equal((await expectFrame(from, "ack")).id, text);
      assert.equal((await expectFrame(to, "message")).text, text);
    }

    t.it("matches two clients on different nodes, and they chat both ways", async () => {
      const n1 = await node();
      const n2 = await node();
      const { a, b } = await pairAcross(n1, n2);
      await chat(a.c, b.c, "hallo from node 1");
      await chat(b.c, a.c, "hallo from node 2");
      a.c.send({ type: "next", id: "n" });
      await expectFrame(a.c, "waiting");
      assert.equal((await expectFrame(b.c, "partner_left")).reason, "next");
    });

    t.it("a burst across nodes arrives once and in order; answers keep request order", async () => {
      const fast = { capacity: 200, ratePerSec: 200 };
      const opts = { messageRate: fast, userMessageRate: fast, maxPendingRequests: 100 };
      const n1 = await node(opts);
      const n2 = await node(opts);
      const { a, b } = await pairAcross(n1, n2);
      // Sent without waiting: messages, with other requests in between.
      const expected: string[] = [];
      for (let i = 0; i < 60; i++) {
        a.c.send({ type: "message", id: `m${i}`, text: `burst ${i}` });
        expected.push(`ack m${i}`);
        if (i % 20 === 7) {
          a.c.send({ type: "ping", id: `p${i}` });
          expected.push(`pong p${i}`);
          a.c.send({ type: "join", id: `j${i}`, location: { lat: 52.52, lng: 13.405 }, rangeKm: 10 });
          expected.push(`error j${i} in_room`);
        }
      }
      const answers: string[] = [];
      while (answers.length < expected.length) {
        const f = await a.c.next();
        if (f.type === "ack" || f.type === "pong") answers.push(`${f.type} ${f.id}`);
        else if (f.type === "error") answers.push(`error ${f.id} ${f.code}`);
      }
      assert.deepEqual(answers, expected);
      const texts: string[] = [];
      while (texts.length < 60) texts.push((await expectFrame(b.c, "message")).text);
      assert.deepEqual(
        texts,
        Array.from({ length: 60 }, (_, i) => `burst ${i}`),
      );
      await chat(b.c, a.c, "and back");
    });

    t.it("a flood across nodes: the user's limit refuses the excess, the rest arrives once", async () => {
      const opts = {
        messageRate: { capacity: 100, ratePerSec: 100 },
        userMessageRate: { capacity: 5, ratePerSec: 0.5 },
        floodCloseAfter: 100,
      };
      const n1 = await node(opts);
      const n2 = await node(opts);
      const { a, b } = await pairAcross(n1, n2);
      for (let i = 0; i < 12; i++) a.c.send({ type: "message", id: `f${i}`, text: `flood ${i}` });
      const answers: string[] = [];
      while (answers.length < 12) {
        const f = await a.c.next();
        if (f.type === "ack") answers.push(`ack ${f.id}`);
        else if (f.type === "error") {
          assert.equal(f.code, "rate_limited");
          assert.ok((f.retryAfterMs ?? 0) > 0, "rate_limited carries retryAfterMs");
          answers.push(`limited ${f.id}`);
        }
      }
      assert.deepEqual(answers, [
        ...[0, 1, 2, 3, 4].map((i) => `ack f${i}`),
        ...[5, 6, 7, 8, 9, 10, 11].map((i) => `limited f${i}`),
      ]);
      const texts: string[] = [];
      while (texts.length < 5) texts.push((await expectFrame(b.c, "message")).text);
      assert.deepEqual(texts, ["flood 0", "flood 1", "flood 2", "flood 3", "flood 4"]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(
        b.c.pending().filter((f) => f.type === "message"),
        [],
        "nothing refused was delivered",
      );
    });

    t.it("a concurrent join storm from several nodes matches nobody twice", async () => {
      const ns = [await node(), await node(), await node()];
      const all: TestClient[] = [];
      for (let i = 0; i < 24; i++) all.push((await client(ns[i % 3] as ClusterNode)).c);
      for (const c of all) c.send({ type: "join", location: { lat: 48.85, lng: 2.35 }, rangeKm: 50 });
      const rooms = new Map<string, number>();
      for (const c of all) {
        await expectFrame(c, "waiting");
        const m = await expectFrame(c, "matched", 5000);
        rooms.set(m.roomId, (rooms.get(m.roomId) ?? 0) + 1);
      }
      assert.equal(rooms.size, 12);
      for (const [roomId, members] of rooms)
        assert.equal(members, 2, `room ${roomId} has ${members} members`);
      assert.equal(await store.pool.size(), 0);
    });

    t.it("a client that drops resumes on another node with what it missed, in order", async () => {
      const n1 = await node();
      const n2 = await node();
      const { a, b, roomId } = await pairAcross(n1, n2);
      await b.c.drop();
      await expectFrame(a.c, "partner_away");
      for (const text of ["one", "two", "three"]) {
        a.c.send({ type: "message", id: text, text });
        await expectFrame(a.c, "ack");
      }
      // b comes back through the load balancer: this time to node 1.
      const b2 = await client(n1, b.welcome.resumeToken);
      assert.equal(b2.welcome.resumed, true);
      assert.equal(b2.welcome.sessionId, b.welcome.sessionId);
      for (const text of ["one", "two", "three"])
        assert.equal((await expectFrame(b2.c, "message")).text, text);
      assert.deepEqual(await expectFrame(a.c, "partner_back"), { type: "partner_back", roomId });
      await chat(a.c, b2.c, "four");
      await chat(b2.c, a.c, "five");
    });

    t.it(
      "a live session taken over from another node: old connection closed 4001, no frame lost",
      async () => {
        const n1 = await node();
        const n2 = await node();
        const { a, b } = await pairAcross(n1, n2);
        const b2 = await client(n1, b.welcome.resumeToken);
        assert.equal(b2.welcome.resumed, true);
        assert.equal(await b.c.closed, 4001);
        // The partner never saw b away; it is told b is (still) connected.
        await expectFrame(a.c, "partner_back");
        await chat(a.c, b2.c, "still here?");
        await chat(b2.c, a.c, "yes");
      },
    );

    t.it(
      "draining a node (1012): its clients resume on another node and the conversation goes on",
      async () => {
        const n1 = await node();
        const n2 = await node();
        const { a, b } = await pairAcross(n1, n2);
        await n2.hub.close({ code: 1012 });
        assert.equal(await b.c.closed, 1012);
        await expectFrame(a.c, "partner_away");
        a.c.send({ type: "message", id: "m", text: "while you moved" });
        await expectFrame(a.c, "ack");
        const b2 = await client(n1, b.welcome.resumeToken);
        assert.equal(b2.welcome.resumed, true);
        assert.equal((await expectFrame(b2.c, "message")).text, "while you moved");
        await expectFrame(a.c, "partner_back");
        await chat(b2.c, a.c, "made it");
      },
    );

    t.it("a node that stops heartbeating: partners are told away, then left after the grace", async () => {
      const n1 = await node({ resumeGraceMs: 400 });
      const n2 = await node({ resumeGraceMs: 400 });
      const { a, roomId } = await pairAcross(n1, n2);
      await n2.crash();
      const away = await expectFrame(a.c, "partner_away", 3000);
      assert.equal(away.roomId, roomId);
      const left = await expectFrame(a.c, "partner_left", 3000);
      assert.equal(left.reason, "disconnected");
      // The surviving node still matches.
      const c = await client(n1);
      c.c.send({ type: "join", location: { lat: 52.52, lng: 13.405 }, rangeKm: 10 });
      await expectFrame(c.c, "waiting");
      a.c.send({ type: "next", id: "again" });
      await expectFrame(a.c, "waiting");
      await expectFrame(a.c, "matched");
    });

    t.it("pool entries of a dead node are never matched", async () => {
      const n1 = await node();
      const n2 = await node();
      const ghost = await client(n2);
      ghost.c.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 10 });
      await expectFrame(ghost.c, "waiting");
      await n2.crash();
      await new Promise((r) => setTimeout(r, 500)); // three missed heartbeats
      const x = await client(n1);
      x.c.send({ type: "join", location: { lat: 1, lng: 1 }, rangeKm: 10 });
      await expectFrame(x.c, "waiting");
      x.c.send({ type: "ping", id: "p" });
      const f: ServerFrame = await x.c.next();
      assert.deepEqual(f, { type: "pong", id: "p" });
    });
  });
}
