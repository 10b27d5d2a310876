// admin-reports.js — the Reports tab of the admin console.
//
// PLACEHOLDER, to be filled in by the engineer who owns the audit and
// reports views. The console calls mount() once, the first time the
// Reports tab is opened:
//
//   mount(root, api)
//     root  the empty <div id="reports-root"> inside the Reports tab panel
//     api   the pages' HTTP client (api.js): api.get(path) resolves with the
//           parsed JSON or rejects with api.ApiError; api.explain(err) gives
//           words for an error. The CSRF token is handled inside it.
//
// Routes to use (API.md, "Admin routes"):
//   GET /admin/events?user_id=&type=&since=&until=&cursor=&limit=
//   GET /admin/reports/logins?since=&until=&bucket=hour|day
//   GET /admin/reports/sessions?since=&until=&bucket=
//   GET /admin/reports/revocations?since=&until=&bucket=
// Each report also answers text/csv for an "Export CSV" link.
//
// Build the DOM with dom.js's h() and textContent: the page's CSP enforces
// Trusted Types, so innerHTML is refused. Styles go in app.css (no inline
// style attributes either); tables, cards, .stats and .tabs are ready to use.

import { h, icon } from "./dom.js";

/** Renders the Reports view into root. */
export async function mount(root) {
  root.replaceChildren(
    h(
      "section.card",
      { "aria-labelledby": "reports-title" },
      h("div.card-head", null, h("div", null, h("h2", { id: "reports-title" }, "Reports"), h("p", null, "Audit log, logins, sessions and revocations over time."))),
      h("div.detail-empty", null, icon("chart"), h("p", null, "Reports are coming soon.")),
    ),
  );
}
