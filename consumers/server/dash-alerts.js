// The Alerts view: firing, acknowledged and resolved alerts; Acknowledge and
// Resolve for a token with role operate (the server refuses the others anyway).
import {
  $, SEVERITIES, age, authHeaders, badge, cell, errorText, filters, mayOperate, textNotice, token,
} from "./dash-util.js";

// Actions sent and not yet taken in by a worker: "team\0key" -> the status when sent.
const pending = new Map();
let soon = null;

function notice(text) {
  textNotice("alerts-notice", text);
}

function actionButton(td, label, verb, alert) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "small " + verb + (verb === "resolve" ? " secondary" : "");
  b.textContent = label;
  b.addEventListener("click", () => act(alert, verb, td));
  td.appendChild(b);
}

function actionsCell(row, alert) {
  const td = cell(row, "", "actions");
  const id = alert.team_id + "\0" + alert.key;
  if (pending.has(id) && pending.get(id) === alert.status) {
    const sent = document.createElement("span");
    sent.className = "sent";
    sent.textContent = "sent, waiting for a worker";
    td.appendChild(sent);
    return;
  }
  pending.delete(id);
  if (alert.status === "firing") actionButton(td, "Acknowledge", "ack", alert);
  if (alert.status !== "resolved") actionButton(td, "Resolve", "resolve", alert);
}

export function renderAlerts(rows) {
  const body = $("alerts").tBodies[0];
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const alert of rows) {
    const row = document.createElement("tr");
    row.className = "alert-" + alert.status;
    row.dataset.key = alert.key;
    row.dataset.team = alert.team_id;
    row.dataset.status = alert.status;
    badge(row, alert.status);
    cell(row, age(now - alert.first_seen), "mono").title =
      "raised " + new Date(alert.first_seen * 1000).toISOString();
    cell(row, alert.count, "mono");
    const level = SEVERITIES.includes(alert.severity) ? alert.severity : "info";
    const sev = cell(row, "");
    const span = document.createElement("span");
    span.className = "badge sev sev-" + level;
    span.textContent = level;
    sev.appendChild(span);
    cell(row, alert.team_id);
    cell(row, alert.key, "mono");
    const summary = cell(row, alert.summary);
    if (alert.acknowledged_by) summary.title = "acknowledged by " + alert.acknowledged_by;
    if (mayOperate()) actionsCell(row, alert);
    body.appendChild(row);
  }
  const firing = rows.filter((alert) => alert.status === "firing").length;
  $("alerts-count").textContent = rows.length ? "(" + firing + " firing)" : "";
  $("alerts-empty").hidden = rows.length > 0;
}

export function forgetAlerts() {
  pending.clear();
  renderAlerts([]);
}

export async function loadAlerts() {
  if (!token()) return;
  const q = filters();
  q.delete("type");
  let response;
  try {
    response = await fetch("/v1/alerts?" + q, { headers: authHeaders() });
  } catch (err) {
    return;
  }
  if (!response.ok) {
    notice("Alerts: " + (await errorText(response, "refused")));
    return;
  }
  notice("");
  renderAlerts((await response.json()).alerts || []);
}

async function act(alert, verb, td) {
  for (const b of td.querySelectorAll("button")) b.disabled = true;
  const q = new URLSearchParams({ team: alert.team_id });
  const path = "/v1/alerts/" + encodeURIComponent(alert.key) + "/" + verb + "?" + q;
  let response = null;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { ...authHeaders(), "Content-Type": "application/json" },
      body: "{}",
    });
  } catch (err) {
    /* said below */
  }
  if (response && response.status === 202) {
    pending.set(alert.team_id + "\0" + alert.key, alert.status);
    notice("");
    const row = td.parentElement;
    row.dataset.sent = verb;
    td.replaceChildren();
    actionsCell(row, alert);
    return;
  }
  const why = response ? await errorText(response, "HTTP " + response.status) : "unreachable";
  notice("Could not " + verb + " " + alert.key + ": " + why);
  for (const b of td.querySelectorAll("button")) b.disabled = false;
}

// An alert event on the live feed: the alerts table is stale, reload it shortly.
export function alertsChanged(ev) {
  if (!ev.alert && !String(ev.event || "").startsWith("eventbus.alert.")) return;
  if (soon) clearTimeout(soon);
  soon = setTimeout(() => {
    soon = null;
    loadAlerts();
  }, 1000);
}
