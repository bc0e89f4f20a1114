/**
 * Checks shared by display names (`join`) and account names: characters that hide or reorder
 * text, and names that mix writing systems.
 */

// Bidirectional controls: they reorder the text around them (after U+202E, "nimda" reads
// "admin"), so one name can be made to look like another.
const BIDI_CONTROL = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

// Variation selectors (standard, ideographic, Mongolian free variation selectors): they change
// how the character before them is drawn and are invisible on their own.
const VARIATION_SELECTOR = /[\u180B-\u180D\u180F\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/u;

// Characters that draw nothing: every default-ignorable code point (zero-width space, joiners,
// word joiner, soft hyphen, BOM, Hangul fillers, tags...), every other format, surrogate,
// private-use or unassigned code point, and the blank Braille pattern. Variation selectors are
// default-ignorable too; they are judged separately.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{C}\u2800]/u;

// What a variation selector may follow: a visible character it can apply to.
const VISIBLE_BASE = /[\p{L}\p{N}\p{S}\p{P}]/u;

/** Why a name was refused by {@link findHiddenCharacters}. */
export type HiddenCharacterProblem = "bidi_control" | "invisible";

/**
 * The first problem with characters that hide or reorder text in `name`, or `undefined`.
 * Bidi controls and invisible characters are always refused; a variation selector is refused
 * unless `variationSelectors` is true and it directly follows a visible character (as in
 * "❤️", U+2764 U+FE0F), never at the start, after a space or after another selector.
 */
export function findHiddenCharacters(
  name: string,
  variationSelectors: boolean,
): HiddenCharacterProblem | undefined {
  if (BIDI_CONTROL.test(name)) return "bidi_control";
  let previous = "";
  for (const char of name) {
    if (VARIATION_SELECTOR.test(char)) {
      if (!variationSelectors || !VISIBLE_BASE.test(previous)) return "invisible";
    } else if (INVISIBLE.test(char)) {
      return "invisible";
    }
    previous = char;
  }
  return undefined;
}

/**
 * `name` without leading and trailing white space. Unlike `String.prototype.trim`, it keeps a
 * U+FEFF (byte order mark), which is invisible rather than white space, for
 * {@link findHiddenCharacters} to refuse.
 */
export function trimWhiteSpace(name: string): string {
  return name.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, "");
}

/** True when `name` has at least one letter, digit, symbol or punctuation mark. */
export function hasVisibleCharacter(name: string): boolean {
  return VISIBLE_BASE.test(name);
}

// Every Unicode script value but Common, Inherited and Unknown (long names, as
// `\p{Script=…}` takes them), up to Unicode 17. Those the running engine does not know are
// skipped; letters of a script missing here count as one "Unknown" script (see scriptOf).
const SCRIPTS = [
  // The likeliest first: scriptOf tries them in order.
  "Latin",
  "Cyrillic",
  "Greek",
  "Han",
  "Arabic",
  "Hiragana",
  "Katakana",
  "Hangul",
  "Devanagari",
  "Hebrew",
  "Thai",
  "Armenian",
  "Georgian",
  "Bengali",
  "Tamil",
  "Telugu",
  "Adlam",
  "Ahom",
  "Anatolian_Hieroglyphs",
  "Avestan",
  "Balinese",
  "Bamum",
  "Bassa_Vah",
  "Batak",
  "Beria_Erfe",
  "Bhaiksuki",
  "Bopomofo",
  "Brahmi",
  "Braille",
  "Buginese",
  "Buhid",
  "Canadian_Aboriginal",
  "Carian",
  "Caucasian_Albanian",
  "Chakma",
  "Cham",
  "Cherokee",
  "Chorasmian",
  "Coptic",
  "Cuneiform",
  "Cypriot",
  "Cypro_Minoan",
  "Deseret",
  "Dives_Akuru",
  "Dogra",
  "Duployan",
  "Egyptian_Hieroglyphs",
  "Elbasan",
  "Elymaic",
  "Ethiopic",
  "Garay",
  "Glagolitic",
  "Gothic",
  "Grantha",
  "Gujarati",
  "Gunjala_Gondi",
  "Gurmukhi",
  "Gurung_Khema",
  "Hanifi_Rohingya",
  "Hanunoo",
  "Hatran",
  "Imperial_Aramaic",
  "Inscriptional_Pahlavi",
  "Inscriptional_Parthian",
  "Javanese",
  "Kaithi",
  "Kannada",
  "Kawi",
  "Kayah_Li",
  "Kharoshthi",
  "Khitan_Small_Script",
  "Khmer",
  "Khojki",
  "Khudawadi",
  "Kirat_Rai",
  "Lao",
  "Lepcha",
  "Limbu",
  "Linear_A",
  "Linear_B",
  "Lisu",
  "Lycian",
  "Lydian",
  "Mahajani",
  "Makasar",
  "Malayalam",
  "Mandaic",
  "Manichaean",
  "Marchen",
  "Masaram_Gondi",
  "Medefaidrin",
  "Meetei_Mayek",
  "Mende_Kikakui",
  "Meroitic_Cursive",
  "Meroitic_Hieroglyphs",
  "Miao",
  "Modi",
  "Mongolian",
  "Mro",
  "Multani",
  "Myanmar",
  "Nabataean",
  "Nag_Mundari",
  "Nandinagari",
  "New_Tai_Lue",
  "Newa",
  "Nko",
  "Nushu",
  "Nyiakeng_Puachue_Hmong",
  "Ogham",
  "Ol_Chiki",
  "Ol_Onal",
  "Old_Hungarian",
  "Old_Italic",
  "Old_North_Arabian",
  "Old_Permic",
  "Old_Persian",
  "Old_Sogdian",
  "Old_South_Arabian",
  "Old_Turkic",
  "Old_Uyghur",
  "Oriya",
  "Osage",
  "Osmanya",
  "Pahawh_Hmong",
  "Palmyrene",
  "Pau_Cin_Hau",
  "Phags_Pa",
  "Phoenician",
  "Psalter_Pahlavi",
  "Rejang",
  "Runic",
  "Samaritan",
  "Saurashtra",
  "Sharada",
  "Shavian",
  "Siddham",
  "Sidetic",
  "SignWriting",
  "Sinhala",
  "Sogdian",
  "Sora_Sompeng",
  "Soyombo",
  "Sundanese",
  "Sunuwar",
  "Syloti_Nagri",
  "Syriac",
  "Tagalog",
  "Tagbanwa",
  "Tai_Le",
  "Tai_Tham",
  "Tai_Viet",
  "Tai_Yo",
  "Takri",
  "Tangsa",
  "Tangut",
  "Thaana",
  "Tibetan",
  "Tifinagh",
  "Tirhuta",
  "Todhri",
  "Tolong_Siki",
  "Toto",
  "Tulu_Tigalari",
  "Ugaritic",
  "Vai",
  "Vithkuqi",
  "Wancho",
  "Warang_Citi",
  "Yezidi",
  "Yi",
  "Zanabazar_Square",
] as const;

// Characters that go with any script: digits, spaces, punctuation (Common), combining marks
// (Inherited).
const ANY_SCRIPT = /[\p{Script=Common}\p{Script=Inherited}]/u;

let scriptTests: readonly (readonly [string, RegExp])[] | undefined;

/** The script tests the running engine supports, compiled on first use. */
function knownScripts(): readonly (readonly [string, RegExp])[] {
  if (scriptTests === undefined) {
    const tests: [string, RegExp][] = [];
    for (const script of SCRIPTS) {
      try {
        tests.push([script, new RegExp(`\\p{Script=${script}}`, "u")]);
      } catch {
        // A script newer than this engine's Unicode: its letters count as unknown.
      }
    }
    scriptTests = tests;
  }
  return scriptTests;
}

/** The script names `\p{Script=…}` is tried with (for tests). */
export const SCRIPT_NAMES: readonly string[] = SCRIPTS;

/**
 * The Unicode script of one character: `undefined` for Common and Inherited characters,
 * `"Unknown"` for one this module has no name for (a script newer than its list).
 */
export function scriptOf(char: string): string | undefined {
  if (ANY_SCRIPT.test(char)) return undefined;
  for (const [script, test] of knownScripts()) if (test.test(char)) return script;
  return "Unknown";
}

// Script sets that are one writing system (UTS #39, "highly restrictive"): Japanese, Chinese
// with Bopomofo, Korean, each possibly with Latin.
const WRITING_SYSTEMS: readonly ReadonlySet<string>[] = [
  new Set(["Latin", "Han", "Hiragana", "Katakana"]),
  new Set(["Latin", "Han", "Bopomofo"]),
  new Set(["Latin", "Han", "Hangul"]),
];

/**
 * True when `name` mixes scripts, like "aliсe" with a Cyrillic "с" or "Αlice" with a Greek
 * "Α". Digits, spaces, punctuation and combining marks (scripts Common and Inherited) go with
 * any script. The combinations of UTS #39's "highly restrictive" level are one writing system,
 * not a mix: Han with Hiragana and Katakana (Japanese), with Bopomofo, or with Hangul (Korean),
 * each possibly with Latin.
 */
export function mixesScripts(name: string): boolean {
  const scripts = new Set<string>();
  for (const char of name) {
    const script = scriptOf(char);
    if (script !== undefined) scripts.add(script);
  }
  if (scripts.size <= 1) return false;
  return !WRITING_SYSTEMS.some((system) => [...scripts].every((s) => system.has(s)));
}
