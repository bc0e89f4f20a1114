import { describe, expect, it } from "vitest";
import { findHiddenCharacters, mixesScripts, SCRIPT_NAMES, scriptOf, trimWhiteSpace } from "./names.js";

describe("scriptOf", () => {
  it("names the script of letters, and none for digits, spaces, punctuation and marks", () => {
    expect(scriptOf("a")).toBe("Latin");
    expect(scriptOf("\u0441")).toBe("Cyrillic");
    expect(scriptOf("\u0391")).toBe("Greek");
    expect(scriptOf("李")).toBe("Han");
    expect(scriptOf("た")).toBe("Hiragana");
    for (const c of ["1", " ", "-", ".", "_", "'", "\u0301"]) expect(scriptOf(c)).toBeUndefined();
  });

  it("knows every script of the running engine's Unicode", () => {
    const known = SCRIPT_NAMES.flatMap((s) => {
      try {
        new RegExp(`\\p{Script=${s}}`, "u");
        return [`\\p{Script=${s}}`];
      } catch {
        return [];
      }
    });
    const covered = new RegExp(
      `[${known.join("")}\\p{Script=Common}\\p{Script=Inherited}\\p{Script=Unknown}]`,
      "u",
    );
    const missing: string[] = [];
    for (let cp = 0; cp <= 0x10ffff && missing.length < 10; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      if (!covered.test(String.fromCodePoint(cp))) missing.push(`U+${cp.toString(16)}`);
    }
    // A newer Node may bring new scripts: add their names to SCRIPTS in names.ts.
    expect(missing).toEqual([]);
  });
});

describe("mixesScripts", () => {
  it("refuses Latin with Cyrillic or Greek look-alikes", () => {
    expect(mixesScripts("ali\u0441e")).toBe(true); // Cyrillic с
    expect(mixesScripts("\u0391lice")).toBe(true); // Greek Α
    expect(mixesScripts("p\u0430ypal")).toBe(true); // Cyrillic а
    expect(mixesScripts("Ана Ana")).toBe(true);
  });

  it("accepts one script with digits, spaces and punctuation, and the CJK writing systems", () => {
    for (const name of [
      "José",
      "Ана",
      "李小龙",
      "Ana-Maria 2",
      "Άννα",
      "山田たろう",
      "タロウ山田",
      "김민준 金",
      "Tokyo東京",
      "ㄅ李",
    ]) {
      expect(mixesScripts(name), name).toBe(false);
    }
  });
});

describe("findHiddenCharacters", () => {
  it("refuses variation selectors everywhere unless allowed after a visible character", () => {
    expect(findHiddenCharacters("\u2764\uFE0F", true)).toBeUndefined();
    expect(findHiddenCharacters("\u2764\uFE0F", false)).toBe("invisible");
    expect(findHiddenCharacters("alice\uFE0F", false)).toBe("invisible");
  });

  it("keeps a byte order mark at the ends when trimming, so that it is refused", () => {
    expect(trimWhiteSpace(" \uFEFFa b\u3000")).toBe("\uFEFFa b");
    expect(findHiddenCharacters(trimWhiteSpace("\uFEFFalice"), true)).toBe("invisible");
  });
});
