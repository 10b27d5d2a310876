// sessionhub.js — the browser client of the sessionhub realtime hub.
//
// An ES module with no dependencies. Served by every sessionhub server at
// /sessionhub.js (CORS-enabled, so apps on other allowed origins can import
// it). Documentation: README-client.md.
//
//   import { SessionHub } from "/sessionhub.js";
//   const hub = new SessionHub();                 // same origin, cookie session
//   hub.addEventListener("state", (e) => console.log(e.detail));
//   hub.addEventListener("message", (e) => console.log(e.detail.channel, e.detail.data));
//   await hub.connect();                          // resolves on the first welcome
//   await hub.subscribe("room:lobby");
//   await hub.publish("room:lobby", { text: "hi" });
//
// What it does, in short: trades the session cookie (plus the CSRF token) for
// a 5-minute JWT at POST /session/token, opens the socket with the
// subprotocols ["sessionhub.v1", "bearer.<jwt>"], and keeps it open:
// reconnecting with full-jitter exponential backoff (and a fresh token) after
// network errors, 1001 and 4008, stopping for good on 4001, 4002, 4003, 4009
// and 1008, and re-subscribing to its channels after every reconnect.

/** The subprotocol of API v1; the server selects it. */
export const PROTOCOL = "sessionhub.v1";

/**
 * Close codes the hub sends, with words a person understands. `terminal`
 * codes stop the client: reconnecting would not help, or would make things
 * worse (4009 would close another of the user's sockets, 1008 answers a flood).
 */
export const CLOSE_CODES = Object.freeze({
  1000: { text: "Connection closed", terminal: false },
  1001: { text: "Server going away — reconnecting", terminal: false },
  1003: { text: "Protocol error (binary frame)", terminal: true },
  1006: { text: "Connection lost", terminal: false },
  1007: { text: "Protocol error (invalid text)", terminal: true },
  1008: { text: "Closed for sending too many messages", terminal: true },
  1009: { text: "Message too big", terminal: true },
  1011: { text: "Server error", terminal: false },
  1012: { text: "Server restarting", terminal: false },
  1013: { text: "Server busy — try again later", terminal: false },
  4001: { text: "Signed out on another device", terminal: true },
  4002: { text: "Logged out everywhere", terminal: true },
  4003: { text: "Session expired", terminal: true },
  4008: { text: "Connection too slow — reconnecting", terminal: false },
  4009: { text: "Too many connections", terminal: true },
});

/** Pseudo close codes the client reports itself (never sent by a server). */
export const CLIENT_CODES = Object.freeze({
  /** The session is gone: POST /session/token answered 401. Terminal. */
  UNAUTHENTICATED: 4401,
  /** close() was called. Terminal. */
  CLOSED_BY_CLIENT: 4000,
});

/** Human words for a close code (falls back to the server's reason text). */
export function describeClose(code, reason) {
  if (code === CLIENT_CODES.UNAUTHENTICATED) return "Signed out";
  if (code === CLIENT_CODES.CLOSED_BY_CLIENT) return "Disconnected";
  const known = CLOSE_CODES[code];
  if (known) return known.text;
  return reason ? `Closed: ${reason}` : `Closed (code ${code})`;
}

/** Whether the client must not reconnect after `code`. */
export function isTerminal(code) {
  if (code === CLIENT_CODES.UNAUTHENTICATED || code === CLIENT_CODES.CLOSED_BY_CLIENT) return true;
  const known = CLOSE_CODES[code];
  if (known) return known.terminal;
  // Unknown application codes (4000-4999) are the server telling us
  // something we do not understand: stop rather than hammer it.
  return code >= 4000 && code <= 4999;
}

/**
 * Full-jitter exponential backoff: a uniformly random delay in
 * [0, min(cap, base·2^attempt)). `attempt` counts from 0.
 */
export function backoffDelay(attempt, base = 500, cap = 30000, random = Math.random) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Error of a request the hub refused, or that never got an answer. */
export class HubError extends Error {
  /**
   * @param {string} code  the hub's error code (`forbidden`, `not_subscribed`,
   *   `too_many_channels`, `rate_limited`, `bad_request`, `unknown_type`) or
   *   one of the client's: `timeout`, `disconnected`, `closed`.
   * @param {string} message
   */
  constructor(code, message) {
    super(message || code);
    this.name = "HubError";
    this.code = code;
  }
}

/** Error of an HTTP call (token exchange). `status` is the HTTP status. */
export class HttpError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * A self-healing connection to the hub.
 *
 * Events (it is an EventTarget; read `event.detail`):
 * - `state`: `{state: "connecting"|"open"|"closed", code, reason, text,
 *   terminal, node, attempt, retryIn}` — `open` comes with the welcome;
 *   `closed` carries the close code, the server's reason, `text` in words,
 *   `terminal` (no reconnect will follow) and, when one will, `retryIn` ms.
 * - `welcome`: the server's welcome frame `{user_id, session_id, node, heartbeat_s}`.
 * - `message`: `{channel, data, from}` for every message on a subscribed
 *   channel, the user's own `user:<id>` channel included.
 */
export class SessionHub extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.baseURL] the server, e.g. "https://auth.example.com"
   *   (default: this page's origin). The socket goes to <baseURL>/ws.
   * @param {string} [options.csrfToken] the session's CSRF token, as returned by
   *   login, signup or GET /session; fetched from GET /session when absent.
   * @param {() => Promise<string>} [options.getToken] supplies the JWT yourself
   *   (e.g. a mobile app's access_token); replaces the cookie exchange.
   * @param {number} [options.requestTimeout=10000] ms to wait for an ack.
   * @param {number} [options.backoffBase=500] ms, first backoff ceiling.
   * @param {number} [options.backoffCap=30000] ms, largest backoff ceiling.
   * @param {number} [options.stableAfter=5000] ms a connection must live
   *   before the backoff starts over from its base.
   */
  constructor(options = {}) {
    super();
    const loc = globalThis.location;
    this.baseURL = String(options.baseURL || (loc ? loc.origin : "")).replace(/\/+$/, "");
    if (!this.baseURL) throw new TypeError("SessionHub: baseURL is required outside a browser page");
    this._csrf = options.csrfToken || null;
    this._getToken = options.getToken || null;
    this._timeout = options.requestTimeout ?? 10000;
    this._base = options.backoffBase ?? 500;
    this._cap = options.backoffCap ?? 30000;
    this._stableAfter = options.stableAfter ?? 5000;

    this._ws = null;
    this._state = "closed";
    this._stopped = true; // until connect()
    this._attempt = 0; // consecutive failed attempts, drives the backoff
    this._openedAt = 0;
    this._retryTimer = null;
    this._nextId = 1;
    this._pending = new Map(); // id -> {resolve, reject, timer, frame, sent}
    this._channels = new Set(); // channels to (re-)subscribe on every connection
    this._welcome = null;
    this._firstOpen = null;
    this.connects = 0; // successful connections so far (welcomes received)
  }

  /** The current state: "connecting", "open" or "closed". */
  get state() {
    return this._state;
  }

  /** The last welcome frame (user_id, session_id, node…), or null. */
  get welcome() {
    return this._welcome;
  }

  /** The channels this client keeps subscribed across reconnects. */
  get channels() {
    return [...this._channels];
  }

  /**
   * Starts connecting (idempotent). The promise resolves with the welcome
   * frame of the first successful connection, or rejects with the closing
   * state's detail if the client stops for good before ever opening.
   */
  connect() {
    if (!this._stopped) return this._firstOpen ? this._firstOpen.promise : Promise.resolve(this._welcome);
    this._stopped = false;
    this._attempt = 0;
    this._firstOpen = deferred();
    this._firstOpen.promise.catch(() => {}); // not an unhandled rejection when nobody waits
    const p = this._firstOpen.promise;
    this._dial();
    return p;
  }

  /**
   * Closes the socket and stops reconnecting. Pending requests are rejected
   * with HubError("closed"). connect() may be called again later.
   */
  close() {
    if (this._stopped) return;
    this._stopped = true;
    clearTimeout(this._retryTimer);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, "client closed"); } catch { /* already closing */ }
    }
    this._failPending("closed", "the client was closed");
    this._setClosed(CLIENT_CODES.CLOSED_BY_CLIENT, "client closed", true);
  }

  /** Subscribes to `channel`, now and after every reconnect. Resolves on ack. */
  subscribe(channel) {
    this._channels.add(channel);
    return this._request({ type: "subscribe", channel }).catch((err) => {
      // A refusal (forbidden, too_many_channels…) is final: do not retry it
      // on the next connection. Transient failures keep the channel.
      if (err instanceof HubError && !["timeout", "disconnected", "closed"].includes(err.code)) {
        this._channels.delete(channel);
      }
      throw err;
    });
  }

  /** Unsubscribes from `channel`. Resolves on ack. */
  unsubscribe(channel) {
    this._channels.delete(channel);
    return this._request({ type: "unsubscribe", channel });
  }

  /** Publishes `data` (any JSON value) to `channel`. Resolves on ack. */
  publish(channel, data) {
    return this._request({ type: "publish", channel, data });
  }

  // ---- internals ----

  async _dial() {
    if (this._stopped) return;
    this._setState({ state: "connecting", attempt: this._attempt });
    let token;
    try {
      token = await this._token();
    } catch (err) {
      if (this._stopped) return;
      if (err instanceof HttpError && (err.status === 401 || err.status === 403)) {
        // No live session: nothing to reconnect with.
        this._stop(CLIENT_CODES.UNAUTHENTICATED, err.code || "unauthenticated");
        return;
      }
      const wait = err instanceof HttpError && err.retryAfter ? err.retryAfter * 1000 : null;
      this._scheduleRetry(1006, err.message || "token request failed", wait);
      return;
    }
    if (this._stopped) return;

    let ws;
    try {
      ws = new WebSocket(wsURL(this.baseURL), [PROTOCOL, "bearer." + token]);
    } catch (err) {
      this._scheduleRetry(1006, String(err && err.message));
      return;
    }
    this._ws = ws;
    ws.onmessage = (ev) => this._onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onClose(ev.code, ev.reason);
    };
    ws.onerror = () => {}; // always followed by close, which says more
  }

  async _token() {
    if (this._getToken) return this._getToken();
    if (!this._csrf) {
      const s = await this._http("GET", "/session");
      this._csrf = s.csrf_token;
    }
    try {
      return (await this._http("POST", "/session/token")).token;
    } catch (err) {
      // A stale CSRF token (another tab logged in again): fetch it anew once.
      if (err instanceof HttpError && err.status === 403 && err.code === "csrf") {
        const s = await this._http("GET", "/session");
        this._csrf = s.csrf_token;
        return (await this._http("POST", "/session/token")).token;
      }
      throw err;
    }
  }

  async _http(method, path) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = this._csrf || "";
    const res = await fetch(this.baseURL + path, { method, headers, credentials: "include", cache: "no-store" });
    let body = null;
    try { body = await res.json(); } catch { /* empty or not JSON */ }
    if (!res.ok) {
      const ra = parseInt(res.headers.get("Retry-After") || "", 10);
      throw new HttpError(res.status, body && body.error, body && body.message, Number.isFinite(ra) ? ra : undefined);
    }
    return body;
  }

  _onFrame(raw) {
    let msg;
    try { msg = JSON.parse(raw); } catch { return; }
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "welcome":
        this._onWelcome(msg);
        break;
      case "ack":
        this._settle(msg.id, null, msg);
        break;
      case "error":
        if (msg.id != null) this._settle(msg.id, new HubError(msg.error || "error", msg.message), null);
        break;
      case "message":
        this._emit("message", { channel: msg.channel, data: msg.data, from: msg.from });
        break;
      default:
        break; // newer servers may send more; ignore what we do not know
    }
  }

  _onWelcome(msg) {
    this._welcome = msg;
    this._openedAt = Date.now();
    this.connects++;
    this._emit("welcome", msg);
    this._setState({ state: "open", node: msg.node, attempt: this._attempt });
    if (this._firstOpen) {
      this._firstOpen.resolve(msg);
      this._firstOpen = null;
    }
    // Re-subscribe first, then send what was queued while offline.
    for (const channel of this._channels) {
      const queued = [...this._pending.values()].some((p) => !p.sent && p.frame.type === "subscribe" && p.frame.channel === channel);
      if (!queued) this._request({ type: "subscribe", channel }).catch(() => {});
    }
    for (const [id, p] of this._pending) {
      if (!p.sent) this._send(id, p);
    }
  }

  _onClose(code, reason) {
    const lived = this._openedAt ? Date.now() - this._openedAt : 0;
    this._openedAt = 0;
    this._welcome = null;
    // Requests on the wire will never be answered now.
    for (const [id, p] of this._pending) {
      if (p.sent) {
        clearTimeout(p.timer);
        this._pending.delete(id);
        p.reject(new HubError("disconnected", "the connection closed before the answer came"));
      }
    }
    if (this._stopped) return;
    if (isTerminal(code)) {
      this._stop(code, reason);
      return;
    }
    if (lived >= this._stableAfter) this._attempt = 0;
    this._scheduleRetry(code, reason);
  }

  _scheduleRetry(code, reason, minDelay) {
    let delay = backoffDelay(this._attempt, this._base, this._cap);
    if (minDelay != null) delay = Math.max(delay, Math.min(minDelay, this._cap));
    this._attempt++;
    this._setClosed(code, reason, false, delay);
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._dial(), delay);
  }

  _stop(code, reason) {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._failPending("closed", describeClose(code, reason));
    this._setClosed(code, reason, true);
    if (this._firstOpen) {
      this._firstOpen.reject(Object.assign(new HubError("closed", describeClose(code, reason)), { closeCode: code }));
      this._firstOpen = null;
    }
  }

  _setClosed(code, reason, terminal, retryIn) {
    this._setState({
      state: "closed",
      code,
      reason: reason || "",
      text: describeClose(code, reason),
      terminal,
      retryIn: terminal ? undefined : retryIn,
      attempt: this._attempt,
    });
  }

  _setState(detail) {
    this._state = detail.state;
    this._emit("state", detail);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _request(frame) {
    if (this._stopped && this._state === "closed") {
      return Promise.reject(new HubError("closed", "not connected: call connect() first"));
    }
    const id = String(this._nextId++);
    return new Promise((resolve, reject) => {
      const p = { resolve, reject, frame, sent: false, timer: null };
      p.timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new HubError("timeout", `no answer to ${frame.type} within ${this._timeout} ms`));
      }, this._timeout);
      this._pending.set(id, p);
      if (this._ws && this._ws.readyState === 1 && this._state === "open") this._send(id, p);
    });
  }

  _send(id, p) {
    try {
      this._ws.send(JSON.stringify({ ...p.frame, id }));
      p.sent = true;
    } catch {
      // The socket is closing; the close handler retries or fails it.
    }
  }

  _settle(id, err, msg) {
    const key = String(id);
    const p = this._pending.get(key);
    if (!p) return;
    this._pending.delete(key);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(msg);
  }

  _failPending(code, message) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      this._pending.delete(id);
      p.reject(new HubError(code, message));
    }
  }
}

function wsURL(base) {
  const u = new URL(base + "/ws");
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}
