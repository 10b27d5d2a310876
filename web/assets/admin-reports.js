// admin-reports.js — the Reports tab of the admin console.
//
// The console calls mount(root, api) once, the first time the Reports tab is
// opened (console.js):
//
//   root  the empty <div id="reports-root"> inside the Reports tab panel
//   api   the pages' HTTP client (api.js): api.get(path) resolves with the
//         parsed JSON or rejects with api.ApiError; api.explain(err) words it.
//
// It shows, for a chosen range (last 24 hours … last year):
//   - logins by result over time (stacked bars; GET /admin/reports/logins),
//   - sessions created / revoked / active at the end (GET /admin/reports/sessions),
//   - revocations by reason (bars; GET /admin/reports/revocations),
//   - the audit log, newest first, filtered and paged by cursor
//     (GET /admin/events).
// Every report can be exported as CSV (the same route with Accept: text/csv).
//
// The page's CSP allows only same-origin scripts and styles and enforces
// Trusted Types: everything here is built with createElement(NS) and
// textContent, charts are inline SVG, and the styles live in
// admin-reports.css (loaded next to this module), never in style attributes.

import { h, icon, shortId, when } from "./dom.js";

const svgNS = "http://www.w3.org/2000/svg";

// Ranges offered; each picks the bucket that keeps a chart readable and
// stays inside the server's limits (hours: 31 days at most).
const ranges = [
  { id: "24h", label: "Last 24 hours", hours: 24, bucket: "hour" },
  { id: "7d", label: "Last 7 days", hours: 7 * 24, bucket: "hour" },
  { id: "30d", label: "Last 30 days", hours: 30 * 24, bucket: "day" },
  { id: "90d", label: "Last 90 days", hours: 90 * 24, bucket: "day" },
  { id: "1y", label: "Last year", hours: 365 * 24, bucket: "day" },
];

const results = ["success", "failure", "throttled"];
const resultLabel = { success: "Succeeded", failure: "Failed", throttled: "Throttled" };
const reasons = ["logout", "logout_all", "revoked", "password_change", "admin", "refresh_reuse", "expired"];
const reasonLabel = {
  logout: "Logout",
  logout_all: "Logout everywhere",
  revoked: "Device revoked",
  password_change: "Password changed",
  admin: "Admin",
  refresh_reuse: "Refresh token reuse",
  expired: "Expired",
};
const eventTypes = [
  "signup", "login_succeeded", "login_failed", "session_created", "session_revoked",
  "refresh_rotated", "refresh_reuse", "password_changed", "identity_linked", "admin_action",
];

// eventsPage is one screenful of audit events.
const eventsPage = 25;

/** Renders the Reports view into root. */
export async function mount(root, api) {
  loadStyles();
  const view = new ReportsView(root, api);
  view.render();
  await Promise.all([view.loadReports(), view.loadEvents()]);
}

function loadStyles() {
  const href = new URL("./admin-reports.css", import.meta.url).pathname;
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href }));
}

class ReportsView {
  constructor(root, api) {
    this.root = root;
    this.api = api;
    this.range = ranges[0];
    this.cursors = [""]; // cursors[i] opens page i of the audit log
    this.filter = { type: "", user_id: "" };
  }

  render() {
    const rangeSelect = h(
      "select",
      { id: "rp-range", "aria-label": "Time range" },
      ranges.map((r) => h("option", { value: r.id, selected: r === this.range }, r.label)),
    );
    rangeSelect.addEventListener("change", () => {
      this.range = ranges.find((r) => r.id === rangeSelect.value) || ranges[0];
      this.loadReports();
    });
    const refresh = h("button.small", { type: "button", id: "rp-refresh" }, icon("refresh"), "Refresh");
    refresh.addEventListener("click", () => {
      this.loadReports();
      this.loadEvents();
    });

    this.status = h("p.rp-status", { role: "status" });
    this.loginsBody = h("div.rp-chart", { id: "rp-logins" });
    this.sessionsBody = h("div.stats.rp-stats", { id: "rp-sessions" });
    this.revocationsBody = h("div.rp-chart", { id: "rp-revocations" });

    this.root.replaceChildren(
      h(
        "section.card.rp-card",
        { "aria-labelledby": "reports-title" },
        h(
          "div.card-head",
          null,
          h("div", null, h("h2", { id: "reports-title" }, "Reports"), h("p", null, "Logins, sessions and revocations from the audit log, in UTC buckets.")),
          h("div.button-row", null, rangeSelect, refresh),
        ),
        h("div.card-body", null, this.status, this.sessionsBody),
      ),
      h(
        "div.rp-grid",
        null,
        this.chartCard("rp-logins-title", "Logins by result", "logins", this.loginsBody),
        this.chartCard("rp-revocations-title", "Revocations by reason", "revocations", this.revocationsBody),
      ),
      this.eventsCard(),
    );
  }

  chartCard(id, title, report, body) {
    const exportBtn = h("button.small.ghost", { type: "button", "data-report": report }, "Export CSV");
    exportBtn.addEventListener("click", () => this.exportCSV(report, exportBtn));
    return h(
      "section.card",
      { "aria-labelledby": id },
      h("div.card-head", null, h("h3", { id }, title), exportBtn),
      h("div.card-body", null, body),
    );
  }

  query() {
    const until = new Date();
    const since = new Date(until.getTime() - this.range.hours * 3600 * 1000);
    return new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), bucket: this.range.bucket });
  }

  async loadReports() {
    const q = this.query().toString();
    this.status.textContent = "Loading…";
    this.root.dataset.state = "loading";
    try {
      const [logins, sessions, revocations] = await Promise.all([
        this.api.get("/admin/reports/logins?" + q),
        this.api.get("/admin/reports/sessions?" + q),
        this.api.get("/admin/reports/revocations?" + q),
      ]);
      this.loginsBody.replaceChildren(loginsChart(logins));
      this.sessionsBody.replaceChildren(...sessionStats(sessions));
      this.revocationsBody.replaceChildren(revocationsChart(revocations));
      this.status.textContent = `${this.range.label}, by ${this.range.bucket} · updated ${new Date().toLocaleTimeString()}`;
      this.root.dataset.state = "ready";
    } catch (err) {
      const msg = this.api.explain(err);
      this.status.textContent = msg;
      for (const el of [this.loginsBody, this.revocationsBody]) el.replaceChildren(h("p.empty", null, msg));
      this.sessionsBody.replaceChildren();
      this.root.dataset.state = "error";
    }
  }

  // exportCSV downloads a report as CSV: the same route asked with
  // Accept: text/csv (a plain link would send the browser's Accept and get
  // JSON), saved through a Blob URL.
  async exportCSV(report, btn) {
    btn.disabled = true;
    try {
      const res = await fetch(`/admin/reports/${report}?` + this.query().toString(), {
        headers: { Accept: "text/csv" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (!res.ok) {
        let msg = `HTTP ${res.status}`;
        try { msg = (await res.json()).message || msg; } catch { /* not JSON */ }
        throw new Error(msg);
      }
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: `sessionhub-${report}-${this.range.id}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      this.status.textContent = `Exported ${report} as CSV.`;
    } catch (err) {
      this.status.textContent = `Export failed: ${err.message}`;
    } finally {
      btn.disabled = false;
    }
  }

  // ---- audit log ----

  eventsCard() {
    const type = h(
      "select",
      { id: "rp-ev-type", "aria-label": "Event type" },
      h("option", { value: "" }, "All events"),
      eventTypes.map((t) => h("option", { value: t }, t.replaceAll("_", " "))),
    );
    const user = h("input", { id: "rp-ev-user", type: "search", placeholder: "User id (UUID)", "aria-label": "User id", spellcheck: "false", autocomplete: "off" });
    const form = h("form.rp-filters", { id: "rp-ev-form" }, type, user, h("button.small", { type: "submit" }, icon("search"), "Filter"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.filter = { type: type.value, user_id: user.value.trim() };
      this.cursors = [""];
      this.loadEvents();
    });
    type.addEventListener("change", () => form.requestSubmit());

    this.eventsBody = h("tbody", { id: "rp-events" });
    this.eventsStatus = h("span.rp-page", { role: "status" });
    this.newer = h("button.small", { type: "button", id: "rp-newer", disabled: true }, "Newer");
    this.older = h("button.small", { type: "button", id: "rp-older", disabled: true }, "Older");
    this.newer.addEventListener("click", () => {
      if (this.cursors.length > 1) {
        this.cursors.pop();
        this.loadEvents();
      }
    });
    this.older.addEventListener("click", () => {
      if (this.next) {
        this.cursors.push(this.next);
        this.loadEvents();
      }
    });
    return h(
      "section.card",
      { "aria-labelledby": "rp-events-title" },
      h("div.card-head", null, h("div", null, h("h3", { id: "rp-events-title" }, "Audit log"), h("p", null, "Every login, session and admin action, newest first.")), form),
      h(
        "div.table-wrap",
        null,
        h(
          "table.rp-events",
          null,
          h("thead", null, h("tr", null, ["Time", "Event", "User", "Session", "IP", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
          this.eventsBody,
        ),
      ),
      h("div.rp-pager", null, this.eventsStatus, h("div.button-row", null, this.newer, this.older)),
    );
  }

  async loadEvents() {
    const q = new URLSearchParams({ limit: String(eventsPage) });
    if (this.filter.type) q.set("type", this.filter.type);
    if (this.filter.user_id) q.set("user_id", this.filter.user_id);
    const cursor = this.cursors[this.cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    this.newer.disabled = this.older.disabled = true;
    try {
      const page = await this.api.get("/admin/events?" + q.toString());
      this.next = page.next_cursor || null;
      this.eventsBody.replaceChildren(
        ...(page.events.length
          ? page.events.map(eventRow)
          : [h("tr", null, h("td.empty", { colspan: "6" }, "No events match."))]),
      );
      this.eventsStatus.textContent = `Page ${this.cursors.length}`;
      this.newer.disabled = this.cursors.length <= 1;
      this.older.disabled = !this.next;
    } catch (err) {
      this.eventsBody.replaceChildren(h("tr", null, h("td.empty", { colspan: "6", role: "alert" }, this.api.explain(err))));
      this.eventsStatus.textContent = "";
      this.newer.disabled = this.cursors.length <= 1;
    }
  }
}

function eventRow(e) {
  return h(
    "tr",
    { "data-id": String(e.id), "data-type": e.type },
    h("td", null, h("time", { datetime: e.at, title: e.at }, when(e.at))),
    h("td", null, h("span.badge.rp-type", { "data-type": e.type }, e.type.replaceAll("_", " "))),
    h("td.mono", { title: e.user_id || "" }, e.user_id ? shortId(e.user_id) : "—"),
    h("td.mono", { title: e.session_id || "" }, e.session_id ? shortId(e.session_id) : "—"),
    h("td.mono", null, e.ip || "—"),
    h("td.rp-detail", { title: e.user_agent || "" }, detailText(e.detail)),
  );
}

// detailText is a short "key: value" summary of an event's detail object.
function detailText(detail) {
  if (!detail || typeof detail !== "object") return "";
  const parts = Object.entries(detail).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`);
  return parts.join(" · ") || "—";
}

// ---- charts ----

// buckets lists every bucket start (ms) of a report's range, so that the
// buckets the server omits as empty still take their place on the axis.
function buckets(report) {
  const step = report.bucket === "day" ? 86_400_000 : 3_600_000;
  const since = Date.parse(report.since);
  const until = Date.parse(report.until);
  const out = [];
  for (let t = Math.floor(since / step) * step; t < until; t += step) out.push(t);
  return { list: out, step };
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function bucketLabel(t, bucket, long) {
  const d = new Date(t);
  const day = d.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  if (bucket === "day") return day;
  const hour = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC" });
  return long ? `${day} ${hour} UTC` : hour;
}

// niceMax rounds a chart's top up to 1, 2 or 5 × 10^n.
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function legend(items) {
  return h(
    "ul.rp-legend",
    null,
    items.map(([cls, label, n]) => h("li", null, h("span.rp-swatch." + cls, { "aria-hidden": "true" }), `${label} `, h("strong", null, n.toLocaleString()))),
  );
}

// loginsChart draws logins per bucket as bars stacked by result.
function loginsChart(report) {
  const { list } = buckets(report);
  const index = new Map(list.map((t, i) => [t, i]));
  const counts = list.map(() => ({ success: 0, failure: 0, throttled: 0 }));
  const totals = { success: 0, failure: 0, throttled: 0 };
  for (const r of report.rows) {
    const i = index.get(Date.parse(r.bucket_start));
    if (i === undefined || !(r.result in totals)) continue;
    counts[i][r.result] += r.count;
    totals[r.result] += r.count;
  }
  const all = totals.success + totals.failure + totals.throttled;
  const summary = `${all} login attempts: ${totals.success} succeeded, ${totals.failure} failed, ${totals.throttled} throttled`;
  if (!all) return h("div", null, h("p.empty", null, "No logins in this range."));

  const W = 640, H = 220, left = 40, bottom = 24, top = 8;
  const plotW = W - left - 8, plotH = H - bottom - top;
  const max = niceMax(Math.max(...counts.map((c) => c.success + c.failure + c.throttled)));
  const bw = plotW / list.length;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "rp-svg", role: "img", "aria-label": summary });
  chart.append(svg("title", null, summary));
  // Gridlines at 0, the middle (when it is a whole number) and the top.
  for (const v of max % 2 === 0 ? [0, max / 2, max] : [0, max]) {
    const y = top + plotH * (1 - v / max);
    chart.append(svg("line", { x1: left, x2: W - 8, y1: y, y2: y, class: "rp-gridline" }));
    chart.append(svg("text", { x: left - 6, y: y + 4, class: "rp-axis", "text-anchor": "end" }, v.toLocaleString()));
  }
  counts.forEach((c, i) => {
    let y = top + plotH;
    const x = left + i * bw + Math.max(bw * 0.12, 0.5);
    const w = Math.max(bw * 0.76, 1);
    const g = svg("g", { class: "rp-bar" });
    g.append(svg("title", null, `${bucketLabel(list[i], report.bucket, true)} — ${c.success} succeeded, ${c.failure} failed, ${c.throttled} throttled`));
    for (const res of results) {
      if (!c[res]) continue;
      const hgt = (c[res] / max) * plotH;
      y -= hgt;
      g.append(svg("rect", { x, y, width: w, height: hgt, class: "rp-" + res }));
    }
    chart.append(g);
  });
  const ticks = Math.min(6, list.length);
  for (let k = 0; k < ticks; k++) {
    const i = Math.round((k * (list.length - 1)) / Math.max(ticks - 1, 1));
    chart.append(svg("text", { x: left + (i + 0.5) * bw, y: H - 6, class: "rp-axis", "text-anchor": "middle" }, bucketLabel(list[i], report.bucket, false)));
  }
  return h("div", null, chart, legend(results.map((r) => ["rp-" + r, resultLabel[r], totals[r]])));
}

// revocationsChart draws one horizontal bar per reason: the range's total.
function revocationsChart(report) {
  const totals = new Map();
  for (const r of report.rows) totals.set(r.reason, (totals.get(r.reason) || 0) + r.count);
  const rows = [...totals.entries()].sort((a, b) => b[1] - a[1] || reasons.indexOf(a[0]) - reasons.indexOf(b[0]));
  if (!rows.length) return h("p.empty", null, "No sessions were revoked in this range.");
  const all = rows.reduce((s, [, n]) => s + n, 0);
  const W = 640, rowH = 30, labelW = 170, numW = 56;
  const H = rows.length * rowH + 4;
  const max = Math.max(...rows.map(([, n]) => n));
  const summary = `${all} revocations: ` + rows.map(([r, n]) => `${reasonLabel[r] || r} ${n}`).join(", ");
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "rp-svg", role: "img", "aria-label": summary });
  chart.append(svg("title", null, summary));
  rows.forEach(([reason, n], i) => {
    const y = 2 + i * rowH;
    const w = Math.max(((W - labelW - numW) * n) / max, 2);
    const cls = "rp-reason-" + (reasons.includes(reason) ? reason : "other");
    chart.append(
      svg("text", { x: labelW - 10, y: y + rowH / 2 + 4, class: "rp-label", "text-anchor": "end" }, reasonLabel[reason] || reason),
      svg("rect", { x: labelW, y: y + 5, width: w, height: rowH - 10, rx: 4, class: cls }, svg("title", null, `${reasonLabel[reason] || reason}: ${n}`)),
      svg("text", { x: labelW + w + 6, y: y + rowH / 2 + 4, class: "rp-value" }, n.toLocaleString()),
    );
  });
  return h("div", null, chart);
}

// sessionStats sums the sessions report: created and revoked over the
// range, and sessions alive at its end (the last bucket of each kind).
function sessionStats(report) {
  let created = 0, revoked = 0;
  const lastActive = new Map();
  for (const r of report.rows) {
    created += r.created;
    revoked += r.revoked;
    const prev = lastActive.get(r.kind);
    if (!prev || prev.t < Date.parse(r.bucket_start)) lastActive.set(r.kind, { t: Date.parse(r.bucket_start), n: r.active_at_end });
  }
  // A kind whose last row is earlier than the range's last bucket had no
  // live session after it (its later, empty rows were omitted).
  const { list } = buckets(report);
  const lastBucket = list[list.length - 1];
  let active = 0;
  const byKind = [];
  for (const [kind, v] of lastActive) {
    const n = v.t === lastBucket ? v.n : 0;
    active += n;
    if (n) byKind.push(`${n} ${kind}`);
  }
  const stat = (id, label, value, sub) =>
    h("div.card.stat", { id }, h("div.stat-label", null, label), h("div.stat-value", null, value.toLocaleString()), sub ? h("div.rp-sub", null, sub) : null);
  return [
    stat("rp-created", "Sessions created", created),
    stat("rp-revoked", "Sessions revoked", revoked),
    stat("rp-active", "Active at the end", active, byKind.join(" · ")),
  ];
}
