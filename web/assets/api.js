// api.js — the pages' HTTP client for the sessionhub API.
//
// The CSRF token lives in this module's memory only (never in localStorage,
// sessionStorage or a cookie the script can read): every page load gets it
// afresh from login, signup or GET /session. The session itself is the
// HttpOnly cookie, which scripts never see.

/** An API error: HTTP status, the API's error code and its message. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code || "http_" + status;
    this.retryAfter = retryAfter;
  }
}

let csrfToken = null;

/** Remembers the CSRF token of the current session (in memory). */
export function setCSRF(token) {
  csrfToken = token || null;
}

/** The CSRF token of the current session, or null. */
export function getCSRF() {
  return csrfToken;
}

/**
 * Calls the API. Mutations carry X-CSRF-Token. Resolves with the parsed JSON
 * body (null for 204); rejects with ApiError, or with a TypeError when the
 * network fails.
 */
export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  }
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  if (res.status !== 204) {
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
  }
  if (!res.ok) {
    const ra = parseInt(res.headers.get("Retry-After") || "", 10);
    throw new ApiError(res.status, data && data.error, data && data.message, Number.isFinite(ra) ? ra : undefined);
  }
  if (data && typeof data.csrf_token === "string") setCSRF(data.csrf_token);
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const del = (path) => request("DELETE", path);

/** The server's public configuration ({google_enabled}). */
export async function config() {
  try {
    return await get("/config.json");
  } catch {
    return { google_enabled: false };
  }
}

/** Words for an API error, for a person. */
export function explain(err) {
  if (!(err instanceof ApiError)) return "Can't reach the server. Check your connection and try again.";
  switch (err.code) {
    case "invalid_credentials":
      return "That email and password don't match.";
    case "invalid_email":
      return "Enter a valid email address.";
    case "weak_password":
      return "Use a password of at least 8 characters.";
    case "email_taken":
      return "An account with that email already exists. Log in instead.";
    case "rate_limited":
      return err.retryAfter
        ? `Too many attempts. Try again in ${formatWait(err.retryAfter)}.`
        : "Too many attempts. Try again in a moment.";
    case "unauthenticated":
      return "Your session has ended. Log in again.";
    case "csrf":
    case "origin":
      return "The request was refused for security reasons. Reload the page and try again.";
    case "forbidden":
      return "You don't have permission to do that.";
    case "not_found":
      return "It no longer exists.";
    case "unavailable":
      return "The service is temporarily unavailable. Try again shortly.";
    default:
      return err.message || "Something went wrong.";
  }
}

function formatWait(s) {
  if (s < 90) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? "" : "s"}`;
}
