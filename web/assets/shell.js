// shell.js — what every signed-in page shares: the session check, the top
// bar (account, navigation, admin link, live indicator), log out, the
// page-wide announcer, and one SessionHub connection whose terminal close
// (signed out elsewhere, logged out everywhere, expired) ends the page.

import { ApiError, get, post, setCSRF } from "./api.js";
import { SessionHub, describeClose } from "./sessionhub.js";
import { $, h, userName } from "./dom.js";

/**
 * Boots a signed-in page. Sends the visitor to /login when there is no
 * session. Resolves with {user, session, hub, isAdmin, leave}; `isAdmin` is
 * a promise (the probe of GET /admin/stats), `leave()` closes the socket
 * before the page sends the visitor away.
 */
export async function boot() {
  let me;
  try {
    me = await get("/session");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      toLogin();
      return new Promise(() => {}); // the page is going away
    }
    fatal("Can't reach the server. Reload the page to try again.");
    throw err;
  }
  setCSRF(me.csrf_token);
  $("#account-email").textContent = me.user.email;
  $("#account-name").textContent = userName(me.user);
  $("#account-initial").textContent = (me.user.name || me.user.email).trim().charAt(0).toUpperCase();

  const current = location.pathname === "/devices" ? "/" : location.pathname;
  for (const a of document.querySelectorAll(".nav a")) {
    if (a.getAttribute("href") === current) a.setAttribute("aria-current", "page");
  }

  const isAdmin = get("/admin/stats").then(
    () => true,
    () => false,
  );
  isAdmin.then((ok) => {
    const link = document.querySelector('.nav a[href="/console"]');
    if (link) link.hidden = !ok;
    document.body.dataset.admin = String(ok);
  });

  const hub = new SessionHub({ csrfToken: me.csrf_token });
  // leave closes the socket on purpose: its terminal close is then no news
  // to show as "session ended".
  let leaving = false;
  const leave = () => {
    leaving = true;
    hub.close();
  };
  hub.addEventListener("state", (e) => {
    paintPill(e.detail);
    if (e.detail.state === "closed" && e.detail.terminal && !leaving) sessionEnded(e.detail);
  });
  hub.connect().catch(() => {}); // the state events say everything
  // Close the socket when the page goes away (navigation, back/forward
  // cache) instead of leaving the server to find out: the admin's socket
  // counts stay true, and the user's cluster-wide socket limit is not spent
  // on dead pages. A page restored from the back/forward cache reconnects.
  addEventListener("pagehide", leave);
  addEventListener("pageshow", (e) => {
    if (e.persisted && !document.body.classList.contains("ended")) {
      leaving = false;
      hub.connect().catch(() => {});
    }
  });

  $("#logout").addEventListener("click", async () => {
    leave();
    try {
      await post("/auth/logout");
    } catch {
      /* already gone: the login page is the right place either way */
    }
    location.assign("/login");
  });
  document.body.classList.add("ready");
  return { user: me.user, session: me.session, hub, isAdmin, leave };
}

/** Sends the visitor to log in, coming back here afterwards. */
export function toLogin() {
  const next = location.pathname === "/" ? "" : "?next=" + encodeURIComponent(location.pathname);
  location.replace("/login" + next);
}

/** Says something to screen-reader users (and shows it as a toast). */
export function announce(text, kind = "info") {
  const region = $("#toasts");
  const toast = h("div.toast." + kind, { role: kind === "error" ? "alert" : null }, text);
  region.append(toast);
  setTimeout(() => toast.classList.add("leaving"), 4500);
  setTimeout(() => toast.remove(), 5000);
}

function paintPill(d) {
  const pill = document.getElementById("live-pill");
  if (!pill) return;
  pill.dataset.state = d.state === "closed" && !d.terminal ? "retrying" : d.state;
  const text = $(".pill-text", pill);
  if (d.state === "open") {
    text.textContent = "Live";
    pill.title = "Connected to node " + d.node;
  } else if (d.state === "connecting") {
    text.textContent = "Connecting";
    pill.title = "";
  } else {
    text.textContent = d.terminal ? "Offline" : "Reconnecting";
    pill.title = d.text;
  }
}

function sessionEnded(d) {
  if (document.getElementById("session-ended")) return;
  const why = describeClose(d.code, d.reason);
  const banner = h(
    "div.session-ended",
    { id: "session-ended", role: "alert" },
    h("div.session-ended-card",
      null,
      h("h2", null, why),
      h("p", null, "This browser is no longer signed in. Anything you do here now will be refused."),
      h("a.button.primary", { href: "/login" }, "Log in again"),
    ),
  );
  const bar = document.querySelector(".topbar");
  if (bar) bar.after(banner);
  else document.body.prepend(banner);
  document.body.classList.add("ended");
  banner.querySelector("a").focus();
}

function fatal(text) {
  const main = document.getElementById("main");
  if (main) main.replaceChildren(h("div.card.empty", { role: "alert" }, text));
}
