// The Subscriptions view: the YAML's (read-only) and the API-defined ones of
// the token's teams; Add, Edit and Remove (API-defined only) for a token with
// role operate, through /v1/subscriptions. A refused change lists every
// problem the API's 422 names.
import {
  $, authHeaders, button, cell, errorText, mayOperate, problemsNotice, refusal, send, token,
} from "./dash-util.js";

const META = ["name", "team", "events", "channels", "source", "updated_at", "updated_by"];
let editing = null; // the subscription being edited (its view), or null when adding

function notice(text, problems) {
  problemsNotice("subs", text, problems);
}

function list(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}

function others(sub) {
  const rest = {};
  for (const [key, value] of Object.entries(sub)) if (!META.includes(key)) rest[key] = value;
  return rest;
}

function renderRow(body, sub) {
  const row = document.createElement("tr");
  row.dataset.name = sub.name;
  row.dataset.source = sub.source;
  cell(row, sub.name, "mono");
  cell(row, sub.team);
  cell(row, (sub.events || []).join(", "), "mono");
  cell(row, (sub.channels || []).join(", "), "mono");
  const rest = others(sub);
  cell(row, Object.keys(rest).length ? JSON.stringify(rest) : "", "mono muted");
  cell(row, sub.source === "config" ? "config (read-only)" : "api");
  if (mayOperate()) {
    const td = cell(row, "", "actions");
    if (sub.source !== "config") {
      button(td, "Edit", "edit secondary", () => startEdit(sub));
      const remove = button(td, "Remove", "remove secondary", () => {
        if (remove.dataset.armed) removeSubscription(sub, remove);
        else {
          remove.dataset.armed = "yes";
          remove.textContent = "Really remove?";
        }
      });
    }
  }
  body.appendChild(row);
}

export async function loadSubscriptions() {
  if (!token()) return;
  let response;
  try {
    response = await fetch("/v1/subscriptions", { headers: authHeaders() });
  } catch (err) {
    return;
  }
  if (!response.ok) {
    notice("Subscriptions: " + (await errorText(response, "refused")));
    return;
  }
  const rows = (await response.json()).subscriptions || [];
  const body = $("subscriptions").tBodies[0];
  body.replaceChildren();
  for (const sub of rows) renderRow(body, sub);
  $("subscriptions-empty").hidden = rows.length > 0;
  $("subscriptions-count").textContent = rows.length ? "(" + rows.length + ")" : "";
  $("sub-form").hidden = !mayOperate();
}

function fill(sub) {
  $("sub-name").value = sub ? sub.name : "";
  $("sub-name").readOnly = Boolean(sub);
  $("sub-team").value = sub ? sub.team : "";
  $("sub-team").readOnly = Boolean(sub);
  $("sub-events").value = sub ? (sub.events || []).join(", ") : "";
  $("sub-channels").value = sub ? (sub.channels || []).join(", ") : "";
  const rest = sub ? others(sub) : {};
  $("sub-more").value = Object.keys(rest).length ? JSON.stringify(rest, null, 1) : "";
  $("sub-save").textContent = sub ? "Save " + sub.name : "Add subscription";
  $("sub-cancel").hidden = !sub;
}

function startEdit(sub) {
  editing = sub;
  notice("");
  fill(sub);
  $("sub-events").focus();
}

function cancelEdit() {
  editing = null;
  notice("");
  fill(null);
}

// The form as a body; null (and the problem shown) when "More fields" is not a JSON object.
function formBody() {
  let more = {};
  const raw = $("sub-more").value.trim();
  if (raw) {
    try {
      more = JSON.parse(raw);
    } catch (err) {
      more = null;
    }
    if (!more || typeof more !== "object" || Array.isArray(more)) {
      notice("Not saved", ['"More fields" must be a JSON object, e.g. {"outcomes": ["error"]}']);
      return null;
    }
  }
  const body = { ...more };
  const name = $("sub-name").value.trim();
  if (name) body.name = name;
  if ($("sub-events").value.trim()) body.events = list($("sub-events").value);
  if ($("sub-channels").value.trim()) body.channels = list($("sub-channels").value);
  return body;
}

async function save(event) {
  event.preventDefault();
  const body = formBody();
  if (!body) return;
  let response;
  if (editing) {
    // A JSON merge patch: a field no longer in the form is removed (null).
    for (const key of Object.keys(others(editing))) if (!(key in body)) body[key] = null;
    delete body.name;
    response = await send("PATCH", "/v1/subscriptions/" + encodeURIComponent(editing.name), body);
  } else {
    const team = $("sub-team").value.trim();
    if (team) body.team = team;
    response = await send("POST", "/v1/subscriptions", body);
  }
  if (response && (response.status === 201 || response.status === 200)) {
    cancelEdit();
    await loadSubscriptions();
    return;
  }
  const why = await refusal(response);
  notice((editing ? "Not saved: " : "Not added: ") + why.error, why.problems);
}

async function removeSubscription(sub, b) {
  b.disabled = true;
  const response = await send("DELETE", "/v1/subscriptions/" + encodeURIComponent(sub.name));
  if (response && response.ok) {
    if (editing && editing.name === sub.name) cancelEdit();
    notice("");
    await loadSubscriptions();
    return;
  }
  const why = await refusal(response);
  notice("Could not remove " + sub.name + ": " + why.error, why.problems);
  b.disabled = false;
}

export function forgetSubscriptions() {
  editing = null;
  $("subscriptions").tBodies[0].replaceChildren();
  $("subscriptions-count").textContent = "";
  $("sub-form").hidden = true;
}

export function initSubscriptions() {
  $("sub-form").addEventListener("submit", save);
  $("sub-cancel").addEventListener("click", cancelEdit);
  $("subscriptions-refresh").addEventListener("click", loadSubscriptions);
}
