// WhisperChat demo page: speaks the WebSocket transport of the wire protocol (PROTOCOL.md, section 2).
// Plain ES module, no dependencies, no build step.
//
// Rule for everything that comes from the network: it is put into the page with
// textContent only, never innerHTML.

const PROTOCOL_VERSION = 1;
const SUBPROTOCOL = "whisperchat.v1";
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
const PING_INTERVAL_MS = 25000;
const WELCOME_TIMEOUT_MS = 15000;
const ERROR_HIDE_MS = 9000;

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
  4001: "This session was taken over by another tab or window.",
  4401: "Your session expired.",
};

const PARTNER_LEFT_TEXT = {
  left: "Your partner moved on.",
  next: "Your partner moved on.",
  disconnected: "Your partner disconnected.",
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
  status: $("status"),
  error: $("error"),
  errorText: $("error-text"),
  errorClose: $("error-close"),
  // setup
  viewSetup: $("view-setup"),
  form: $("setup-form"),
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
  cancel: $("cancel"),
  // disconnected
  viewDisconnected: $("view-disconnected"),
  disconnectedReason: $("disconnected-reason"),
  disconnectedDetail: $("disconnected-detail"),
  reconnect: $("reconnect"),
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
 * @typedef {"connecting" | "idle" | "waiting" | "matched" | "ended" | "disconnected"} ViewState
 */

const app = {
  /** @type {ViewState} */
  state: "connecting",
  /** @type {WebSocket | null} */
  ws: null,
  limits: { ...DEFAULT_LIMITS },
  /** @type {{userId: string, name: string} | null} */
  user: null,
  sessionId: null,
  /** Kept for the later automatic reconnect-with-resume (PROTOCOL.md section 5). */
  resumeToken: null,
  /** The last join parameters we sent: {location: {lat, lng}, rangeKm, name?}. */
  lastJoin: null,
  /** The current or last room: {roomId, partner: {name, distanceKm}, open, away}. */
  room: null,
  /** Local time the waiting timer counts from. */
  waitingSince: 0,
  /** The action in flight that the UI waits for ("join" | "next" | "block"), or null. */
  busy: null,
  /** Requests that may get a reply, by id: {type, seq, ...}. */
  pending: new Map(),
  /** Sequence number of every request sent on this connection. */
  seq: 0,
  /** Sequence number of the last `leave`; replies to earlier requests are stale. */
  lastLeaveSeq: 0,
  /** `leave` requests not yet acknowledged; a `matched` meanwhile is for a room we're leaving. */
  leavesInFlight: 0,
  rateLimitedUntil: 0,
  /** Why the connection closed, for the disconnected view. */
  disconnect: null,
};

/** For browser tests: kept up to date on every state or socket change. */
const testHook = { state: app.state, ws: app.ws };
window.whisperDemo = testHook;

let requestCounter = 0;
const nextRequestId = () => `r${++requestCounter}`;

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

const describeDistance = (distanceKm) => {
  const n = Math.max(1, Math.ceil(Number(distanceKm) || 1));
  return n <= 1 ? "within 1 km" : `≈ ${n} km away`;
};

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
// Connection

function socketUrl({ resume } = {}) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(`${scheme}//${window.location.host}${WS_PATH}`);
  if (resume) url.searchParams.set("resume", resume);
  return url.toString();
}

let pingTimer = 0;
let welcomeTimer = 0;
/** Set by the Reconnect button, whose view disappears: put keyboard focus somewhere useful. */
let focusFindAfterWelcome = false;

/**
 * Opens a connection. Today it always starts a fresh session; `resume` is where automatic
 * reconnect-with-resume will plug in (pass app.resumeToken after an unexpected close).
 */
function connect({ resume } = {}) {
  closeSocket();
  app.pending.clear();
  app.leavesInFlight = 0;
  app.lastLeaveSeq = 0;
  app.busy = null;
  app.disconnect = null;

  let ws;
  try {
    ws = new WebSocket(socketUrl({ resume }), [SUBPROTOCOL]);
  } catch (err) {
    console.error("WebSocket failed to start", err);
    onSocketClosed({ code: 1006, reason: "", opened: false });
    return;
  }
  app.ws = ws;
  testHook.ws = ws;
  let opened = false;

  ws.addEventListener("open", () => {
    if (app.ws !== ws) return;
    opened = true;
    clearTimeout(welcomeTimer);
    welcomeTimer = window.setTimeout(() => {
      if (app.ws === ws && app.state === "connecting") {
        app.disconnect = { text: "The server didn't answer. It may be overloaded." };
        ws.close(1000);
        onSocketClosed({ code: 1000, reason: "", opened: true, handled: true });
      }
    }, WELCOME_TIMEOUT_MS);
  });

  ws.addEventListener("message", (event) => {
    if (app.ws !== ws) return;
    if (typeof event.data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      console.warn("ignored a frame that is not JSON");
      return;
    }
    if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return;
    handleFrame(frame);
  });

  ws.addEventListener("close", (event) => {
    if (app.ws !== ws) return;
    onSocketClosed({ code: event.code, reason: event.reason, opened });
  });

  setState("connecting");
}

function closeSocket() {
  clearInterval(pingTimer);
  clearTimeout(welcomeTimer);
  const ws = app.ws;
  app.ws = null;
  testHook.ws = null;
  if (ws && ws.readyState <= WebSocket.OPEN) {
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
  }
}

function onSocketClosed({ code, reason, opened, handled = false }) {
  clearInterval(pingTimer);
  clearTimeout(welcomeTimer);
  app.ws = null;
  testHook.ws = null;
  stopTyping({ notify: false });
  hidePartnerTyping();
  // Whatever was in flight is lost with this connection.
  for (const el of ui.log.querySelectorAll('.msg[data-status="sending"]')) {
    setMessageStatus(el, "failed", "Not sent");
  }
  app.pending.clear();
  app.leavesInFlight = 0;
  app.busy = null;
  if (app.room) app.room.open = false;

  // A later feature: on 1006/1012 with app.resumeToken and a resume grace > 0, call
  // connect({ resume: app.resumeToken }) with backoff here instead of giving up.
  if (!handled || !app.disconnect) {
    let text;
    if (!opened) {
      text =
        "Couldn't connect to the chat server. It may be offline, busy, or refusing new connections right now.";
    } else {
      text = CLOSE_TEXT[code] ?? `The connection closed unexpectedly (code ${code}).`;
    }
    app.disconnect = { text, detail: typeof reason === "string" ? reason.trim() : "" };
  }
  setState("disconnected");
}

function send(frame) {
  const ws = app.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

/** Sends a request with an id and remembers it until its reply. Returns the id, or null. */
function request(type, fields = {}, extra = {}) {
  const id = nextRequestId();
  const seq = ++app.seq;
  if (!send({ type, id, ...fields })) {
    showError("You're not connected. Reconnect and try again.");
    return null;
  }
  app.pending.set(id, { type, seq, ...extra });
  if (type === "leave") {
    app.lastLeaveSeq = seq;
    app.leavesInFlight++;
  }
  return id;
}

/** Removes and returns the request a reply answers, if we know it. */
function takeRequest(frame) {
  if (typeof frame.id !== "string") return null;
  const req = app.pending.get(frame.id) ?? null;
  app.pending.delete(frame.id);
  if (req?.type === "leave") app.leavesInFlight = Math.max(0, app.leavesInFlight - 1);
  return req;
}

// ------------------------------------------------------------------------------------------
// Incoming frames

function handleFrame(frame) {
  switch (frame.type) {
    case "welcome":
      return onWelcome(frame);
    case "waiting":
      return onWaiting(frame);
    case "matched":
      return onMatched(frame);
    case "message":
      return onMessage(frame);
    case "ack":
      return onAck(frame);
    case "typing":
      return onTyping(frame);
    case "partner_away":
      return onPartnerAway(frame, true);
    case "partner_back":
      return onPartnerAway(frame, false);
    case "partner_left":
      return onPartnerLeft(frame);
    case "error":
      return onError(frame);
    case "pong":
      takeRequest(frame);
      return;
    default:
      console.warn("ignored an unknown frame type", frame.type);
  }
}

function onWelcome(frame) {
  clearTimeout(welcomeTimer);
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
  app.user = frame.user && typeof frame.user === "object" ? frame.user : null;
  app.sessionId = typeof frame.sessionId === "string" ? frame.sessionId : null;
  app.resumeToken = typeof frame.resumeToken === "string" ? frame.resumeToken : null;
  bucket.tokens = app.limits.messageBurst;
  bucket.at = Date.now();
  applyLimits();

  clearInterval(pingTimer);
  pingTimer = window.setInterval(() => request("ping"), PING_INTERVAL_MS);

  // A resumed session would keep its state and replay missed frames; this page only
  // starts fresh sessions for now, so a welcome always means "idle, nothing going on".
  if (!frame.resumed) {
    app.room = null;
    clearLog();
  }
  setState("idle");
  if (focusFindAfterWelcome) ui.find.focus();
  focusFindAfterWelcome = false;
}

function onWaiting(frame) {
  const req = takeRequest(frame);
  if (req && req.seq < app.lastLeaveSeq) return; // answered a request we have since undone
  if (!req && app.state !== "waiting" && app.state !== "idle") return;
  if (app.state === "matched" && (!req || req.type === "join")) return;
  if (app.busy && req && req.type === app.busy) app.busy = null;
  if (!req) app.busy = null;

  if (app.state !== "waiting") {
    const since = Number(frame.since);
    const age = Date.now() - since;
    app.waitingSince = Number.isFinite(age) && age >= 0 && age < 6 * 3600 * 1000 ? since : Date.now();
    if (app.room) app.room.open = false;
    closeBlockConfirm();
    stopTyping({ notify: false });
    setState("waiting");
    if (!ui.viewWaiting.contains(document.activeElement)) ui.cancel.focus();
  } else {
    render();
  }
}

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

function onAck(frame) {
  const req = takeRequest(frame);
  if (!req) return;
  if (req.type === "message" && req.el) {
    setMessageStatus(req.el, "sent", "", Number(frame.ts));
  }
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
  render();
}

function onPartnerLeft(frame) {
  if (!isCurrentRoom(frame)) return;
  const reason = PARTNER_LEFT_TEXT[frame.reason] ?? "The chat has ended.";
  endChat(reason);
  notifyIfHidden(reason);
}

function onError(frame) {
  const req = takeRequest(frame);
  const code = typeof frame.code === "string" ? frame.code : "";
  if (frame.message) console.info(`server error ${code}: ${frame.message}`);

  if (req?.type === "ping") return;
  // A radius change that raced with a match: harmless, the match wins.
  if (req?.type === "join" && code === "in_room" && app.state === "matched") return;

  if (code === "rate_limited") {
    startRateLimit(Number(frame.retryAfterMs));
  } else {
    showError(describeError(frame), { code });
  }

  if (req) {
    if (req.type === "message" && req.el) setMessageStatus(req.el, "failed", "Not sent");
    if (app.busy === req.type) app.busy = null;
    if (req.type === "join" && app.state === "idle") {
      if (code === "invalid_location") {
        setFieldError(ui.lat, ui.latError, "Check the latitude and longitude.");
        ui.lat.focus();
      } else if (code === "invalid_range") {
        setFieldError(ui.range, ui.rangeError, describeError(frame));
        ui.range.focus();
      }
    }
  }
  render();
}

// ------------------------------------------------------------------------------------------
// Chat log

function clearLog() {
  ui.log.replaceChildren();
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

function addSystem(text) {
  const el = document.createElement("div");
  el.className = "sys";
  const span = document.createElement("span");
  span.textContent = text;
  const time = document.createElement("time");
  time.className = "sys-time";
  time.textContent = formatTime(Date.now());
  el.append(span, time);
  ui.log.append(el);
  scrollLogToEnd(true);
  return el;
}

/**
 * Adds a chat bubble. `from` is "own" or "partner". Own messages start as "sending…" and
 * become "sent" on `ack`.
 */
function addMessage({ from, text, ts, status = "sent" }) {
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
  return el;
}

function setMessageStatus(el, status, label, ts) {
  el.dataset.status = status;
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
  if (status === "failed" && app.state === "matched" && app.ws) {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link-btn";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => retryMessage(el));
    el.querySelector(".msg-meta")?.append(retry);
  }
}

// ------------------------------------------------------------------------------------------
// Sending messages and typing

function composerText() {
  return ui.message.value.trim();
}

function sendMessage() {
  if (app.state !== "matched" || !app.room?.open) return;
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
  if (!fitsPayload({ type: "message", id: "r000000", text })) {
    showError("That message is too large to send.");
    return;
  }
  const waitMs = takeMessageToken();
  if (waitMs > 0) {
    startRateLimit(waitMs);
    return; // the text stays in the input
  }
  stopTyping({ notify: true });
  const el = addMessage({ from: "own", text, ts: Date.now(), status: "sending" });
  el.dataset.text = text;
  const id = request("message", { text }, { el });
  if (id) el.dataset.requestId = id;
  else setMessageStatus(el, "failed", "Not sent");
  ui.message.value = "";
  renderComposer();
  ui.message.focus();
}

function retryMessage(el) {
  if (app.state !== "matched" || isRateLimited()) {
    if (isRateLimited()) startRateLimit(app.rateLimitedUntil - Date.now());
    return;
  }
  const text = el.dataset.text;
  if (!text) return;
  const waitMs = takeMessageToken();
  if (waitMs > 0) {
    startRateLimit(waitMs);
    return;
  }
  setMessageStatus(el, "sending", "sending…");
  const id = request("message", { text }, { el });
  if (!id) setMessageStatus(el, "failed", "Not sent");
  // keep it at the end of the conversation, where it now belongs in time
  ui.log.append(el);
  scrollLogToEnd(true);
  ui.message.focus();
}

function fitsPayload(frame) {
  const max = app.limits.maxPayloadBytes;
  if (!max) return true;
  return new TextEncoder().encode(JSON.stringify(frame)).length <= max;
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
    if (send({ type: "typing", active: true })) {
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
  if (notify && app.state === "matched") send({ type: "typing", active: false });
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

function onNext() {
  if (app.state !== "matched" || app.busy) return;
  if (request("next")) {
    app.busy = "next";
    stopTyping({ notify: false });
    render();
  }
}

function onLeave() {
  if (app.state !== "matched") return;
  if (request("leave")) {
    app.busy = null;
    endChat("You left the chat.");
  }
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
  if (app.state !== "matched" || app.busy) return;
  closeBlockConfirm();
  if (request("block")) {
    app.busy = "block";
    stopTyping({ notify: false });
    render();
  }
}

function onCancelWaiting() {
  if (app.state !== "waiting") return;
  if (request("leave")) {
    app.busy = null;
    setState("idle");
    ui.find.focus();
  }
}

function onFindAgain() {
  if (app.state !== "ended" || app.busy) return;
  if (request("next")) {
    app.busy = "next";
    render();
  }
}

function onChangeSettings() {
  if (app.state !== "ended") return;
  app.busy = null;
  setState("idle");
  ui.name.focus();
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
  if (app.state !== "idle" || app.busy) return;
  const name = validateName();
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
  if (request("join", join)) {
    app.lastJoin = join;
    app.busy = "join";
    hideError();
    render();
  }
}

/** Changing the radius while waiting: `join` again keeps our place in the queue. */
function onWaitingRangeChange() {
  if (app.state !== "waiting" || !app.lastJoin) return;
  const km = sliderToKm(ui.waitingRange.value);
  if (km === app.lastJoin.rangeKm) return;
  const join = { ...app.lastJoin, rangeKm: km };
  if (request("join", join)) {
    app.lastJoin = join;
    setRangeInputs(km);
    render();
  }
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
  connecting: () => ["Connecting…", "connecting"],
  idle: () => ["Connected", "ok"],
  waiting: () => ["Waiting for a match", "busy"],
  matched: () => [`Chatting with ${partnerName()}`, "ok"],
  ended: () => ["Chat ended", "idle"],
  disconnected: () => ["Disconnected", "bad"],
};

function setState(next) {
  // Outside a chat there is no room to show (the disconnected view shows the last chat, if any).
  if (next === "connecting" || next === "idle" || next === "waiting") app.room = null;
  app.state = next;
  testHook.state = next;
  document.body.dataset.state = next;
  render();
}

function render() {
  const s = app.state;
  const hadChat = app.room !== null;

  const [statusText, tone] = STATUS[s]();
  if (ui.status.textContent !== statusText) ui.status.textContent = statusText;
  ui.status.dataset.tone = tone;

  const showSetup = s === "connecting" || s === "idle" || (s === "disconnected" && !hadChat);
  const showChat = s === "matched" || s === "ended" || (s === "disconnected" && hadChat);
  ui.viewSetup.hidden = !showSetup;
  ui.viewWaiting.hidden = s !== "waiting";
  ui.viewDisconnected.hidden = s !== "disconnected";
  ui.viewChat.hidden = !showChat;
  ui.card.dataset.layout = showChat ? "chat" : "form";

  // setup
  const joining = app.busy === "join";
  ui.find.disabled = s !== "idle" || joining;
  ui.find.setAttribute("aria-busy", String(joining || s === "connecting"));
  ui.find.textContent = s === "connecting" ? "Connecting…" : joining ? "Joining…" : "Find someone nearby";

  // disconnected
  if (s === "disconnected" && app.disconnect) {
    ui.disconnectedReason.textContent = app.disconnect.text;
    ui.disconnectedDetail.textContent = app.disconnect.detail ? `Server said: ${app.disconnect.detail}` : "";
    ui.disconnectedDetail.hidden = !app.disconnect.detail;
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
  ui.cancel.disabled = s !== "waiting";

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
  ui.next.disabled = !matched || app.busy !== null;
  ui.block.disabled = !matched || app.busy !== null;
  ui.leave.disabled = !matched;
  ui.blockConfirm.disabled = app.busy !== null;
  ui.next.setAttribute("aria-busy", String(app.busy === "next" && matched));
  ui.block.setAttribute("aria-busy", String(app.busy === "block"));
  ui.findAgain.disabled = s !== "ended" || app.busy !== null;
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
  const canSend = app.state === "matched" && app.room?.open && app.ws !== null;
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
    connect();
  });
  ui.errorClose.addEventListener("click", hideError);

  ui.log.addEventListener("scroll", () => {
    if (Math.abs(ui.log.scrollTop - autoScrollTop) < 1) return;
    logPinned = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
  });
  // Banners, notices and panels come and go above the log: stay at the end if we were there.
  if ("ResizeObserver" in window) new ResizeObserver(() => scrollLogToEnd()).observe(ui.log);

  window.addEventListener("pagehide", () => closeSocket());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && !app.ws) connect();
  });
}

wire();
connect();
