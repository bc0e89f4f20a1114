import { describe, expect, it } from "vitest";
import { clientAddress, proxyMatcher } from "./address.js";

describe("client address behind proxies", () => {
  const trusted = proxyMatcher(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]);

  it("ignores X-Forwarded-For from an untrusted peer", () => {
    expect(clientAddress("203.0.113.9", "1.2.3.4", trusted)).toBe("203.0.113.9");
    expect(clientAddress("203.0.113.9", "1.2.3.4", proxyMatcher(undefined))).toBe("203.0.113.9");
  });

  it("takes the right-most untrusted hop from a trusted peer", () => {
    expect(clientAddress("10.1.2.3", "198.51.100.7", trusted)).toBe("198.51.100.7");
    // A client-supplied first hop cannot win: the right-most untrusted one does.
    expect(clientAddress("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.9.9.9", trusted)).toBe("198.51.100.7");
    expect(clientAddress("::ffff:127.0.0.1", ["198.51.100.7"], trusted)).toBe("198.51.100.7");
    expect(clientAddress("fd12::1", "2001:db8::5", trusted)).toBe("2001:db8::5");
  });

  it("stops at garbage in the chain, and at a chain made only of proxies", () => {
    expect(clientAddress("10.1.2.3", "not-an-ip, 198.51.100.7", trusted)).toBe("198.51.100.7");
    expect(clientAddress("10.1.2.3", "198.51.100.7, junk", trusted)).toBe("10.1.2.3");
    expect(clientAddress("10.1.2.3", "10.0.0.5", trusted)).toBe("10.0.0.5");
  });

  it("rejects entries that are not addresses or ranges", () => {
    expect(() => proxyMatcher(["localhost"])).toThrow(TypeError);
    expect(() => proxyMatcher(["10.0.0.0/33"])).toThrow(TypeError);
  });
});
