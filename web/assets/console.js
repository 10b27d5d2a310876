// console.js — the admin console (/console). Usable only with the `admin`
// scope: the API refuses everyone else, and this page says so instead of
// showing empty tables.
//
// Tabs: Users (search, a user's sessions, revoke one, log a user out
// everywhere with the acknowledged counts), Cluster (live nodes and
// connections, GET /admin/stats), Reports (admin-reports.js, loaded on first
// use).

import { announce, boot } from "./shell.js";
import * as api from "./api.js";
import { $, confirmAction, h, icon, kindLabel, sessionIcon, sessionName, shortId, timeEl, userName } from "./dom.js";

// pageSize is one screenful of users; statsEvery matches the hub's node
// heartbeat closely enough to see nodes come and go.
const pageSize = 25;
const statsEvery = 5000;


// ---- tabs ----

function wireTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $("#" + t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    const name = tab.id.replace("tab-", "");
    history.replaceState(null, "", "#" + name);
    document.dispatchEvent(new CustomEvent("console:tab", { detail: name }));
  };
  for (const t of tabs) {
    t.addEventListener("click", () => select(t, false));
    t.addEventListener("keydown", (ev) => {
      const i = tabs.indexOf(t);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
      if (to === undefined) return;
      ev.preventDefault();
      select(tabs[(to + tabs.length) % tabs.length], true);
    });
  }
  const initial = document.getElementById("tab-" + location.hash.slice(1));
  select(initial || tabs[0], false);
}

// ---- users ----

let cursor = null;
let query = "";
let selected = null;

function wireUsers() {
  $("#search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    query = $("#q").value.trim();
    searchUsers(false);
  });
  $("#users-more button").addEventListener("click", () => searchUsers(true));
  searchUsers(false);
}

async function searchUsers(more) {
  const status = $("#users-status");
  const body = $("#users");
  if (!more) cursor = null;
  status.hidden = false;
  status.textContent = "Searching…";
  const params = new URLSearchParams({ q: query, limit: String(pageSize) });
  if (more && cursor) params.set("cursor", cursor);
  try {
    const res = await api.get("/admin/users?" + params);
    const users = res.users || [];
    cursor = res.next_cursor || null;
    const rows = users.map(userRow);
    if (more) body.append(...rows);
    else body.replaceChildren(...rows);
    const n = body.children.length;
    status.textContent = n ? `${n} user${n === 1 ? "" : "s"}${cursor ? " so far" : ""}.` : query ? `No user matches “${query}”.` : "No users yet.";
    $("#users-more").hidden = !cursor;
  } catch (err) {
    status.textContent = api.explain(err);
  }
}

function userRow(u) {
  const open = () => showUser(u);
  return h(
    "tr.selectable",
    { dataset: { userId: u.id, email: u.email }, "aria-selected": String(selected === u.id), onclick: open },
    h("td", null, h("strong", null, userName(u)), h("span.sub", null, u.email)),
    h("td", null, timeEl(u.created_at)),
    h(
      "td.num",
      null,
      h("button.small", { type: "button", "aria-label": `Sessions of ${u.email}`, onclick: (ev) => { ev.stopPropagation(); open(); } }, "Sessions"),
    ),
  );
}

async function showUser(u, result) {
  selected = u.id;
  for (const tr of $("#users").children) tr.setAttribute("aria-selected", String(tr.dataset.userId === u.id));
  const panel = $("#user-detail");
  panel.setAttribute("aria-busy", "true");
  let sessions = [];
  let problem = null;
  try {
    sessions = (await api.get(`/admin/users/${encodeURIComponent(u.id)}/sessions`)).sessions || [];
  } catch (err) {
    problem = api.explain(err);
  }
  if (selected !== u.id) return; // another user was picked meanwhile
  sessions.sort((a, b) => Date.parse(b.last_seen_at) - Date.parse(a.last_seen_at));
  const parts = [
    h(
      "div.card-head.detail-head",
      null,
      h(
        "div",
        null,
        h("h2", null, userName(u)),
        h("p", null, u.email, " · ", h("span.mono", { title: u.id }, shortId(u.id))),
      ),
      h(
        "button.danger.small",
        { type: "button", id: "admin-logout-all", onclick: () => logoutAll(u), disabled: sessions.length === 0 },
        icon("logout"),
        "Log out everywhere",
      ),
    ),
  ];
  if (result) parts.push(result);
  if (problem) parts.push(h("p.empty", { role: "alert" }, problem));
  else if (sessions.length === 0) parts.push(h("p.empty", null, "No live sessions."));
  else parts.push(h("ul.devices", { "aria-label": `Sessions of ${u.email}` }, sessions.map((s) => adminSession(u, s))));
  panel.replaceChildren(...parts);
  panel.setAttribute("aria-busy", "false");
}

function adminSession(u, s) {
  const name = sessionName(s);
  return h(
    "li.device",
    { dataset: { sessionId: s.id } },
    h("span.device-icon", null, icon(sessionIcon(s))),
    h(
      "div",
      null,
      h("div.device-title", null, h("span", null, name), h("span.badge.kind", null, kindLabel(s.kind))),
      h(
        "div.device-meta",
        null,
        h("span", null, icon("globe"), s.ip || "unknown"),
        h("span", null, icon("clock"), "Signed in ", timeEl(s.created_at)),
        h("span", null, "Last seen ", timeEl(s.last_seen_at)),
      ),
    ),
    h(
      "div.device-actions",
      null,
      h("button.danger.small", { type: "button", "aria-label": `Revoke ${name} of ${u.email}`, onclick: () => revokeOne(u, s, name) }, "Revoke"),
    ),
  );
}

/** The acknowledged counts of an admin revocation, as a notice. */
function resultNotice(title, r) {
  const n = (v) => (typeof v === "number" ? v : 0);
  return h(
    "div.notice.ok.result",
    { role: "status", id: "admin-result", dataset: { socketsClosed: n(r.sockets_closed), nodesAcked: n(r.nodes_acked), sessionsRevoked: n(r.sessions_revoked) } },
    icon("check"),
    h(
      "div",
      null,
      h("strong", null, title),
      h(
        "div.kv",
        null,
        r.sessions_revoked !== undefined ? h("div", null, h("strong", null, String(n(r.sessions_revoked))), h("span", null, n(r.sessions_revoked) === 1 ? "session revoked" : "sessions revoked")) : null,
        h("div", null, h("strong", null, String(n(r.sockets_closed))), h("span", null, n(r.sockets_closed) === 1 ? "socket closed" : "sockets closed")),
        h("div", null, h("strong", null, String(n(r.nodes_acked))), h("span", null, n(r.nodes_acked) === 1 ? "node acknowledged" : "nodes acknowledged")),
      ),
    ),
  );
}

async function logoutAll(u) {
  const ok = await confirmAction({
    title: `Log ${u.email} out everywhere?`,
    text: "Every session of this user ends now and every live socket closes on every node. They will have to log in again.",
    ok: "Log out everywhere",
  });
  if (!ok) return;
  const button = document.getElementById("admin-logout-all");
  if (button) button.disabled = true;
  try {
    const r = await api.post(`/admin/users/${encodeURIComponent(u.id)}/logout-all`);
    announce(`${u.email} was logged out everywhere.`, "ok");
    await showUser(u, resultNotice("Logged out everywhere", r));
  } catch (err) {
    announce(api.explain(err), "error");
    if (button) button.disabled = false;
  }
}

async function revokeOne(u, s, name) {
  const ok = await confirmAction({
    title: `Revoke ${name}?`,
    text: `${u.email} is signed out on that device at once and its live sockets close.`,
    ok: "Revoke",
  });
  if (!ok) return;
  try {
    const r = await api.del(`/admin/sessions/${encodeURIComponent(s.id)}`);
    await showUser(u, resultNotice(`${name} revoked`, r || {}));
  } catch (err) {
    announce(api.explain(err), "error");
  }
}

// ---- cluster ----

let statsTimer = null;

function wireCluster() {
  $("#stats-refresh").addEventListener("click", loadStats);
  const onTab = (name) => {
    clearInterval(statsTimer);
    if (name !== "cluster") return;
    loadStats();
    statsTimer = setInterval(() => {
      if (document.visibilityState === "visible") loadStats();
    }, statsEvery);
  };
  document.addEventListener("console:tab", (e) => onTab(e.detail));
}

async function loadStats() {
  const updated = $("#nodes-updated");
  try {
    const s = await api.get("/admin/stats");
    const nodes = (s.nodes || []).slice().sort((a, b) => b.connections - a.connections);
    $("#stat-nodes").textContent = String(nodes.length);
    $("#stat-connections").textContent = String(s.connections ?? 0);
    $("#stat-sessions").textContent = s.sessions_active == null ? "—" : String(s.sessions_active);
    $("#nodes").replaceChildren(
      ...nodes.map((n) =>
        h(
          "tr",
          { dataset: { node: n.id } },
          h("td", null, h("span.mono", null, n.id)),
          h("td.num", null, String(n.connections)),
          h("td", null, timeEl(n.started_at)),
        ),
      ),
    );
    updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${statsEvery / 1000} seconds.`;
  } catch (err) {
    updated.textContent = api.explain(err);
  }
}

// ---- reports (filled in by admin-reports.js) ----

let reportsMounted = false;

function wireReports() {
  document.addEventListener("console:tab", async (e) => {
    if (e.detail !== "reports" || reportsMounted) return;
    reportsMounted = true;
    const root = $("#reports-root");
    try {
      const mod = await import("./admin-reports.js");
      await mod.mount(root, api);
    } catch (err) {
      root.replaceChildren(h("p.card.empty", { role: "alert" }, "Reports could not be loaded: " + err.message));
    }
  });
}

// ---- start (last: the module-level state above must exist first) ----

const { isAdmin } = await boot();
const allowed = await isAdmin;
$("#console-loading").hidden = true;
if (!allowed) {
  $("#denied").hidden = false;
} else {
  $("#console").hidden = false;
  $("#admin-badge").hidden = false;
  wireUsers();
  wireCluster();
  wireReports();
  wireTabs();
}
