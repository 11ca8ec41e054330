// The Deliveries view: recent records (filtered by the server), one record's
// attempts, and Resend for a token with role operate.
import {
  $, authHeaders, badge, cell, clock, errorText, filters, mayOperate, textNotice, token,
} from "./dash-util.js";

// Routing decisions that sent nothing: the record says why (reason) and what explains it.
const ROUTED = ["suppressed", "grouped", "silenced", "merged"];
const FILTERS = [
  ["status", "f-status"],
  ["channel", "f-channel"],
  ["subscription", "f-subscription"],
  ["event", "f-event"],
];

let records = []; // the deliveries listed, with their history
let shownId = null; // the delivery whose attempts the detail panel shows

function resultCell(row, d) {
  if (ROUTED.includes(d.status)) {
    const why = [d.reason, d.refers_to ? "→ " + d.refers_to : ""].filter(Boolean).join(" ");
    cell(row, why, "routed-text");
  } else if (d.last_error) cell(row, d.last_error, "error-text");
  else cell(row, d.last_status ? "HTTP " + d.last_status : "", "muted");
}

function renderDeliveries(rows) {
  records = rows;
  const body = $("deliveries").tBodies[0];
  body.replaceChildren();
  for (const d of records) {
    const row = document.createElement("tr");
    row.dataset.id = d.id;
    row.dataset.team = d.team_id;
    if (d.id === shownId) row.className = "selected";
    row.addEventListener("click", () => showDelivery(d.id));
    const when = new Date(d.updated_at * 1000);
    cell(row, clock(when), "mono").title = when.toISOString();
    cell(row, d.team_id);
    cell(row, d.event_type, "mono");
    cell(row, d.subscription);
    cell(row, d.channel + " (" + d.channel_type + ")");
    badge(row, d.status);
    cell(row, d.attempts);
    resultCell(row, d);
    body.appendChild(row);
  }
  $("deliveries-empty").hidden = records.length > 0;
  if (shownId) showDelivery(shownId, true);
}

function detailNotice(text) {
  textNotice("detail-notice", text);
}

// Every attempt of one delivery (its history), and Resend for an operate token.
export function showDelivery(id, keepNotice) {
  const d = records.find((found) => found.id === id);
  if (!d) return;
  if (id !== shownId || !keepNotice) detailNotice("");
  shownId = id;
  for (const row of $("deliveries").tBodies[0].rows) {
    row.className = row.dataset.id === id ? "selected" : "";
  }
  $("detail-id").textContent = d.id;
  const body = $("attempts").tBodies[0];
  body.replaceChildren();
  for (const attempt of d.history || []) {
    const row = document.createElement("tr");
    row.dataset.outcome = attempt.outcome;
    cell(row, attempt.number, "mono");
    cell(row, new Date(attempt.at * 1000).toISOString(), "mono");
    cell(row, Math.round(attempt.duration * 1000) + " ms", "mono");
    badge(row, attempt.outcome);
    cell(row, attempt.status || "", "mono");
    if (attempt.error) cell(row, attempt.error, "error-text");
    else cell(row, attempt.response || "", "muted");
    body.appendChild(row);
  }
  $("resend").hidden = !mayOperate();
  $("resend").disabled = false;
  $("delivery-detail").hidden = false;
}

// After a new token: the Resend button follows its role.
export function refreshShown() {
  if (shownId) showDelivery(shownId, true);
}

export function closeDelivery() {
  shownId = null;
  $("delivery-detail").hidden = true;
  for (const row of $("deliveries").tBodies[0].rows) row.className = "";
}

// The shown delivery as stored now, even when the filters no longer list it
// (a resend makes a failed one retrying): looked up by its event id.
async function reloadShown(shown) {
  const id = shown.id;
  if (shownId !== id) return;
  const q = new URLSearchParams({ event: shown.event_id, history: "true" });
  try {
    const response = await fetch("/v1/deliveries?" + q, { headers: authHeaders() });
    const now = response.ok ? ((await response.json()).deliveries || []) : [];
    const fresh = now.find((found) => found.id === id);
    if (fresh) records = [fresh, ...records.filter((found) => found.id !== id)];
  } catch (err) {
    return;
  }
  showDelivery(id, true);
}

async function resend() {
  const id = shownId;
  const shown = records.find((found) => found.id === id);
  if (!shown) return;
  $("resend").disabled = true;
  let response = null;
  try {
    const path = "/v1/deliveries/" + encodeURIComponent(id) + "/resend";
    response = await fetch(path, { method: "POST", headers: authHeaders() });
  } catch (err) {
    /* said below */
  }
  if (response && response.status === 202) {
    detailNotice("Resend scheduled: " + ((await response.json()).note || "a worker sends it"));
    await loadDeliveries();
    await reloadShown(shown);
    document.body.dataset.resent = id;
    return;
  }
  const why = response ? await errorText(response, "HTTP " + response.status) : "unreachable";
  detailNotice("Could not resend: " + why);
  $("resend").disabled = false;
}

// Loads recent deliveries; doubles as the token check (EventSource cannot show
// why a connection was refused). Returns null when fine (or unreachable: the
// stream says so and retries), else why the token was refused.
export async function loadDeliveries() {
  if (!token()) return "no token";
  const q = filters();
  q.delete("type");
  q.set("limit", "50");
  q.set("history", "true");
  for (const [name, id] of FILTERS) {
    const value = $(id).value.trim();
    if (value) q.set(name, value);
  }
  let response;
  try {
    response = await fetch("/v1/deliveries?" + q, { headers: authHeaders() });
  } catch (err) {
    return null;
  }
  if (response.status === 401 || response.status === 403 || response.status === 400) {
    return await errorText(response, "refused");
  }
  if (response.ok) renderDeliveries((await response.json()).deliveries || []);
  return null;
}

export function initDeliveries(onRefused) {
  const reload = async () => {
    const refused = await loadDeliveries();
    if (refused) onRefused(refused);
  };
  $("refresh").addEventListener("click", reload);
  $("deliveries-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  $("detail-close").addEventListener("click", closeDelivery);
  $("resend").addEventListener("click", resend);
}
