// auth.js — the log-in and sign-up page (/login, /signup).

import { ApiError, config, explain, get, post } from "./api.js";
import { $ } from "./dom.js";

const signup = location.pathname === "/signup";
const form = $("#auth-form");
const email = $("#email");
const password = $("#password");
const name = $("#name");
const error = $("#auth-error");
const submit = $("#auth-submit");

/** Where to go after logging in: a same-origin path only (no open redirect). */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return /^\/(?![/\\])[\w\-/]*$/.test(next) ? next : "/";
}

function paint() {
  document.title = (signup ? "Sign up" : "Log in") + " · sessionhub";
  $(signup ? "#tab-signup" : "#tab-login").setAttribute("aria-current", "page");
  $("#auth-title").textContent = signup ? "Create your account" : "Welcome back";
  $("#auth-sub").textContent = signup
    ? "Start managing your sessions and live connections in a minute."
    : "Log in to manage your devices and live connections.";
  $("#name-field").hidden = !signup;
  $("#password-hint").hidden = !signup;
  password.autocomplete = signup ? "new-password" : "current-password";
  submit.textContent = signup ? "Create account" : "Log in";
  const sw = $("#auth-switch");
  sw.replaceChildren(
    signup ? "Already have an account? " : "New here? ",
    Object.assign(document.createElement("a"), {
      href: (signup ? "/login" : "/signup") + location.search,
      textContent: signup ? "Log in" : "Create an account",
    }),
  );
  const problem = new URLSearchParams(location.search).get("error");
  if (problem === "google_link_required") {
    // The Google email matches an account we cannot link by email alone
    // (API.md): the person proves the password first, then links.
    error.textContent = "An account with this email already exists. Log in with your password, then choose \"Link Google\" on My devices.";
  } else if (problem) {
    error.textContent = "Google sign-in didn't complete. Try again, or use your password.";
  }
}

function invalid(input, message) {
  input.setAttribute("aria-invalid", "true");
  error.textContent = message;
  input.focus();
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.textContent = "";
  for (const i of form.querySelectorAll("input")) i.removeAttribute("aria-invalid");
  const body = { email: email.value.trim(), password: password.value };
  if (!/^[^\s@]+@[^\s@]+$/.test(body.email)) return invalid(email, "Enter a valid email address.");
  if (!body.password) return invalid(password, "Enter your password.");
  if (signup) {
    if (body.password.length < 8) return invalid(password, "Use a password of at least 8 characters.");
    if (name.value.trim()) body.name = name.value.trim();
  }
  submit.disabled = true;
  const label = submit.textContent;
  submit.textContent = signup ? "Creating account…" : "Logging in…";
  try {
    await post(signup ? "/auth/signup" : "/auth/login", body);
    location.assign(nextPath());
  } catch (err) {
    error.textContent = explain(err);
    if (err instanceof ApiError && (err.code === "invalid_email" || err.code === "email_taken")) email.setAttribute("aria-invalid", "true");
    if (err instanceof ApiError && (err.code === "weak_password" || err.code === "invalid_credentials")) password.setAttribute("aria-invalid", "true");
    submit.disabled = false;
    submit.textContent = label;
  }
});

$("#toggle-password").addEventListener("click", (ev) => {
  const show = password.type === "password";
  password.type = show ? "text" : "password";
  ev.currentTarget.textContent = show ? "Hide" : "Show";
  ev.currentTarget.setAttribute("aria-pressed", String(show));
});

paint();
config().then((c) => {
  $("#google-block").hidden = !c.google_enabled;
});
// Already signed in? Go straight to the app.
get("/session").then(
  () => location.replace(nextPath()),
  () => {},
);
email.focus();
