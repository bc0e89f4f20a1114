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

describe("validateName (display names on join)", () => {
  const wide = { ...limits, maxNameChars: 32 };
  const join = (name: unknown) => ({ type: "join", location: { lat: 0, lng: 0 }, rangeKm: 1, name });
  const nameOf = (name: unknown) => (validateClientFrame(join(name), wide) as { name?: string }).name;
  const refused = (name: string): string | undefined => {
    try {
      validateClientFrame(join(name), wide);
      return undefined;
    } catch (e) {
      expect(e).toBeInstanceOf(FrameError);
      expect((e as FrameError).code).toBe("bad_request");
      return (e as FrameError).message;
    }
  };

  it("accepts names in any script, mixed or not, with digits, spaces and punctuation", () => {
    for (const name of [
      "José",
      "Ana",
      "Ана",
      "李小龙",
      "Ana-Maria 2",
      "O'Brien",
      "山田たろう",
      "مريم",
      "Zoë ❤️",
    ]) {
      expect(nameOf(name)).toBe(name);
    }
    // Mixed scripts are allowed for display names (they are neither unique nor authenticated).
    expect(nameOf("ali\u0441e")).toBe("ali\u0441e");
  });

  it("normalises with NFKC, then trims, before counting", () => {
    expect(nameOf("\uFF21\uFF2C\uFF29")).toBe("ALI"); // full-width letters
    expect(nameOf("Jose\u0301")).toBe("José"); // decomposed é composes
    expect(nameOf("\u3000Ana\u00A0")).toBe("Ana"); // ideographic and no-break spaces
    expect(nameOf("\uFB01ona")).toBe("fiona"); // the "ﬁ" ligature
    // 32 full-width letters fit once folded; 33 do not.
    expect(nameOf("\uFF41".repeat(32))).toBe("a".repeat(32));
    expect(refused("\uFF41".repeat(33))).toMatch(/at most 32/);
  });

  it("refuses every bidi control", () => {
    for (const c of ["\u061C", "\u200E", "\u200F", "\u202A", "\u202B", "\u202C", "\u202D", "\u202E"]) {
      expect(refused(`ab${c}cd`)).toMatch(/text-direction/);
    }
    for (const c of ["\u2066", "\u2067", "\u2068", "\u2069"])
      expect(refused(`${c}abcd`)).toMatch(/direction/);
    expect(refused("\u202Enimda")).toMatch(/direction/);
  });

  it("refuses zero-width and other invisible characters, alone or inside a name", () => {
    const invisible = [
      "\u200B", // zero-width space
      "\u200C", // zero-width non-joiner
      "\u200D", // zero-width joiner
      "\u2060", // word joiner
      "\uFEFF", // byte order mark (String.prototype.trim would drop it at the ends)
      "\u00AD", // soft hyphen
      "\u034F", // combining grapheme joiner
      "\u180E", // Mongolian vowel separator
      "\u3164", // Hangul filler
      "\u115F", // Hangul choseong filler
      "\u2800", // blank Braille pattern
      "\u{E0041}", // tag letter A
      "\uE000", // private use
    ];
    for (const c of invisible) {
      expect(refused(c)).toMatch(/invisible/);
      expect(refused(`al${c}ice`)).toMatch(/invisible/);
      expect(refused(`${c}alice`)).toMatch(/invisible/);
    }
  });

  it("refuses variation selectors alone, but not after the character they vary", () => {
    expect(refused("\uFE0F")).toMatch(/invisible/);
    expect(refused("\uFE0F\uFE0F")).toMatch(/invisible/);
    expect(refused("ab \uFE0F")).toMatch(/invisible/);
    expect(refused("a\uFE0F\uFE0F")).toMatch(/invisible/);
    expect(refused("\u{E0100}abc")).toMatch(/invisible/);
    expect(nameOf("\u2764\uFE0F")).toBe("\u2764\uFE0F");
    expect(nameOf("\u845B\u{E0100}")).toBe("\u845B\u{E0100}"); // an ideographic variation sequence
  });

  it("refuses names that are empty after NFKC and trimming, or have nothing visible", () => {
    for (const name of ["", "   ", "\u3000", "\u00A0\u2003", "\u0301\u0301"])
      expect(refused(name)).toBeDefined();
  });
});
