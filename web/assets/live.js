// live.js — the live panel (/live): the socket's state in words, messages
// arriving on the user's channel, and subscribe/publish on other channels.

import { boot } from "./shell.js";
import { CLIENT_CODES, HubError } from "./sessionhub.js";
import { $, formStatus, h, icon } from "./dom.js";

// maxLog bounds the message list so a chatty channel cannot grow the page
// without limit.
const maxLog = 200;

const statusCard = $("#status");
const statusText = $("#status-text");
const statusDetail = $("#status-detail");
const log = $("#log");
const logEmpty = $("#log-empty");
const chips = $("#channels");

const { hub, user, session } = await boot();
let userChannel = "user:" + user.id;
$("#fact-channel").textContent = userChannel;
$("#fact-session").textContent = session.id;
renderChips();

hub.addEventListener("state", (e) => paintState(e.detail));
hub.addEventListener("welcome", (e) => {
  userChannel = "user:" + e.detail.user_id;
  $("#fact-node").textContent = e.detail.node;
  $("#fact-channel").textContent = userChannel;
  $("#fact-connects").textContent = String(hub.connects);
  renderChips();
});
hub.addEventListener("message", (e) => addMessage(e.detail));
paintState({ state: hub.state === "closed" ? "connecting" : hub.state, node: hub.welcome && hub.welcome.node });
if (hub.welcome) {
  $("#fact-node").textContent = hub.welcome.node;
  $("#fact-connects").textContent = String(hub.connects);
}

function paintState(d) {
  const retrying = d.state === "closed" && !d.terminal;
  statusCard.dataset.state = retrying ? "retrying" : d.state;
  statusCard.dataset.code = d.code == null ? "" : String(d.code);
  statusCard.dataset.terminal = String(!!d.terminal);
  if (d.state === "closed") {
    // The recent close codes, newest last: a record for support and tests.
    statusCard.dataset.closes = [...(statusCard.dataset.closes || "").split(",").filter(Boolean), d.code].slice(-10).join(",");
  }
  if (d.state === "open") {
    statusText.textContent = `Connected on node ${d.node}`;
    const hb = hub.welcome && hub.welcome.heartbeat_s;
    statusDetail.textContent =
      `Since ${new Date().toLocaleTimeString()}` + (hb ? ` · heartbeat every ${hb} s` : "");
  } else if (d.state === "connecting") {
    statusText.textContent = "Connecting…";
    statusDetail.textContent = d.attempt ? `Attempt ${d.attempt + 1}` : "Getting a token and opening the socket.";
  } else if (retrying) {
    statusText.textContent = d.text;
    statusDetail.textContent = `Reconnecting in ${(d.retryIn / 1000).toFixed(1)} s` + (d.code ? ` (code ${d.code})` : "");
  } else {
    statusText.textContent = d.text;
    statusDetail.textContent =
      d.code === CLIENT_CODES.UNAUTHENTICATED
        ? "Your session has ended. Log in again to reconnect."
        : d.code === CLIENT_CODES.CLOSED_BY_CLIENT
          ? "Disconnected."
          : `The server closed the connection (code ${d.code}${d.reason ? ", “" + d.reason + "”" : ""}). This page will not reconnect.`;
  }
}

function addMessage(m) {
  const data = typeof m.data === "string" ? m.data : JSON.stringify(m.data, null, 2);
  const from = !m.from ? "" : m.from === userChannel.slice(5) ? "you" : m.from;
  const li = h(
    "li",
    null,
    h(
      "div.log-head",
      null,
      h("span.channel", null, m.channel),
      from ? h("span", null, "from ", h("strong", null, from)) : null,
      h("time", { datetime: new Date().toISOString() }, new Date().toLocaleTimeString()),
    ),
    h("pre", null, data),
  );
  log.prepend(li);
  while (log.children.length > maxLog) log.lastElementChild.remove();
  logEmpty.hidden = true;
}

$("#clear-log").addEventListener("click", () => {
  log.replaceChildren();
  logEmpty.hidden = false;
});

function renderChips() {
  const own = h("li.chip.fixed", { title: "Always subscribed" }, userChannel);
  const rest = hub.channels.map((ch) =>
    h(
      "li.chip",
      null,
      ch,
      h("button", { type: "button", "aria-label": `Unsubscribe from ${ch}`, onclick: () => unsubscribe(ch) }, icon("x")),
    ),
  );
  chips.replaceChildren(own, ...rest);
}

function words(err, channel) {
  if (!(err instanceof HubError)) return String(err && err.message ? err.message : err);
  switch (err.code) {
    case "forbidden":
      return `Not allowed: your account has no grant for ${channel}.`;
    case "too_many_channels":
      return "Too many channels on this connection.";
    case "rate_limited":
      return "Slow down: too many messages.";
    case "not_subscribed":
      return `Not subscribed to ${channel}.`;
    case "timeout":
      return "No answer from the server in time.";
    case "closed":
    case "disconnected":
      return "Not connected.";
    default:
      return err.message || err.code;
  }
}

const subForm = $("#subscribe-form");
const subInput = $("#sub-channel");
const subStatus = $("#sub-status");
subForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const ch = subInput.value.trim();
  if (!ch) {
    subInput.focus();
    return formStatus(subStatus, "Enter a channel name.", "error");
  }
  formStatus(subStatus, `Subscribing to ${ch}…`);
  try {
    await hub.subscribe(ch);
    formStatus(subStatus, `Subscribed to ${ch}.`, "ok");
    subInput.value = "";
    if (!$("#pub-channel").value) $("#pub-channel").value = ch;
  } catch (err) {
    formStatus(subStatus, words(err, ch), "error");
  }
  renderChips();
});

async function unsubscribe(ch) {
  try {
    await hub.unsubscribe(ch);
    formStatus(subStatus, `Unsubscribed from ${ch}.`, "ok");
  } catch (err) {
    formStatus(subStatus, words(err, ch), "error");
  }
  renderChips();
}

const pubForm = $("#publish-form");
const pubStatus = $("#pub-status");
pubForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const ch = $("#pub-channel").value.trim();
  const raw = $("#pub-data").value;
  if (!ch) {
    $("#pub-channel").focus();
    return formStatus(pubStatus, "Enter a channel name.", "error");
  }
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    data = raw;
  }
  formStatus(pubStatus, "Publishing…");
  try {
    await hub.publish(ch, data);
    formStatus(pubStatus, `Published to ${ch}.`, "ok");
  } catch (err) {
    formStatus(pubStatus, words(err, ch), "error");
  }
});
