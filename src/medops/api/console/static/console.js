// medops console: the only script the console pages load (no inline script anywhere).
// It signs in, and sends each action form to the API as JSON with the session's CSRF token
// (read from the medops_csrf cookie that signing in sets). Pages work without it for reading.
"use strict";

function csrfToken() {
  const match = document.cookie.split("; ").find((c) => c.startsWith("medops_csrf="));
  return match ? decodeURIComponent(match.slice("medops_csrf=".length)) : "";
}

function show(form, text, tone) {
  const status = form.querySelector(".status");
  if (status) {
    status.textContent = text;
    status.className = "status " + (tone || "");
  }
}

async function problemText(response) {
  try {
    const body = await response.json();
    const fields = (body.errors || []).map((e) => e.field + ": " + e.reason).join("; ");
    return (body.detail || body.title || response.statusText) + (fields ? " (" + fields + ")" : "");
  } catch (_) {
    return response.status + " " + response.statusText;
  }
}

function formBody(form) {
  const body = {};
  for (const element of form.elements) {
    if (!element.name || element.disabled) continue;
    if ((element.type === "checkbox" || element.type === "radio") && !element.checked) {
      if (element.type === "checkbox" && element.dataset.json === "boolean") body[element.name] = false;
      continue;
    }
    let value = element.value;
    const kind = element.dataset.json;
    if (value === "" && kind !== "string") continue;
    if (kind === "number") value = Number(value);
    else if (kind === "boolean") value = element.type === "checkbox" ? true : value === "true";
    else if (kind === "list") value = value.split(",").map((v) => v.trim()).filter((v) => v);
    else if (kind === "json") value = JSON.parse(value);
    body[element.name] = value;
  }
  return body;
}

async function sendAction(event) {
  const form = event.target;
  if (!form.dataset.api) return;
  event.preventDefault();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  show(form, "Working…", "");
  const method = form.dataset.method || "POST";
  const headers = { "X-CSRF-Token": csrfToken(), Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET" && method !== "DELETE") {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(formBody(form));
  }
  try {
    const response = await fetch(form.dataset.api, init);
    if (response.ok && form.dataset.show) {
      // An answer carrying a secret shown once (an API token): written into the form's
      // <output> for the user to copy, never stored by the page; a reload does not bring it back.
      const body = await response.json();
      const output = form.querySelector("output.secret");
      if (output) {
        output.textContent = String(body[form.dataset.show] || "");
        output.hidden = false;
      }
      show(form, "Done. Copy the secret now: it is not shown again.", "ok");
      return;
    }
    if (response.ok) {
      show(form, "Done.", "ok");
      if (form.dataset.redirect) window.location.assign(form.dataset.redirect);
      else window.location.reload();
      return;
    }
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
      return;
    }
    show(form, await problemText(response), "bad");
  } catch (error) {
    show(form, "The server could not be reached: " + error, "bad");
  } finally {
    if (button) button.disabled = false;
  }
}

async function signIn(event) {
  const form = event.target;
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  show(form, "Signing in…", "");
  const data = new URLSearchParams(new FormData(form));
  if (!data.get("otp")) data.delete("otp");
  try {
    const response = await fetch("/api/v1/auth/session", {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.ok) {
      const body = await response.json();
      const next = form.dataset.next || "/";
      window.location.assign(body.restriction ? "/account" : next);
      return;
    }
    show(form, await problemText(response), "bad");
  } catch (error) {
    show(form, "The server could not be reached: " + error, "bad");
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  if (event.target.matches("form.login")) signIn(event);
  else if (event.target.matches("form[data-api]")) sendAction(event);
});
