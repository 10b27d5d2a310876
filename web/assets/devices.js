// devices.js — "My devices" (/): the user's live sessions, revoke one, log
// out everywhere, change password.

import { boot, announce } from "./shell.js";
import { ApiError, config, del, explain, get, post } from "./api.js";
import { $, ago, confirmAction, formStatus, h, icon, kindLabel, sessionIcon, sessionName, timeEl, when } from "./dom.js";

// refreshEvery keeps "last seen" honest without hammering the API.
const refreshEvery = 30000;

const list = $("#sessions");
const count = $("#sessions-count");
let shell;

async function load() {
  list.setAttribute("aria-busy", "true");
  try {
    const { sessions } = await get("/sessions");
    render(sessions || []);
  } catch (err) {
    count.textContent = explain(err);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

function render(sessions) {
  sessions.sort((a, b) => (b.current - a.current) || Date.parse(b.last_seen_at) - Date.parse(a.last_seen_at));
  const n = sessions.length;
  count.textContent = n === 1 ? "1 session is signed in." : `${n} sessions are signed in.`;
  list.replaceChildren(...sessions.map(item));
}

function item(s) {
  const name = sessionName(s);
  const action = s.current
    ? h("button.small", { type: "button", onclick: logoutHere }, icon("logout"), "Log out")
    : h(
        "button.danger.small",
        {
          type: "button",
          "aria-label": `Revoke ${name}, signed in ${ago(s.created_at)}`,
          onclick: () => revoke(s, name),
        },
        "Revoke",
      );
  return h(
    "li.device" + (s.current ? ".is-current" : ""),
    { dataset: { sessionId: s.id, current: String(!!s.current) } },
    h("span.device-icon", null, icon(sessionIcon(s))),
    h(
      "div",
      null,
      h(
        "div.device-title",
        null,
        h("span.device-name", null, name),
        s.current ? h("span.badge.current", null, icon("check"), "This device") : null,
        h("span.badge.kind", null, kindLabel(s.kind)),
      ),
      h(
        "div.device-meta",
        null,
        h("span", { title: "IP address" }, icon("globe"), h("span.visually-hidden", null, "IP address "), s.ip || "unknown"),
        h("span", null, icon("clock"), "Signed in ", timeEl(s.created_at)),
        h("span", null, "Last seen ", timeEl(s.last_seen_at)),
        h("span", { title: when(s.expires_at) }, "Expires ", timeEl(s.expires_at)),
      ),
    ),
    h("div.device-actions", null, action),
  );
}

async function revoke(s, name) {
  const ok = await confirmAction({
    title: `Revoke ${name}?`,
    text: "That device is signed out at once and its live connections close. It will have to log in again.",
    ok: "Revoke",
  });
  if (!ok) return;
  try {
    await del("/sessions/" + encodeURIComponent(s.id));
    announce(`${name} was signed out.`, "ok");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) announce(explain(err), "error");
  }
  load();
}

async function logoutHere() {
  $("#logout").click();
}

async function logoutEverywhere() {
  const ok = await confirmAction({
    title: "Log out everywhere?",
    text: "Every session of your account ends now, this one included, and every live connection closes.",
    ok: "Log out everywhere",
  });
  if (!ok) return;
  shell.leave();
  try {
    await post("/auth/logout-all");
  } catch (err) {
    announce(explain(err), "error");
  }
  location.assign("/login");
}

function wirePassword() {
  const form = $("#password-form");
  const status = $("#password-status");
  const current = $("#current-password");
  const next = $("#new-password");
  const confirm = $("#confirm-password");
  const say = (text, kind) => formStatus(status, text, kind);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const i of form.querySelectorAll("input")) i.removeAttribute("aria-invalid");
    if (!current.value) {
      current.setAttribute("aria-invalid", "true");
      current.focus();
      return say("Enter your current password.", "error");
    }
    if (next.value.length < 8) {
      next.setAttribute("aria-invalid", "true");
      next.focus();
      return say("Use a new password of at least 8 characters.", "error");
    }
    if (next.value !== confirm.value) {
      confirm.setAttribute("aria-invalid", "true");
      confirm.focus();
      return say("The two new passwords don't match.", "error");
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say("Changing password…");
    try {
      await post("/auth/password", { current_password: current.value, new_password: next.value });
      form.reset();
      say("Password changed. Every other device was signed out.", "ok");
      load();
    } catch (err) {
      if (err instanceof ApiError && err.code === "invalid_credentials") {
        current.setAttribute("aria-invalid", "true");
        say("Your current password is not right.", "error");
      } else {
        say(explain(err), "error");
      }
    } finally {
      button.disabled = false;
    }
  });
}

shell = await boot();
wirePassword();
$("#logout-all").addEventListener("click", logoutEverywhere);
$("#refresh").addEventListener("click", load);
config().then((c) => { $("#google-link-card").hidden = !c.google_enabled; });
await load();
setInterval(() => {
  if (document.visibilityState === "visible" && !document.body.classList.contains("ended")) load();
}, refreshEvery);
