import { describe, expect, it } from "vitest";
import { FrameError, parseClientFrame, validateClientFrame } from "./validate.js";

const limits = { maxMessageChars: 10, maxRangeKm: 100, maxNameChars: 5 };

function codeOf(input: unknown): string | undefined {
  try {
    typeof input === "string" ? parseClientFrame(input, limits) : validateClientFrame(input, limits);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(FrameError);
    return (e as FrameError).code;
  }
}

describe("validateClientFrame", () => {
  it("accepts every request type and keeps only known fields", () => {
    expect(
      validateClientFrame(
        { type: "join", id: "1", location: { lat: 1, lng: 2, alt: 3 }, rangeKm: 5, name: "  Al ", x: 1 },
        limits,
      ),
    ).toEqual({ type: "join", id: "1", location: { lat: 1, lng: 2 }, rangeKm: 5, name: "Al" });
    expect(validateClientFrame({ type: "message", text: "hi" }, limits)).toEqual({
      type: "message",
      text: "hi",
    });
    expect(validateClientFrame({ type: "typing", active: false }, limits)).toEqual({
      type: "typing",
      active: false,
    });
    for (const type of ["next", "leave", "ping"])
      expect(validateClientFrame({ type }, limits)).toEqual({ type });
    expect(validateClientFrame({ type: "block", reason: "r".repeat(500) }, limits)).toEqual({
      type: "block",
      reason: "r".repeat(200),
    });
    expect(validateClientFrame({ type: "auth", token: "t" }, limits)).toEqual({ type: "auth", token: "t" });
  });

  it("maps each kind of bad input to its protocol code", () => {
    expect(codeOf("not json")).toBe("bad_request");
    expect(codeOf("null")).toBe("bad_request");
    expect(codeOf("[]")).toBe("bad_request");
    expect(codeOf({ type: "nope" })).toBe("unknown_type");
    expect(codeOf({ type: "join", location: { lat: Number.POSITIVE_INFINITY, lng: 0 }, rangeKm: 1 })).toBe(
      "invalid_location",
    );
    expect(codeOf('{"type":"join","location":{"lat":1e999,"lng":0},"rangeKm":1}')).toBe("invalid_location");
    expect(codeOf({ type: "join", location: { lat: 0, lng: 0 }, rangeKm: 100.0001 })).toBe("invalid_range");
    expect(codeOf({ type: "join", location: { lat: 0, lng: 0 }, rangeKm: 100 })).toBeUndefined();
    expect(codeOf({ type: "join", location: { lat: -90, lng: 180 }, rangeKm: 0.001 })).toBeUndefined();
    expect(codeOf({ type: "join", location: { lat: 0, lng: 0 }, rangeKm: 1, name: "abcdef" })).toBe(
      "bad_request",
    );
    expect(codeOf({ type: "join", location: { lat: 0, lng: 0 }, rangeKm: 1, name: "a\u2028b" })).toBe(
      "bad_request",
    );
    expect(codeOf({ type: "join", location: { lat: 0, lng: 0 }, rangeKm: 1, name: "   " })).toBe(
      "bad_request",
    );
    expect(codeOf({ type: "message", text: "   " })).toBe("bad_request");
    expect(codeOf({ type: "message", text: "x".repeat(11) })).toBe("too_large");
    expect(codeOf({ type: "ping", id: "x".repeat(65) })).toBe("bad_request");
  });

  it("counts message length in code points, not UTF-16 units", () => {
    expect(codeOf({ type: "message", text: "😀".repeat(10) })).toBeUndefined();
    expect(codeOf({ type: "message", text: "😀".repeat(11) })).toBe("too_large");
  });

  it("keeps the request id on the error so it can be echoed", () => {
    try {
      validateClientFrame({ type: "join", id: "req-7", location: { lat: 99, lng: 0 }, rangeKm: 1 }, limits);
      expect.unreachable();
    } catch (e) {
      expect((e as FrameError).requestId).toBe("req-7");
    }
  });

  it("quotes at most a short prefix of the offending input", () => {
    try {
      parseClientFrame(`{bad${"z".repeat(10_000)}`, limits);
      expect.unreachable();
    } catch (e) {
      expect((e as FrameError).message.length).toBeLessThan(100);
    }
  });
});
