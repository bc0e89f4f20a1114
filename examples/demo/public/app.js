// WhisperChat demo page, on the WhisperChat client SDK (@whisperchat/client), which the demo
// server bundles and serves as /client.js. Plain ES module, no build step for the page itself.
//
// Rule for everything that comes from the network: it is put into the page with
// textContent only, never innerHTML.

import { createClient, PROTOCOL_VERSION, webStorage } from "/client.js";

const WS_PATH = "/whisper";

/** Used until `welcome` tells us the server's real limits. */
const DEFAULT_LIMITS = {
  maxMessageChars: 1000,
  maxRangeKm: 100,
  maxNameChars: 32,
  messagesPerSec: 5,
  messageBurst: 10,
  resumeGraceMs: 0,
  maxPayloadBytes: 64 * 1024,
};

const DEFAULT_RANGE_KM = 25;
const MIN_RANGE_KM = 1;
/** Send `typing {active: true}` at most this often while the user types. */
const TYPING_REFRESH_MS = 2000;
/** Send `typing {active: false}` after this long without a keystroke. */
const TYPING_IDLE_MS = 3000;
/** Hide the partner's typing indicator if no refresh arrives (a `false` may be dropped). */
const TYPING_SHOW_MS = 6000;
const ERROR_HIDE_MS = 9000;
/** The chat log kept for a reload: at most this many lines. */
const SAVED_LOG_LINES = 200;

/**
 * After `next`, how long the server keeps the two users apart, in ms: the demo server writes its
 * setting into the page. `null` when the page does not know it.
 */
const NEXT_COOLDOWN_MS = (() => {
  const raw = document.querySelector('meta[name="whisper-next-cooldown-ms"]')?.getAttribute("content");
  const n = raw ? Number(raw) : Number.NaN;
  return Number.isFinite(n) && n >= 0 ? n : null;
})();

/** sessionStorage keys: per tab, so two tabs are two users, and a reload resumes its own tab. */
const KEYS = {
  resume: "whisperchat.resume",
  account: "whisperchat.account",
  mode: "whisperchat.mode",
  page: "whisperchat.page",
  device: "whisperchat.device",
};

const CITIES = [
  { id: "paris", name: "Paris", lat: 48.8566, lng: 2.3522 },
  { id: "london", name: "London", lat: 51.5074, lng: -0.1278 },
  { id: "new-york", name: "New York", lat: 40.7128, lng: -74.006 },
  { id: "tokyo", name: "Tokyo", lat: 35.6762, lng: 139.6503 },
  { id: "sao-paulo", name: "São Paulo", lat: -23.5505, lng: -46.6333 },
  { id: "sydney", name: "Sydney", lat: -33.8688, lng: 151.2093 },
  { id: "berlin", name: "Berlin", lat: 52.52, lng: 13.405 },
  { id: "cairo", name: "Cairo", lat: 30.0444, lng: 31.2357 },
  { id: "mumbai", name: "Mumbai", lat: 19.076, lng: 72.8777 },
  { id: "san-francisco", name: "San Francisco", lat: 37.7749, lng: -122.4194 },
];

const ERROR_TEXT = {
  bad_request: "The server couldn't understand that request.",
  unknown_type: "The server doesn't support that action.",
  invalid_location:
    "That location isn't valid. Latitude must be between −90 and 90, longitude between −180 and 180.",
  invalid_range: null, // built from the limits, see describeError
  too_large: "That's too long for the server to accept.",
  not_in_room: "You're not in a chat right now, so that couldn't be sent.",
  in_room: "You're already in a chat. Leave it or press Next first.",
  rate_limited: null, // built from retryAfterMs, see describeError
  forbidden: "You're not allowed to do that.",
  unauthorized: "Your sign-in wasn't accepted. Please sign in again.",
  internal: "Something went wrong on the server. Please try again.",
  // raised by the client SDK itself
  timeout: "The server didn't answer in time. Please try again.",
  not_connected: "You're not connected right now. Wait for the connection to come back, then try again.",
  connection_lost: "The connection dropped before the server answered. Please try again.",
  session_lost: "That wasn't delivered: your chat ended while you were offline.",
  connect_failed: "Couldn't reach the chat server.",
  closed: "The connection is closed.",
};

const CLOSE_TEXT = {
  1000: "The connection was closed.",
  1005: "The connection was closed.",
  1001: "The server is shutting down.",
  1006: "The connection to the server was lost.",
  1008: "The server closed the connection because of too many requests, or this session was removed.",
  1009: "The server closed the connection because a message was too large.",
  1011: "The server ran into an internal error.",
  1012: "The server is restarting. Try reconnecting in a moment.",
  4001: "This chat continued in another tab or window.",
  4401: "Your sign-in expired. Sign in again to keep chatting.",
};

const PARTNER_LEFT_TEXT = {
  left: "Your partner moved on.",
  next: "Your partner moved on.",
  disconnected: "Your partner disconnected.",
  lost: "The server lost this chat (it restarted). Find someone new to go on.",
};

// ------------------------------------------------------------------------------------------
// DOM

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
};

const ui = {
  card: $("card"),
  main: $("main"),
  status: $("status"),
  error: $("error"),
  errorText: $("error-text"),
  errorClose: $("error-close"),
  reconnecting: $("reconnecting"),
  reconnectingText: $("reconnecting-text"),
  // account
  viewAccount: $("view-account"),
  accountForm: $("account-form"),
  accountName: $("account-name"),
  accountPassword: $("account-password"),
  accountError: $("account-error"),
  signIn: $("sign-in"),
  signUp: $("sign-up"),
  guest: $("guest"),
  // setup
  viewSetup: $("view-setup"),
  accountBarText: $("account-bar-text"),
  accountSwitch: $("account-switch"),
  form: $("setup-form"),
  nameField: $("name-field"),
  name: $("name"),
  nameHint: $("name-hint"),
  nameError: $("name-error"),
  geo: $("geo"),
  geoLabel: $("geo-label"),
  geoStatus: $("geo-status"),
  city: $("city"),
  lat: $("lat"),
  latError: $("lat-error"),
  lng: $("lng"),
  lngError: $("lng-error"),
  range: $("range"),
  rangeSlider: $("range-slider"),
  rangeHint: $("range-hint"),
  rangeError: $("range-error"),
  find: $("find"),
  // waiting
  viewWaiting: $("view-waiting"),
  waitingText: $("waiting-text"),
  waitingTimer: $("waiting-timer"),
  waitingRange: $("waiting-range"),
  waitingRangeValue: $("waiting-range-value"),
  apart: $("apart"),
  cancel: $("cancel"),
  // disconnected
  viewDisconnected: $("view-disconnected"),
  disconnectedReason: $("disconnected-reason"),
  disconnectedDetail: $("disconnected-detail"),
  reconnect: $("reconnect"),
  disconnectedSignIn: $("disconnected-sign-in"),
  // chat
  viewChat: $("view-chat"),
  partnerAvatar: $("partner-avatar"),
  partnerName: $("partner-name"),
  partnerDistance: $("partner-distance"),
  chatActions: $("chat-actions"),
  next: $("next"),
  leave: $("leave"),
  block: $("block"),
  partnerAway: $("partner-away"),
  partnerAwayText: $("partner-away-text"),
  blockPanel: $("block-panel"),
  blockTitle: $("block-title"),
  blockCancel: $("block-cancel"),
  blockConfirm: $("block-confirm"),
  log: $("log"),
  typing: $("typing"),
  typingText: $("typing-text"),
  composer: $("composer"),
  message: $("message"),
  counter: $("counter"),
  send: $("send"),
  endedPanel: $("ended-panel"),
  endedText: $("ended-text"),
  findAgain: $("find-again"),
  changeSettings: $("change-settings"),
};

// ------------------------------------------------------------------------------------------
// State

/**
 * @typedef {"account" | "connecting" | "idle" | "waiting" | "matched" | "ended" | "disconnected"} ViewState
 */

const app = {
  /** @type {ViewState} */
  state: "connecting",
  /** The SDK client, made once the user chose guest or an account. */
  client: null,
  /** The client's connection state: "connecting" | "open" | "reconnecting" | "closed". */
  conn: "closed",
  /** The reconnect attempt under way, for the "reconnecting" notice. */
  reconnectAttempt: 0,
  limits: { ...DEFAULT_LIMITS },
  /** @type {{userId: string, name: string} | null} */
  user: null,
  /** The signed-in account: {token, expiresAt, userId, name}; null for a guest. */
  account: null,
  /** The last join parameters we sent: {location: {lat, lng}, rangeKm, name?}. */
  lastJoin: null,
  /** The current or last room: {roomId, partner: {name, distanceKm}, open, away}. */
  room: null,
  /** Local time the waiting timer counts from. */
  waitingSince: 0,
  /** The action in flight that the UI waits for ("join" | "next" | "block"), or null. */
  busy: null,
  /** Bumped by every `leave`: replies to requests sent before it are stale. */
  epoch: 0,
  /** `leave` requests not yet answered; a `matched` meanwhile is for a room we're leaving. */
  leavesInFlight: 0,
  rateLimitedUntil: 0,
  /** Why the connection closed, for the disconnected view: {text, detail, signIn}. */
  disconnect: null,
  /** The conversation, kept so a reload can show it again: [{kind, text, ts, id?, status?}]. */
  log: [],
  /** The view state a session that could not be resumed had, until `sessionLost` explains it. */
  lostState: null,
  /**
   * Everyone the server keeps this user apart from, to tell why they are not found again, oldest
   * first, one entry per name: [{name, how: "skipped" | "skippedBy" | "blocked", until}]; `until`
   * is when it ends (ms), null when the page does not know (see keepApart).
   */
  apart: [],
};

/** For browser tests: kept up to date on every state change. */
const testHook = { state: app.state, conn: app.conn, client: null };
window.whisperDemo = testHook;

const storage = {
  get(key) {
    try {
      const raw = sessionStorage.getItem(key);
      return raw === null ? null : JSON.parse(raw);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      if (value === null || value === undefined) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, JSON.stringify(value));
    } catch {
      // storage disabled or full: a reload starts over, the rest works
    }
  },
};

/** A message id of our own, so a message can be sent again (after a reload) without a duplicate. */
const newMessageId = () => {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return `m-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
};

// ------------------------------------------------------------------------------------------
// Small helpers

/** Length in Unicode code points, the way the server counts. */
const codePoints = (s) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

// biome-ignore lint/suspicious/noControlCharactersInRegex: we are matching control characters on purpose
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

const clamp = (n, lo, hi) => Math.min(hi, Math.max(lo, n));

const formatClock = (ms) => {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
};

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const formatTime = (ts) => timeFormat.format(new Date(Number.isFinite(ts) ? ts : Date.now()));

const formatKm = (km) => {
  const n = Math.round(km * 10) / 10;
  return `${Number.isInteger(n) ? n : n.toFixed(1)} km`;
};

// The server rounds distances up (to whole steps of its location precision): an upper bound.
const describeDistance = (distanceKm) => `within ${Math.max(1, Math.ceil(Number(distanceKm) || 1))} km`;

const partnerName = () => {
  const name = app.room?.partner?.name;
  return typeof name === "string" && name.trim() ? name.trim() : "Your partner";
};

/** Parses a typed coordinate; accepts a decimal comma. Returns NaN when it isn't a number. */
const parseCoordinate = (raw) => {
  const s = raw.trim().replace(/\s+/g, "").replace(",", ".").replace("−", "-");
  if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(s)) return Number.NaN;
  return Number(s);
};

// Range slider: logarithmic, so 1–10 km is as easy to pick as 100–1000 km.
const SLIDER_STEPS = 1000;
const sliderToKm = (v) => {
  const max = app.limits.maxRangeKm;
  if (max <= MIN_RANGE_KM) return max;
  const t = clamp(Number(v) / SLIDER_STEPS, 0, 1);
  const km = Math.exp(Math.log(MIN_RANGE_KM) + t * (Math.log(max) - Math.log(MIN_RANGE_KM)));
  return clamp(Math.round(km), MIN_RANGE_KM, Math.floor(max));
};
const kmToSlider = (km) => {
  const max = app.limits.maxRangeKm;
  if (max <= MIN_RANGE_KM) return SLIDER_STEPS;
  const k = clamp(Number(km) || MIN_RANGE_KM, MIN_RANGE_KM, max);
  return Math.round(
    ((Math.log(k) - Math.log(MIN_RANGE_KM)) / (Math.log(max) - Math.log(MIN_RANGE_KM))) * SLIDER_STEPS,
  );
};

// ------------------------------------------------------------------------------------------
// Error banner

let errorTimer = 0;
let rateTimer = 0;

function showError(text, { sticky = false, code = "" } = {}) {
  clearTimeout(errorTimer);
  ui.error.dataset.kind = "error";
  ui.error.dataset.code = code;
  ui.errorText.textContent = text;
  ui.error.hidden = false;
  if (!sticky) errorTimer = window.setTimeout(hideError, ERROR_HIDE_MS);
}

function hideError() {
  clearTimeout(errorTimer);
  ui.error.hidden = true;
  ui.errorText.textContent = "";
  delete ui.error.dataset.code;
}

function rateLimitText() {
  const seconds = Math.max(1, Math.ceil((app.rateLimitedUntil - Date.now()) / 1000));
  return `You're sending too fast — try again in ${seconds} s`;
}

/** The rate-limit banner stays at least this long, even when the wait is shorter. */
const RATE_BANNER_MIN_MS = 2500;

function startRateLimit(retryAfterMs) {
  const wait = Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? retryAfterMs : 1000;
  const now = Date.now();
  app.rateLimitedUntil = Math.max(app.rateLimitedUntil, now + wait);
  const bannerUntil = Math.max(app.rateLimitedUntil, now + RATE_BANNER_MIN_MS);
  clearTimeout(errorTimer);
  ui.error.dataset.kind = "rate";
  ui.error.dataset.code = "rate_limited";
  ui.errorText.textContent = rateLimitText();
  ui.error.hidden = false;
  clearInterval(rateTimer);
  rateTimer = window.setInterval(() => {
    const t = Date.now();
    const isRate = ui.error.dataset.kind === "rate";
    if (app.rateLimitedUntil && t >= app.rateLimitedUntil) {
      app.rateLimitedUntil = 0;
      if (isRate) ui.errorText.textContent = "You can send messages again.";
      renderComposer();
    }
    if (t >= bannerUntil) {
      clearInterval(rateTimer);
      if (isRate) hideError();
      return;
    }
    if (isRate && app.rateLimitedUntil) {
      const text = rateLimitText();
      if (ui.errorText.textContent !== text) ui.errorText.textContent = text;
    }
  }, 200);
  renderComposer();
}

/**
 * The same leaky bucket as the server (limits.messagesPerSec, limits.messageBurst), so a fast
 * typist is told to slow down before a message bounces. The server stays the judge.
 */
const bucket = { tokens: DEFAULT_LIMITS.messageBurst, at: Date.now() };

function takeMessageToken() {
  const { messagesPerSec, messageBurst } = app.limits;
  if (!(messagesPerSec > 0) || !(messageBurst > 0)) return 0;
  const now = Date.now();
  bucket.tokens = Math.min(messageBurst, bucket.tokens + ((now - bucket.at) / 1000) * messagesPerSec);
  bucket.at = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return Math.ceil(((1 - bucket.tokens) / messagesPerSec) * 1000);
}

const isRateLimited = () => app.rateLimitedUntil > Date.now();

function describeError(frame) {
  const code = typeof frame.code === "string" ? frame.code : "";
  if (code === "rate_limited") return rateLimitText();
  if (code === "invalid_range") {
    return `The range must be between ${MIN_RANGE_KM} and ${formatKm(app.limits.maxRangeKm)}.`;
  }
  const known = ERROR_TEXT[code];
  if (known) return known;
  return "Something went wrong. Please try again.";
}

// ------------------------------------------------------------------------------------------
// Connection (the SDK reconnects and resumes by itself; this is what the page shows of it)

function socketUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${WS_PATH}`;
}

/** Set by buttons whose view disappears on connect: put keyboard focus somewhere useful. */
let focusFindAfterWelcome = false;

/**
 * This tab's device id: a guest stays the same user across reloads of the tab, so the people
 * it skipped or blocked stay apart from it (two tabs are still two users).
 */
function deviceId() {
  let id = storage.get(KEYS.device);
  if (typeof id !== "string") {
    id = crypto.randomUUID().replaceAll("-", "");
    storage.set(KEYS.device, id);
  }
  return id;
}

function makeClient() {
  const client = createClient({
    deviceId: deviceId(),
    url: socketUrl(),
    // Called before every connection attempt and before the token expires (a guest has none).
    getToken: () => app.account?.token,
    // A reload of this tab takes the session back.
    resumeStorage: webStorage(sessionStorage, KEYS.resume),
  });
  client.on("state", ({ state }) => {
    app.conn = state;
    testHook.conn = state;
    if (state === "open") app.reconnectAttempt = 0;
    render();
  });
  client.on("reconnecting", ({ attempt }) => {
    app.reconnectAttempt = attempt;
    render();
  });
  client.on("welcome", onWelcome);
  client.on("resumed", onResumed);
  client.on("sessionLost", onSessionLost);
  client.on("disconnected", onDisconnected);
  client.on("matched", onMatched);
  client.on("message", onMessage);
  client.on("typing", onTyping);
  client.on("partner_away", (frame) => onPartnerAway(frame, true));
  client.on("partner_back", (frame) => onPartnerAway(frame, false));
  client.on("partner_left", onPartnerLeft);
  // Errors that answer a request reject its promise; only the others are shown from here.
  client.on("error", (frame) => {
    if (frame.id === undefined) showError(describeError(frame), { code: frame.code });
  });
  return client;
}

/** Connects (resuming the tab's session when there is one to resume). */
async function connect() {
  app.client ??= makeClient();
  testHook.client = app.client;
  app.disconnect = null;
  if (app.state !== "connecting") setState("connecting");
  try {
    await app.client.connect();
  } catch (error) {
    if (app.client?.state === "open") return;
    const signIn = !app.account;
    app.disconnect = {
      text:
        error?.code === "timeout"
          ? "The server didn't answer. It may be overloaded."
          : "Couldn't connect to the chat server. It may be offline or busy — or it only lets signed-in users in.",
      detail: "",
      signIn,
    };
    setState("disconnected");
    ui.reconnect.focus();
  }
}

function onWelcome(frame) {
  if (frame.protocol !== PROTOCOL_VERSION) {
    showError(
      `This page speaks protocol version ${PROTOCOL_VERSION}, but the server speaks version ${String(frame.protocol)}. Some things may not work.`,
      { sticky: true },
    );
  }
  const limits = frame.limits && typeof frame.limits === "object" ? frame.limits : {};
  for (const key of Object.keys(DEFAULT_LIMITS)) {
    const v = limits[key];
    app.limits[key] = typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : DEFAULT_LIMITS[key];
  }
  const previousUserId = app.user?.userId;
  app.user = frame.user && typeof frame.user === "object" ? frame.user : null;
  bucket.tokens = app.limits.messageBurst;
  bucket.at = Date.now();
  applyLimits();
  renderAccount();
  if (frame.resumed) return; // onResumed restores what the page showed
  // A fresh session: nothing going on. When it replaces one that could not be resumed, the
  // `sessionLost` that follows says what was lost, so remember what the page was doing.
  app.lostState = app.state === "connecting" ? savedState() : app.state;
  app.room = null;
  // Whom the server keeps apart is per user: a guest's new session on this tab is the same user
  // (its device id), a sign-in or sign-out is another.
  if (app.user?.userId !== previousUserId) app.apart = [];
  app.busy = null;
  clearLog();
  setState("idle");
  if (focusFindAfterWelcome) ui.find.focus();
  focusFindAfterWelcome = false;
}

/**
 * The session came back. After a drop, the page still shows everything: the SDK sends our
 * unacknowledged messages again and the server replays what we missed. After a reload, the page
 * restores what it showed from sessionStorage and sends again the messages it had not seen
 * acknowledged (the server drops those it already had, by id).
 */
function onResumed() {
  hideError();
  if (app.state === "connecting") {
    // A reload: show again what the page showed.
    const saved = storage.get(KEYS.page);
    if (saved && typeof saved === "object") restorePage(saved);
    else setState("idle");
    return;
  }
  if (app.state === "matched") addSystem("You're back online.");
  render();
}

/** What a reload would restore (see savePage): the view the page showed before it. */
function savedState() {
  const saved = storage.get(KEYS.page);
  return saved && typeof saved === "object" && typeof saved.state === "string" ? saved.state : "idle";
}

const SESSION_LOST_TEXT = {
  matched: "You were offline for too long, so your chat ended. Find someone new when you're ready.",
  waiting: "You were offline for too long, so you stopped looking for a match. Look again when you're ready.",
};

/** A resume failed (offline past the grace, or the server restarted): onWelcome reset the page. */
function onSessionLost() {
  const lost = app.lostState;
  app.lostState = null;
  app.room = null;
  app.busy = null;
  clearLog();
  storage.set(KEYS.page, null);
  setState("idle");
  showError(SESSION_LOST_TEXT[lost] ?? "Your previous session had ended. You're connected again.", {
    sticky: true,
    code: "session_lost",
  });
  ui.find.focus();
}

function onDisconnected({ code, reason, willReconnect }) {
  stopTyping({ notify: false });
  hidePartnerTyping();
  if (willReconnect) {
    render();
    return;
  }
  for (const el of ui.log.querySelectorAll('.msg[data-status="sending"]')) {
    setMessageStatus(el, "failed", "Not sent");
  }
  app.busy = null;
  if (app.room) app.room.open = false;
  app.disconnect = {
    text: CLOSE_TEXT[code] ?? `The connection closed unexpectedly (code ${code}).`,
    detail: typeof reason === "string" ? reason.trim() : "",
    signIn: code === 4401,
  };
  if (code === 4401) signOut({ quiet: true });
  storage.set(KEYS.page, null);
  setState("disconnected");
  ui.reconnect.focus();
}

// ------------------------------------------------------------------------------------------
// Incoming frames

function onMatched(frame) {
  // A match made just before the server saw our `leave`: the server closes that room itself.
  if (app.leavesInFlight > 0) return;
  const partner = frame.partner && typeof frame.partner === "object" ? frame.partner : {};
  app.room = {
    roomId: String(frame.roomId ?? ""),
    partner: {
      name: typeof partner.name === "string" ? partner.name : "",
      distanceKm: Number(partner.distanceKm),
    },
    open: true,
    away: false,
  };
  app.busy = null;
  // The server pairs us with no one it keeps apart: a timed entry of this name has ended (the
  // page counts from the reply, a little after the server), or was someone else of that name.
  app.apart = app.apart.filter((e) => e.how === "blocked" || e.name !== app.room.partner.name.trim());
  clearLog();
  hidePartnerTyping();
  closeBlockConfirm();
  ui.message.value = "";
  renderPartner();
  addSystem(
    `You're now chatting with ${partnerName()} (${describeDistance(app.room.partner.distanceKm)}). Say hi!`,
  );
  setState("matched");
  ui.message.focus();
  notifyIfHidden(`Matched with ${partnerName()}`);
}

function isCurrentRoom(frame) {
  return app.room?.open === true && frame.roomId === app.room.roomId;
}

function onMessage(frame) {
  if (!isCurrentRoom(frame) || app.state !== "matched") return;
  if (typeof frame.text !== "string") return;
  hidePartnerTyping();
  addMessage({ from: "partner", text: frame.text, ts: Number(frame.ts) });
  notifyIfHidden(`New message from ${partnerName()}`);
}

let partnerTypingTimer = 0;

function onTyping(frame) {
  if (app.state !== "matched") return;
  if (frame.active === true) {
    ui.typingText.textContent = `${partnerName()} is typing…`;
    ui.typing.hidden = false;
    clearTimeout(partnerTypingTimer);
    partnerTypingTimer = window.setTimeout(hidePartnerTyping, TYPING_SHOW_MS);
  } else {
    hidePartnerTyping();
  }
}

function hidePartnerTyping() {
  clearTimeout(partnerTypingTimer);
  ui.typing.hidden = true;
}

function onPartnerAway(frame, away) {
  if (!isCurrentRoom(frame)) return;
  if (app.room.away === away) return;
  app.room.away = away;
  if (away) {
    hidePartnerTyping();
    ui.partnerAwayText.textContent = `${partnerName()}'s connection dropped — waiting for them to come back…`;
    addSystem(`${partnerName()}'s connection dropped.`);
  } else {
    addSystem(`${partnerName()} is back.`);
  }
  savePage();
  render();
}

function onPartnerLeft(frame) {
  if (!isCurrentRoom(frame)) return;
  if (frame.reason === "next") keepApart("skippedBy");
  const reason = PARTNER_LEFT_TEXT[frame.reason] ?? "The chat has ended.";
  endChat(reason);
  notifyIfHidden(reason);
}

/** A request was refused or failed: say why, in words, with the retry time when there is one. */
function onRequestError(type, error) {
  const code = typeof error?.code === "string" ? error.code : "";
  if (error?.message) console.info(`${type} failed: ${code}: ${error.message}`);
  // A radius change that raced with a match: harmless, the match wins.
  if (type === "join" && code === "in_room" && app.state === "matched") return;
  if (code === "rate_limited") {
    startRateLimit(Number(error.retryAfterMs));
  } else if (code === "connection_lost" && (type === "next" || type === "block")) {
    showError("The connection dropped while that was being sent. If nothing changes, try again.");
  } else {
    showError(describeError(error), { code });
  }
  if (app.busy === type) app.busy = null;
  if (type === "join" && app.state === "idle") {
    if (code === "invalid_location") {
      setFieldError(ui.lat, ui.latError, "Check the latitude and longitude.");
      ui.lat.focus();
    } else if (code === "invalid_range") {
      setFieldError(ui.range, ui.rangeError, describeError(error));
      ui.range.focus();
    }
  }
  render();
}

// ------------------------------------------------------------------------------------------
// Saving and restoring the page (a reload resumes the session: see onResumed)

function savePage() {
  const s = app.state;
  if (s !== "idle" && s !== "waiting" && s !== "matched" && s !== "ended") return;
  storage.set(KEYS.page, {
    state: s,
    room: app.room,
    lastJoin: app.lastJoin,
    waitingSince: app.waitingSince,
    apart: app.apart,
    log: app.log.slice(-SAVED_LOG_LINES),
  });
}

function restorePage(saved) {
  const state = ["idle", "waiting", "matched", "ended"].includes(saved.state) ? saved.state : "idle";
  app.room = saved.room && typeof saved.room === "object" ? saved.room : null;
  app.lastJoin = saved.lastJoin && typeof saved.lastJoin === "object" ? saved.lastJoin : null;
  app.waitingSince = Number(saved.waitingSince) || Date.now();
  app.apart = Array.isArray(saved.apart) ? saved.apart.filter(isApartEntry) : [];
  if (app.lastJoin) setRangeInputs(app.lastJoin.rangeKm);
  clearLog();
  const lines = Array.isArray(saved.log) ? saved.log : [];
  const unsent = [];
  for (const line of lines) {
    if (line?.kind === "sys") addSystem(line.text, { ts: line.ts });
    else if (line?.kind === "own" || line?.kind === "partner") {
      const el = addMessage({
        from: line.kind,
        text: line.text,
        ts: line.ts,
        status: line.status,
        id: line.id,
      });
      if (line.kind === "own" && line.status === "sending") unsent.push(el);
    }
  }
  if (state === "ended") ui.endedText.textContent = "This chat has ended.";
  if ((state === "matched" || state === "ended") && !app.room) {
    setState("idle");
    return;
  }
  setState(state);
  for (const el of unsent) deliver(el);
}

// ------------------------------------------------------------------------------------------
// Chat log

function clearLog() {
  ui.log.replaceChildren();
  app.log = [];
  logPinned = true;
}

/** True while the reader is at the end of the log: new lines and layout changes keep it there. */
let logPinned = true;
/** The scrollTop we set ourselves, so the scroll event it causes isn't taken for the reader's. */
let autoScrollTop = -1;

function scrollLogToEnd(force = false) {
  if (force) logPinned = true;
  if (!logPinned) return;
  ui.log.scrollTop = ui.log.scrollHeight;
  autoScrollTop = ui.log.scrollTop;
}

function addSystem(text, { ts = Date.now() } = {}) {
  const el = document.createElement("div");
  el.className = "sys";
  const span = document.createElement("span");
  span.textContent = text;
  const time = document.createElement("time");
  time.className = "sys-time";
  time.textContent = formatTime(ts);
  el.append(span, time);
  ui.log.append(el);
  app.log.push({ kind: "sys", text, ts });
  scrollLogToEnd(true);
  savePage();
  return el;
}

/**
 * Adds a chat bubble. `from` is "own" or "partner". Own messages start as "sending…" and
 * become "sent" on `ack`; they carry their message id, so they can be sent again safely.
 */
function addMessage({ from, text, ts, status = "sent", id }) {
  const el = document.createElement("div");
  el.className = `msg msg-${from}`;
  el.dataset.status = status;

  const who = document.createElement("span");
  who.className = "sr-only";
  who.textContent = from === "own" ? "You: " : `${partnerName()}: `;

  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.append(who, document.createTextNode(text));

  const meta = document.createElement("div");
  meta.className = "msg-meta";
  const time = document.createElement("time");
  time.textContent = formatTime(ts);
  if (Number.isFinite(ts)) time.dateTime = new Date(ts).toISOString();
  meta.append(time);
  if (from === "own") {
    const state = document.createElement("span");
    state.className = "msg-state";
    meta.append(state);
  }
  el.append(bubble, meta);
  const line = { kind: from, text, ts, status };
  if (from === "own") {
    line.id = id ?? newMessageId();
    el.dataset.messageId = line.id;
    el.dataset.text = text;
  }
  lines.set(el, line);
  app.log.push(line);
  if (from === "own") setMessageStatus(el, status, status === "sending" ? "sending…" : "");

  // Consecutive messages from the same side in the same minute share one timestamp.
  const prev = ui.log.lastElementChild;
  if (
    prev?.classList.contains(`msg-${from}`) &&
    prev.dataset.status === "sent" &&
    prev.querySelector("time")?.textContent === time.textContent
  ) {
    prev.classList.add("msg-grouped");
  }

  ui.log.append(el);
  scrollLogToEnd(from === "own");
  savePage();
  return el;
}

/** Each bubble's entry in app.log, to keep its status for a reload. */
const lines = new WeakMap();

function setMessageStatus(el, status, label, ts) {
  el.dataset.status = status;
  const line = lines.get(el);
  if (line) {
    line.status = status;
    if (Number.isFinite(ts)) line.ts = ts;
  }
  const state = el.querySelector(".msg-state");
  if (state) {
    state.textContent = label ? `· ${label}` : "";
    state.hidden = !label;
  }
  if (Number.isFinite(ts)) {
    const time = el.querySelector("time");
    if (time) {
      time.textContent = formatTime(ts);
      time.dateTime = new Date(ts).toISOString();
    }
  }
  const oldRetry = el.querySelector(".link-btn");
  if (oldRetry) oldRetry.remove();
  if (status === "failed" && app.state === "matched") {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link-btn";
    retry.textContent = "Retry";
    retry.setAttribute("aria-label", "Retry sending this message");
    retry.addEventListener("click", () => retryMessage(el));
    el.querySelector(".msg-meta")?.append(retry);
  }
  savePage();
}

// ------------------------------------------------------------------------------------------
// Sending messages and typing

function composerText() {
  return ui.message.value.trim();
}

/** Whether the composer may send: in an open room, connected or about to resume. */
function canCompose() {
  return (
    app.state === "matched" && app.room?.open === true && (app.conn === "open" || app.conn === "reconnecting")
  );
}

function sendMessage() {
  if (!canCompose()) return;
  const text = composerText();
  if (!text) return;
  if (isRateLimited()) {
    startRateLimit(app.rateLimitedUntil - Date.now());
    return;
  }
  if (codePoints(text) > app.limits.maxMessageChars) {
    showError(`Messages can be at most ${app.limits.maxMessageChars} characters.`);
    return;
  }
  const waitMs = takeMessageToken();
  if (waitMs > 0) {
    startRateLimit(waitMs);
    return; // the text stays in the input
  }
  stopTyping({ notify: true });
  const el = addMessage({ from: "own", text, ts: Date.now(), status: "sending" });
  deliver(el);
  ui.message.value = "";
  renderComposer();
  ui.message.focus();
}

/**
 * Sends an own message by its id. While the connection is down the SDK keeps it and sends it
 * after the resume; sending an id again never makes a duplicate (the server remembers ids).
 */
function deliver(el) {
  const text = el.dataset.text;
  const id = el.dataset.messageId;
  if (!text || !id || !app.client) return;
  setMessageStatus(el, "sending", "sending…");
  app.client.send(text, { id }).then(
    (ack) => setMessageStatus(el, "sent", "", Number(ack.ts)),
    (error) => {
      setMessageStatus(el, "failed", "Not sent");
      if (error?.code === "rate_limited") startRateLimit(Number(error.retryAfterMs));
      else if (error?.code !== "closed") showError(describeError(error), { code: error?.code ?? "" });
    },
  );
}

function retryMessage(el) {
  if (!canCompose() || isRateLimited()) {
    if (isRateLimited()) startRateLimit(app.rateLimitedUntil - Date.now());
    return;
  }
  const waitMs = takeMessageToken();
  if (waitMs > 0) {
    startRateLimit(waitMs);
    return;
  }
  // keep it at the end of the conversation, where it now belongs in time
  ui.log.append(el);
  const line = lines.get(el);
  if (line) {
    app.log.splice(app.log.indexOf(line), 1);
    app.log.push(line);
  }
  deliver(el);
  scrollLogToEnd(true);
  ui.message.focus();
}

let typingActive = false;
let typingSentAt = 0;
let typingIdleTimer = 0;

function onComposerInput() {
  renderComposer();
  if (app.state !== "matched") return;
  if (!composerText()) {
    stopTyping({ notify: true });
    return;
  }
  const now = Date.now();
  if (now - typingSentAt >= TYPING_REFRESH_MS) {
    if (app.client?.typing(true)) {
      typingActive = true;
      typingSentAt = now;
    }
  }
  clearTimeout(typingIdleTimer);
  typingIdleTimer = window.setTimeout(() => stopTyping({ notify: true }), TYPING_IDLE_MS);
}

function stopTyping({ notify }) {
  clearTimeout(typingIdleTimer);
  if (!typingActive) return;
  typingActive = false;
  typingSentAt = 0;
  if (notify && app.state === "matched") app.client?.typing(false);
}

// ------------------------------------------------------------------------------------------
// Room actions

function endChat(reasonText) {
  if (app.room) {
    app.room.open = false;
    app.room.away = false;
  }
  stopTyping({ notify: false });
  hidePartnerTyping();
  closeBlockConfirm();
  addSystem(reasonText);
  ui.endedText.textContent = reasonText;
  setState("ended");
  ui.findAgain.focus();
}

/** Enters the waiting view after a `waiting` reply. */
function enterWaiting(frame) {
  const since = Number(frame.since);
  const age = Date.now() - since;
  app.waitingSince = Number.isFinite(age) && age >= 0 && age < 6 * 3600 * 1000 ? since : Date.now();
  if (app.room) app.room.open = false;
  closeBlockConfirm();
  stopTyping({ notify: false });
  setState("waiting");
  if (!ui.viewWaiting.contains(document.activeElement)) ui.cancel.focus();
}

/** The demo's hub keeps the default `sessionRecordTtlMs` (packages/core/src/settings.ts). */
const GUEST_BLOCK_MS = 24 * 3600 * 1000;

function isApartEntry(e) {
  return (
    e !== null &&
    typeof e === "object" &&
    typeof e.name === "string" &&
    ["skipped", "skippedBy", "blocked"].includes(e.how) &&
    (e.until === null || Number.isFinite(e.until))
  );
}

/**
 * Remembers that the server keeps us apart from the current partner now (see app.apart): after a
 * `next` (ours or theirs) for the cooldown; after a block for good, or, when a guest is involved,
 * for `sessionRecordTtlMs` (docs/protocol.md, "Limits"): the page knows only whether it is a guest.
 */
function keepApart(how) {
  let until = NEXT_COOLDOWN_MS === null ? null : Date.now() + NEXT_COOLDOWN_MS;
  if (how === "blocked") until = app.account ? null : Date.now() + GUEST_BLOCK_MS;
  const name = partnerName() === "Your partner" ? "" : partnerName();
  app.apart = app.apart.filter((e) => e.name !== name);
  app.apart.push({ name, how, until });
}

/** Drops the entries whose time is over. */
function pruneApart() {
  const now = Date.now();
  app.apart = app.apart.filter((e) => e.until === null || e.until > now);
}

/** "Ben", "Ben and Cleo", "Ben, Cleo and Dan". */
function listNames(names) {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

/** The entries' names; someone unnamed reads "someone", or "your last partner" alone. */
function apartNames(entries) {
  return entries.map((e) => e.name || (entries.length === 1 ? "your last partner" : "someone"));
}

/** Seconds left of an entry, at least 1. */
const secondsLeft = (e) => Math.max(1, Math.ceil((e.until - Date.now()) / 1000));

/**
 * One sentence for the entries of one kind: one name says its time left, several say each one's
 * ("Ben for 4 s more, Cleo for 9 s more"), soonest first.
 */
function apartSentence(how, entries) {
  const names = apartNames(entries);
  const who = listNames(names);
  const subject =
    how === "skippedBy"
      ? `${who} moved on`
      : how === "blocked"
        ? `You blocked ${who}`
        : `You just skipped ${who}`;
  if (how === "blocked") {
    const them =
      entries.length === 1 ? "you two won't be matched again" : "you won't be matched with them again";
    // A guest's blocks last a day; an account's, for good unless the other one is a guest.
    const limit = app.account
      ? ` (for a day, if ${entries.length === 1 ? `${who} is` : "they are"} a guest)`
      : " for a day";
    return `${subject}, so ${them}${limit}.`;
  }
  if (entries.some((e) => e.until === null)) {
    return entries.length === 1
      ? `${subject}, so you two won't be matched again for a while.`
      : `${subject}, so you won't be matched with them again for a while.`;
  }
  if (entries.length === 1)
    return `${subject}, so you two won't be matched again for ${secondsLeft(entries[0])} s.`;
  const each = entries.map((e, i) => `${names[i]} for ${secondsLeft(e)} s more`).join(", ");
  return `${subject}, so you won't be matched with them again yet: ${each}.`;
}

/** Why people we met are not found again, while waiting; "" when there is nothing to say. */
function apartText() {
  pruneApart();
  const sentences = [];
  for (const how of ["skipped", "skippedBy", "blocked"]) {
    const entries = app.apart.filter((e) => e.how === how);
    if (how !== "blocked") entries.sort((x, y) => (x.until ?? Infinity) - (y.until ?? Infinity));
    if (entries.length > 0) sentences.push(apartSentence(how, entries));
  }
  if (sentences.length === 0) return "";
  return `${sentences.join(" ")} Anyone else nearby still can be.`;
}

function renderApart() {
  const text = app.state === "waiting" ? apartText() : "";
  if (ui.apart.textContent !== text) ui.apart.textContent = text;
  ui.apart.hidden = !text;
}

/**
 * Sends `next` or `block` (from a room) or `next` (after a chat ended): the reply is `waiting`.
 * A reply that comes after a later `leave`, or after a new match, is stale.
 */
function rejoin(type, request) {
  const epoch = app.epoch;
  // From a room, `next` and `block` keep the two apart (for the cooldown, or for good).
  const fromRoom = app.state === "matched";
  app.busy = type === "block" ? "block" : "next";
  stopTyping({ notify: false });
  render();
  request().then(
    (frame) => {
      if (epoch !== app.epoch) return;
      if (app.busy === "next" || app.busy === "block") app.busy = null;
      if (fromRoom && app.state === "matched") keepApart(type === "block" ? "blocked" : "skipped");
      if (app.state === "matched" || app.state === "ended") enterWaiting(frame);
      else render();
    },
    (error) => {
      if (epoch !== app.epoch) return;
      onRequestError(type, error);
    },
  );
}

function onNext() {
  if (app.state !== "matched" || app.busy || app.conn !== "open") return;
  rejoin("next", () => app.client.next());
}

/** Sends `leave`; a `matched` that arrives before its reply is for a room the server closes. */
function sendLeave() {
  app.epoch++;
  app.leavesInFlight++;
  app.client.leave().then(
    () => {
      app.leavesInFlight = Math.max(0, app.leavesInFlight - 1);
    },
    (error) => {
      app.leavesInFlight = Math.max(0, app.leavesInFlight - 1);
      if (error?.code !== "connection_lost" && error?.code !== "closed") onRequestError("leave", error);
    },
  );
}

function onLeave() {
  if (app.state !== "matched" || app.conn !== "open") return;
  app.busy = null;
  sendLeave();
  endChat("You left the chat.");
}

function openBlockConfirm() {
  if (app.state !== "matched" || app.busy) return;
  ui.blockTitle.textContent = `Block ${partnerName() === "Your partner" ? "this person" : partnerName()}?`;
  ui.blockPanel.hidden = false;
  ui.block.setAttribute("aria-expanded", "true");
  ui.blockCancel.focus();
}

function closeBlockConfirm({ restoreFocus = false } = {}) {
  if (ui.blockPanel.hidden) return;
  ui.blockPanel.hidden = true;
  ui.block.setAttribute("aria-expanded", "false");
  if (restoreFocus) ui.block.focus();
}

function onBlockConfirm() {
  if (app.state !== "matched" || app.busy || app.conn !== "open") return;
  closeBlockConfirm();
  rejoin("block", () => app.client.block());
}

function onCancelWaiting() {
  if (app.state !== "waiting" || app.conn !== "open") return;
  app.busy = null;
  sendLeave();
  setState("idle");
  ui.find.focus();
}

function onFindAgain() {
  if (app.state !== "ended" || app.busy || app.conn !== "open") return;
  rejoin("next", () => app.client.next());
}

function onChangeSettings() {
  if (app.state !== "ended") return;
  app.busy = null;
  setState("idle");
  (ui.nameField.hidden ? ui.city : ui.name).focus();
}

// ------------------------------------------------------------------------------------------
// Accounts: sign up, sign in, or guest

const AUTH_ERROR_TEXT = {
  register: {
    409: "That name is taken. Pick another one, or sign in if it's yours.",
  },
  login: {
    401: "Wrong name or password.",
  },
};

let accountRetryTimer = 0;
let accountRetryUntil = 0;

function setAccountError(text) {
  ui.accountError.textContent = text;
  ui.accountError.hidden = !text;
  if (text) {
    ui.accountForm.setAttribute("aria-describedby", "account-error");
  } else {
    ui.accountForm.removeAttribute("aria-describedby");
  }
}

/** Too many attempts: count down, and keep the buttons off until the server takes them again. */
function startAccountRetry(seconds) {
  accountRetryUntil = Date.now() + Math.max(1, seconds) * 1000;
  clearInterval(accountRetryTimer);
  const tick = () => {
    const left = Math.ceil((accountRetryUntil - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(accountRetryTimer);
      accountRetryUntil = 0;
      setAccountError("You can try again now.");
      renderAccountButtons();
      return;
    }
    const text = `Too many attempts. Try again in ${left} s.`;
    if (ui.accountError.textContent !== text) ui.accountError.textContent = text;
  };
  ui.accountError.hidden = false;
  tick();
  accountRetryTimer = window.setInterval(tick, 250);
  renderAccountButtons();
}

let accountBusy = null;

function renderAccountButtons() {
  const blocked = accountBusy !== null || accountRetryUntil > Date.now();
  ui.signIn.disabled = blocked;
  ui.signUp.disabled = blocked;
  ui.signIn.setAttribute("aria-busy", String(accountBusy === "login"));
  ui.signUp.setAttribute("aria-busy", String(accountBusy === "register"));
}

async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  let json = {};
  try {
    json = await response.json();
  } catch {
    // not JSON: use the status alone
  }
  return { status: response.status, json, retryAfter: Number(response.headers.get("Retry-After")) };
}

/** Explains a failed /auth call in words; false when it was a rate limit (the countdown explains). */
function explainAuthFailure(kind, result) {
  if (result.status === 429) {
    startAccountRetry(Number.isFinite(result.retryAfter) ? result.retryAfter : 5);
    return;
  }
  const known = AUTH_ERROR_TEXT[kind][result.status];
  if (known) return setAccountError(known);
  if (result.status === 400 && typeof result.json.error === "string") {
    const message = result.json.error;
    return setAccountError(`${message.charAt(0).toUpperCase()}${message.slice(1)}.`);
  }
  setAccountError("The server couldn't do that right now. Please try again in a moment.");
}

async function onAccountSubmit(event) {
  event.preventDefault();
  if (accountBusy || accountRetryUntil > Date.now()) return;
  const kind = event.submitter === ui.signUp ? "register" : "login";
  const name = ui.accountName.value.trim();
  const password = ui.accountPassword.value;
  if (!name) {
    setAccountError("Enter your account name.");
    ui.accountName.focus();
    return;
  }
  if (!password) {
    setAccountError("Enter your password.");
    ui.accountPassword.focus();
    return;
  }
  setAccountError("");
  accountBusy = kind;
  renderAccountButtons();
  try {
    if (kind === "register") {
      const created = await postJson("/auth/register", { name, password });
      if (created.status !== 201) {
        explainAuthFailure("register", created);
        return;
      }
    }
    const login = await postJson("/auth/login", { name, password });
    if (login.status !== 200 || typeof login.json.token !== "string") {
      explainAuthFailure("login", login);
      return;
    }
    ui.accountPassword.value = "";
    await useAccount({
      token: login.json.token,
      expiresAt: Number(login.json.expiresAt),
      userId: String(login.json.userId ?? ""),
      name: String(login.json.name ?? name),
    });
  } catch (error) {
    console.warn("account request failed", error);
    setAccountError("Couldn't reach the server. Check your connection and try again.");
  } finally {
    accountBusy = null;
    renderAccountButtons();
  }
}

/** Starts over as a signed-in user (a new session that carries the token). */
async function useAccount(account) {
  app.account = account;
  storage.set(KEYS.account, account);
  storage.set(KEYS.mode, "account");
  await restartSession();
}

function onGuest() {
  app.account = null;
  storage.set(KEYS.account, null);
  storage.set(KEYS.mode, "guest");
  void restartSession();
}

/** Ends the current session, if any (the server forgets it), and connects afresh. */
async function restartSession() {
  storage.set(KEYS.page, null);
  app.room = null;
  app.lastJoin = null;
  clearLog();
  if (app.client) await app.client.close();
  focusFindAfterWelcome = true;
  await connect();
}

function signOut({ quiet = false } = {}) {
  app.account = null;
  storage.set(KEYS.account, null);
  storage.set(KEYS.mode, null);
  if (!quiet) {
    storage.set(KEYS.page, null);
    void app.client?.close();
    showAccountView();
  }
}

function showAccountView({ focus = true } = {}) {
  hideError();
  setAccountError("");
  setState("account");
  if (focus) ui.accountName.focus();
}

/** The line above the setup form: who you are, and the way to switch. */
function renderAccount() {
  const name = app.user?.name ?? "";
  if (app.account) {
    ui.accountBarText.textContent = `Signed in as ${app.account.name || name}.`;
    ui.accountSwitch.textContent = "Sign out";
  } else {
    ui.accountBarText.textContent = name ? `You're a guest (${name}).` : "You're a guest.";
    ui.accountSwitch.textContent = "Sign in or create an account";
  }
  // Accounts keep their own name; guests may pick one.
  ui.nameField.hidden = Boolean(app.account);
}

// ------------------------------------------------------------------------------------------
// Setup form

function fillCities() {
  const custom = document.createElement("option");
  custom.value = "";
  custom.textContent = "Custom location";
  ui.city.append(custom);
  for (const c of CITIES) {
    const opt = document.createElement("option");
    opt.value = c.id;
    opt.textContent = c.name;
    ui.city.append(opt);
  }
}

function selectCity(id) {
  const city = CITIES.find((c) => c.id === id);
  ui.city.value = city ? city.id : "";
  if (!city) return;
  ui.lat.value = String(city.lat);
  ui.lng.value = String(city.lng);
  clearFieldError(ui.lat, ui.latError);
  clearFieldError(ui.lng, ui.lngError);
}

/** After lat/lng are typed: show the matching city, or "Custom location". */
function syncCityFromCoordinates() {
  const lat = parseCoordinate(ui.lat.value);
  const lng = parseCoordinate(ui.lng.value);
  const city = CITIES.find((c) => Math.abs(c.lat - lat) < 1e-6 && Math.abs(c.lng - lng) < 1e-6);
  ui.city.value = city ? city.id : "";
}

function setFieldError(input, errorEl, text) {
  input.setAttribute("aria-invalid", "true");
  errorEl.textContent = text;
  errorEl.hidden = false;
}

function clearFieldError(input, errorEl) {
  input.removeAttribute("aria-invalid");
  errorEl.textContent = "";
  errorEl.hidden = true;
}

function validateName() {
  const name = ui.name.value.trim();
  const max = app.limits.maxNameChars;
  if (name && CONTROL_CHARS.test(name)) {
    setFieldError(ui.name, ui.nameError, "Names can't contain control characters.");
    return { ok: false };
  }
  if (codePoints(name) > max) {
    setFieldError(ui.name, ui.nameError, `Use at most ${max} characters (now ${codePoints(name)}).`);
    return { ok: false };
  }
  clearFieldError(ui.name, ui.nameError);
  return { ok: true, value: name || undefined };
}

function validateCoordinate(input, errorEl, { label, limit }) {
  const raw = input.value.trim();
  if (!raw) {
    setFieldError(input, errorEl, `Enter a ${label.toLowerCase()}, or pick a city.`);
    return { ok: false };
  }
  const n = parseCoordinate(raw);
  if (!Number.isFinite(n)) {
    setFieldError(
      input,
      errorEl,
      `${label} must be a number, like ${label === "Latitude" ? "48.85" : "2.35"}.`,
    );
    return { ok: false };
  }
  if (n < -limit || n > limit) {
    setFieldError(input, errorEl, `${label} must be between −${limit} and ${limit}.`);
    return { ok: false };
  }
  clearFieldError(input, errorEl);
  return { ok: true, value: n };
}

const validateLat = () => validateCoordinate(ui.lat, ui.latError, { label: "Latitude", limit: 90 });
const validateLng = () => validateCoordinate(ui.lng, ui.lngError, { label: "Longitude", limit: 180 });

function validateRange() {
  const raw = ui.range.value.trim();
  const max = app.limits.maxRangeKm;
  const n = Number(raw);
  if (!raw || !Number.isFinite(n)) {
    setFieldError(ui.range, ui.rangeError, "Enter a range in kilometres.");
    return { ok: false };
  }
  if (n < MIN_RANGE_KM || n > max) {
    setFieldError(ui.range, ui.rangeError, `Range must be between ${MIN_RANGE_KM} and ${formatKm(max)}.`);
    return { ok: false };
  }
  clearFieldError(ui.range, ui.rangeError);
  return { ok: true, value: n };
}

function onFind(event) {
  event.preventDefault();
  if (app.state !== "idle" || app.busy || app.conn !== "open") return;
  const name = app.account ? { ok: true, value: undefined } : validateName();
  const lat = validateLat();
  const lng = validateLng();
  const range = validateRange();
  const firstBad = [
    [name, ui.name],
    [lat, ui.lat],
    [lng, ui.lng],
    [range, ui.range],
  ].find(([r]) => !r.ok);
  if (firstBad) {
    firstBad[1].focus();
    return;
  }
  const join = { location: { lat: lat.value, lng: lng.value }, rangeKm: range.value };
  if (name.value) join.name = name.value;
  const epoch = app.epoch;
  app.lastJoin = join;
  app.busy = "join";
  hideError();
  render();
  app.client.join(join).then(
    (frame) => {
      if (epoch !== app.epoch) return;
      if (app.busy === "join") app.busy = null;
      if (app.state === "idle") enterWaiting(frame);
      else render();
    },
    (error) => {
      if (epoch !== app.epoch) return;
      onRequestError("join", error);
    },
  );
}

/** Changing the radius while waiting: `join` again keeps our place in the queue. */
function onWaitingRangeChange() {
  if (app.state !== "waiting" || !app.lastJoin || app.conn !== "open") return;
  const km = sliderToKm(ui.waitingRange.value);
  if (km === app.lastJoin.rangeKm) return;
  const join = { ...app.lastJoin, rangeKm: km };
  const epoch = app.epoch;
  app.lastJoin = join;
  setRangeInputs(km);
  render();
  app.client.join(join).then(
    () => undefined,
    (error) => {
      if (epoch === app.epoch) onRequestError("join", error);
    },
  );
}

function setRangeInputs(km) {
  ui.range.value = String(km);
  ui.rangeSlider.value = String(kmToSlider(km));
  clearFieldError(ui.range, ui.rangeError);
}

function applyLimits() {
  const { maxRangeKm, maxNameChars, maxMessageChars } = app.limits;
  ui.range.max = String(maxRangeKm);
  ui.rangeHint.textContent = `${MIN_RANGE_KM} – ${formatKm(maxRangeKm)}`;
  const current = Number(ui.range.value);
  const km =
    Number.isFinite(current) && current >= MIN_RANGE_KM ? Math.min(current, maxRangeKm) : DEFAULT_RANGE_KM;
  setRangeInputs(Math.min(km, maxRangeKm));
  const guest = app.user?.name;
  ui.nameHint.textContent = guest
    ? `Leave it empty to appear as “${guest}”. At most ${maxNameChars} characters.`
    : `Leave it empty to get a guest name. At most ${maxNameChars} characters.`;
  ui.counter.textContent = `0 / ${maxMessageChars}`;
  renderComposer();
}

// Geolocation

function setGeoStatus(text, tone = "") {
  ui.geoStatus.textContent = text;
  ui.geoStatus.dataset.tone = tone;
  ui.geoStatus.hidden = !text;
}

function onUseMyLocation() {
  if (!("geolocation" in navigator)) {
    setGeoStatus("This browser can't share your location. Pick a city or type coordinates instead.", "error");
    return;
  }
  if (window.isSecureContext === false) {
    setGeoStatus(
      "Browsers only share location with secure (https or localhost) pages. Pick a city or type coordinates instead.",
      "error",
    );
    return;
  }
  ui.geo.disabled = true;
  ui.geo.setAttribute("aria-busy", "true");
  ui.geoLabel.textContent = "Locating…";
  setGeoStatus("Asking your browser for your location…");
  const done = () => {
    ui.geo.disabled = false;
    ui.geo.removeAttribute("aria-busy");
    ui.geoLabel.textContent = "Use my location";
  };
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      done();
      const { latitude, longitude, accuracy } = pos.coords;
      ui.lat.value = String(Math.round(latitude * 1e4) / 1e4);
      ui.lng.value = String(Math.round(longitude * 1e4) / 1e4);
      ui.city.value = "";
      clearFieldError(ui.lat, ui.latError);
      clearFieldError(ui.lng, ui.lngError);
      const acc =
        Number.isFinite(accuracy) && accuracy >= 1 ? ` (accurate to about ${formatDistanceM(accuracy)})` : "";
      setGeoStatus(`Using your current location${acc}.`, "ok");
    },
    (err) => {
      done();
      const messages = {
        1: "Location access was denied. Allow it in your browser's site settings, or pick a city or type coordinates instead.",
        2: "Your location isn't available right now. Pick a city or type coordinates instead.",
        3: "Finding your location took too long. Try again, or pick a city instead.",
      };
      setGeoStatus(messages[err?.code] ?? messages[2], "error");
    },
    { enableHighAccuracy: false, timeout: 15000, maximumAge: 10 * 60 * 1000 },
  );
}

const formatDistanceM = (m) => (m >= 1000 ? `${Math.round(m / 100) / 10} km` : `${Math.round(m)} m`);

// ------------------------------------------------------------------------------------------
// Rendering

const STATUS = {
  account: () => ["Not connected", "idle"],
  connecting: () => ["Connecting…", "connecting"],
  idle: () => ["Connected", "ok"],
  waiting: () => ["Waiting for a match", "busy"],
  matched: () => [`Chatting with ${partnerName()}`, "ok"],
  ended: () => ["Chat ended", "idle"],
  disconnected: () => ["Disconnected", "bad"],
};

function setState(next) {
  // Outside a chat there is no room to show (the disconnected view shows the last chat, if any).
  if (next === "account" || next === "connecting" || next === "idle" || next === "waiting") app.room = null;
  app.state = next;
  testHook.state = next;
  document.body.dataset.state = next;
  savePage();
  render();
}

function render() {
  const s = app.state;
  const hadChat = app.room !== null;
  const reconnecting = app.conn === "reconnecting" && s !== "disconnected" && s !== "account";

  const [statusText, tone] = reconnecting ? ["Reconnecting…", "connecting"] : STATUS[s]();
  if (ui.status.textContent !== statusText) ui.status.textContent = statusText;
  ui.status.dataset.tone = tone;

  ui.reconnecting.hidden = !reconnecting;
  if (reconnecting) {
    const text =
      app.reconnectAttempt >= 3
        ? `Still trying to reconnect (attempt ${app.reconnectAttempt})… Your chat is kept for a little while.`
        : "Connection lost — reconnecting… Messages you send now go out when it's back.";
    if (ui.reconnectingText.textContent !== text) ui.reconnectingText.textContent = text;
  }

  const showSetup = s === "connecting" || s === "idle" || (s === "disconnected" && !hadChat);
  const showChat = s === "matched" || s === "ended" || (s === "disconnected" && hadChat);
  ui.viewAccount.hidden = s !== "account";
  ui.viewSetup.hidden = !showSetup;
  ui.viewWaiting.hidden = s !== "waiting";
  ui.viewDisconnected.hidden = s !== "disconnected";
  ui.viewChat.hidden = !showChat;
  ui.card.dataset.layout = showChat ? "chat" : "form";

  // setup
  const joining = app.busy === "join";
  const online = app.conn === "open";
  ui.find.disabled = s !== "idle" || joining || !online;
  ui.find.setAttribute("aria-busy", String(joining || s === "connecting" || (s === "idle" && !online)));
  ui.find.textContent =
    s === "connecting" || (s === "idle" && !online)
      ? "Connecting…"
      : joining
        ? "Joining…"
        : "Find someone nearby";
  ui.accountSwitch.disabled = s !== "idle";

  // disconnected
  if (s === "disconnected" && app.disconnect) {
    ui.disconnectedReason.textContent = app.disconnect.text;
    ui.disconnectedDetail.textContent = app.disconnect.detail ? `Server said: ${app.disconnect.detail}` : "";
    ui.disconnectedDetail.hidden = !app.disconnect.detail;
    ui.disconnectedSignIn.hidden = !app.disconnect.signIn;
  }

  // waiting
  if (s === "waiting") {
    const km = app.lastJoin?.rangeKm ?? Number(ui.range.value);
    // "25 km…" kept on one line; the text itself reads "Waiting for someone within 25 km…".
    const tail = document.createElement("span");
    tail.className = "nowrap";
    tail.textContent = `${formatKm(km)}…`;
    ui.waitingText.replaceChildren("Waiting for someone within ", tail);
    ui.waitingRange.value = String(kmToSlider(km));
    ui.waitingRangeValue.textContent = formatKm(km);
    tickWaiting();
  }
  renderApart();
  ui.cancel.disabled = s !== "waiting" || !online;
  ui.waitingRange.disabled = s !== "waiting" || !online;

  // chat
  const matched = s === "matched";
  ui.chatActions.hidden = !matched;
  ui.composer.hidden = !matched;
  ui.endedPanel.hidden = s !== "ended";
  ui.partnerAway.hidden = !(matched && app.room?.away);
  if (!matched) {
    closeBlockConfirm();
    hidePartnerTyping();
  }
  ui.next.disabled = !matched || app.busy !== null || !online;
  ui.block.disabled = !matched || app.busy !== null || !online;
  ui.leave.disabled = !matched || !online;
  ui.blockConfirm.disabled = app.busy !== null || !online;
  ui.next.setAttribute("aria-busy", String(app.busy === "next" && matched));
  ui.block.setAttribute("aria-busy", String(app.busy === "block"));
  ui.findAgain.disabled = s !== "ended" || app.busy !== null || !online;
  ui.findAgain.setAttribute("aria-busy", String(app.busy === "next" && s === "ended"));
  ui.changeSettings.disabled = s !== "ended";
  if (showChat) renderPartner();
  renderComposer();
}

function renderPartner() {
  if (!app.room) return;
  const name = partnerName();
  ui.partnerName.textContent = name;
  // The initial is drawn by CSS (attr()), so the partner element's text is just name and distance.
  ui.partnerAvatar.dataset.initial = [...name][0]?.toUpperCase() ?? "?";
  const distance = describeDistance(app.room.partner.distanceKm);
  ui.partnerDistance.textContent = distance;
}

function renderComposer() {
  const max = app.limits.maxMessageChars;
  const count = codePoints(composerText());
  ui.counter.textContent = `${count} / ${max}`;
  ui.counter.dataset.level = count > max ? "over" : count >= max * 0.9 ? "warn" : "";
  const canSend = canCompose();
  ui.message.disabled = !canSend;
  ui.send.disabled = !canSend || count === 0 || count > max || isRateLimited();
  ui.send.title = isRateLimited() ? rateLimitText() : "";
}

let waitingTicker = 0;

function tickWaiting() {
  clearInterval(waitingTicker);
  const update = () => {
    if (app.state !== "waiting") {
      clearInterval(waitingTicker);
      return;
    }
    const text = formatClock(Date.now() - app.waitingSince);
    if (ui.waitingTimer.textContent !== text) ui.waitingTimer.textContent = text;
    renderApart();
  };
  update();
  waitingTicker = window.setInterval(update, 250);
}

// Tab title: a hint when something happens while the tab is in the background.
const baseTitle = document.title;
function notifyIfHidden(text) {
  if (document.visibilityState === "visible") return;
  document.title = `• ${text} — ${baseTitle}`;
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") document.title = baseTitle;
});

// ------------------------------------------------------------------------------------------
// Wiring

function wire() {
  fillCities();
  selectCity(CITIES[0].id);
  setRangeInputs(DEFAULT_RANGE_KM);

  ui.accountForm.addEventListener("submit", onAccountSubmit);
  ui.guest.addEventListener("click", onGuest);
  ui.accountSwitch.addEventListener("click", () => {
    if (app.account) signOut();
    else {
      void app.client?.close();
      showAccountView();
    }
  });

  ui.form.addEventListener("submit", onFind);
  ui.name.addEventListener("input", () => {
    if (ui.name.hasAttribute("aria-invalid")) validateName();
  });
  ui.name.addEventListener("blur", validateName);

  ui.city.addEventListener("change", () => {
    selectCity(ui.city.value);
    if (ui.city.value) setGeoStatus("");
  });
  for (const [input, validate] of [
    [ui.lat, validateLat],
    [ui.lng, validateLng],
  ]) {
    input.addEventListener("input", () => {
      syncCityFromCoordinates();
      if (input.hasAttribute("aria-invalid")) validate();
    });
    input.addEventListener("blur", () => {
      if (input.value.trim()) validate();
    });
  }
  // Pasting "48.85, 2.35" into either box fills both.
  for (const input of [ui.lat, ui.lng]) {
    input.addEventListener("paste", (event) => {
      const text = event.clipboardData?.getData("text") ?? "";
      const m = text.trim().match(/^([-+]?\d+(?:\.\d+)?)\s*[,;\s]\s*([-+]?\d+(?:\.\d+)?)$/);
      if (!m) return;
      event.preventDefault();
      ui.lat.value = m[1];
      ui.lng.value = m[2];
      validateLat();
      validateLng();
      syncCityFromCoordinates();
    });
  }
  ui.geo.addEventListener("click", onUseMyLocation);

  ui.rangeSlider.addEventListener("input", () => {
    ui.range.value = String(sliderToKm(ui.rangeSlider.value));
    clearFieldError(ui.range, ui.rangeError);
  });
  ui.range.addEventListener("input", () => {
    const n = Number(ui.range.value);
    if (Number.isFinite(n) && n >= MIN_RANGE_KM) ui.rangeSlider.value = String(kmToSlider(n));
    if (ui.range.hasAttribute("aria-invalid")) validateRange();
  });
  ui.range.addEventListener("blur", validateRange);

  ui.waitingRange.addEventListener("input", () => {
    ui.waitingRangeValue.textContent = formatKm(sliderToKm(ui.waitingRange.value));
  });
  let rangeDebounce = 0;
  ui.waitingRange.addEventListener("change", () => {
    clearTimeout(rangeDebounce);
    rangeDebounce = window.setTimeout(onWaitingRangeChange, 300);
  });
  ui.cancel.addEventListener("click", onCancelWaiting);

  ui.next.addEventListener("click", onNext);
  ui.leave.addEventListener("click", onLeave);
  ui.block.setAttribute("aria-expanded", "false");
  ui.block.setAttribute("aria-controls", "block-panel");
  ui.block.addEventListener("click", () => {
    if (ui.blockPanel.hidden) openBlockConfirm();
    else closeBlockConfirm();
  });
  ui.blockCancel.addEventListener("click", () => closeBlockConfirm({ restoreFocus: true }));
  ui.blockConfirm.addEventListener("click", onBlockConfirm);
  ui.blockPanel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeBlockConfirm({ restoreFocus: true });
  });

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  ui.message.addEventListener("input", onComposerInput);
  ui.message.addEventListener("blur", () => {
    if (!composerText()) stopTyping({ notify: true });
  });

  ui.findAgain.addEventListener("click", onFindAgain);
  ui.changeSettings.addEventListener("click", onChangeSettings);
  ui.reconnect.addEventListener("click", () => {
    focusFindAfterWelcome = true;
    void connect();
  });
  ui.disconnectedSignIn.addEventListener("click", () => {
    void app.client?.close();
    showAccountView();
  });
  ui.errorClose.addEventListener("click", hideError);

  // The conversation scrolls: keyboard users must be able to reach it to scroll it (WCAG 2.1.1).
  ui.log.tabIndex = 0;
  ui.log.addEventListener("scroll", () => {
    if (Math.abs(ui.log.scrollTop - autoScrollTop) < 1) return;
    logPinned = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
  });
  // Banners, notices and panels come and go above the log: stay at the end if we were there.
  if ("ResizeObserver" in window) new ResizeObserver(() => scrollLogToEnd()).observe(ui.log);

  // No close on pagehide: the browser closes the socket with 1001 ("going away"), the server
  // keeps the session for the resume grace, and a reload of this tab takes it back.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && app.client?.state === "closed" && app.state !== "account") void connect();
  });
}

/** First screen: straight back in when this tab already chose (a reload), else the choice. */
function start() {
  const account = storage.get(KEYS.account);
  if (account && typeof account.token === "string" && !(Number(account.expiresAt) <= Date.now())) {
    app.account = account;
  } else if (account) {
    storage.set(KEYS.account, null);
    storage.set(KEYS.mode, null);
  }
  const mode = storage.get(KEYS.mode);
  renderAccount();
  if ((mode === "account" && app.account) || mode === "guest") void connect();
  else showAccountView({ focus: false });
}

wire();
start();
