// dom.js — building the DOM without HTML strings (the CSP enforces Trusted
// Types, so innerHTML and friends are off limits), and formatting.

/**
 * h("tag.class1.class2", {attr: value, onclick: fn}, ...children) creates an
 * element. Children are nodes or strings (set as text, never parsed).
 */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** The SVG icon named `name` from the sprite in icons.svg. */
export function icon(name, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "icon");
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  const use = document.createElementNS(ns, "use");
  use.setAttribute("href", iconHref(name));
  svg.append(use);
  return svg;
}

function iconHref(name) {
  // icons.svg sits next to this module, under the same versioned path.
  return new URL("./icons.svg", import.meta.url).pathname + "#" + name;
}

/** Finds one element or throws (a page bug, not a user error). */
export function $(sel, root = document) {
  const el = root.querySelector(sel);
  if (!el) throw new Error("missing element " + sel);
  return el;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** "3 minutes ago" / "just now". */
export function ago(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "—";
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return "just now";
  if (abs < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}

/** "Mar 4, 2026, 10:12 AM". */
export function when(iso) {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? dtf.format(t) : "—";
}

/** A <time> element showing relative time, the exact time on hover. */
export function timeEl(iso) {
  return h("time", { datetime: iso, title: when(iso) }, ago(iso));
}

/** "Chrome on macOS" from a User-Agent string. */
export function describeAgent(ua) {
  if (!ua) return "Unknown device";
  const browser =
    /Edg\//.test(ua) ? "Edge" :
    /OPR\//.test(ua) ? "Opera" :
    /Firefox\//.test(ua) ? "Firefox" :
    /(Chrome|Chromium|CriOS)\//.test(ua) ? "Chrome" :
    /Safari\//.test(ua) ? "Safari" :
    /curl\//i.test(ua) ? "curl" :
    /Go-http-client/.test(ua) ? "Go client" : null;
  const os =
    /iPhone|iPad|iPod/.test(ua) ? "iOS" :
    /Android/.test(ua) ? "Android" :
    /Mac OS X|Macintosh/.test(ua) ? "macOS" :
    /Windows/.test(ua) ? "Windows" :
    /CrOS/.test(ua) ? "ChromeOS" :
    /Linux/.test(ua) ? "Linux" : null;
  if (browser && os) return `${browser} on ${os}`;
  return browser || os || ua.slice(0, 40);
}

/** The name a user goes by: their name, else their email's local part. */
export function userName(u) {
  return u.name || u.email.split("@")[0];
}

/**
 * Shows `text` in a form's status line (<p class="form-status">), coloured
 * by `kind`: "ok", "error", or nothing for progress.
 */
export function formStatus(el, text, kind) {
  el.textContent = text;
  el.className = "form-status " + (kind || "");
}

/** Short display form of a long id: "abcd…wxyz". */
export function shortId(id) {
  return id && id.length > 14 ? id.slice(0, 6) + "…" + id.slice(-4) : id || "";
}

/**
 * Asks for confirmation in the page's <dialog id="confirm">. Resolves true
 * when the person confirms; focus returns where it was.
 */
export function confirmAction({ title, text, ok = "Confirm" }) {
  const dialog = $("#confirm");
  $("#confirm-title", dialog).textContent = title;
  $("#confirm-text", dialog).textContent = text;
  $("#confirm-ok", dialog).textContent = ok;
  dialog.returnValue = "";
  const back = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (back && back.focus) back.focus();
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
    dialog.showModal();
    $("#confirm-ok", dialog).focus();
  });
}

/** The icon name for a session: a phone, a server or a monitor. */
export function sessionIcon(s) {
  if (s.kind === "service") return "server";
  if (s.kind === "refresh" || /Mobile|Android|iPhone|iPad/.test(s.user_agent || "")) return "phone";
  return "monitor";
}

/** The display name of a session's device. */
export function sessionName(s) {
  if (s.kind === "service") return s.device ? `Worker “${s.device}”` : "Worker";
  return s.device || describeAgent(s.user_agent);
}

/** Words for a session kind. */
export function kindLabel(kind) {
  return { browser: "Browser", refresh: "Mobile app", service: "Service" }[kind] || kind;
}
