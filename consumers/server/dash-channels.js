// The Channels view: each visible channel's health (attempts per minute over
// 24 h, circuit, failure ratio, last error, disabled) and, for a token with
// role operate, Test, Disable and Enable. The YAML's channels (source config)
// are switched by an admin token only, so only that token gets their buttons.
import { minuteChart } from "./dash-chart.js";
import {
  $, authHeaders, button, cell, errorText, mayOperate, send, session, textNotice, token,
} from "./dash-util.js";

const tested = new Map(); // channel -> the last Test's result line, kept across reloads

function notice(text) {
  textNotice("channels-notice", text);
}

function path(name, verb) {
  return "/v1/channels/" + encodeURIComponent(name) + (verb ? "/" + verb : "");
}

async function health(name) {
  try {
    const response = await fetch(path(name, "health") + "?hours=24", { headers: authHeaders() });
    return response.ok ? await response.json() : null;
  } catch (err) {
    return null;
  }
}

function isAdmin() {
  return Boolean(session.me && (session.me.teams || []).includes("*"));
}

function circuitCell(row, circuit) {
  const td = cell(row, "");
  const span = document.createElement("span");
  span.className = "badge circuit-" + circuit.state;
  span.textContent = circuit.breaker_enabled ? circuit.state : "no breaker";
  td.appendChild(span);
  if (circuit.consecutive_failures) span.title = circuit.consecutive_failures + " failed in a row";
}

function stateCell(row, h) {
  if (h.disabled) {
    const td = cell(row, "disabled", "error-text");
    if (h.disabled_reason) td.title = h.disabled_reason;
    const why = document.createElement("span");
    why.className = "detail muted";
    why.textContent = h.disabled_reason || "";
    td.appendChild(why);
  } else cell(row, h.enabled_in_config ? "enabled" : "disabled (config)");
}

function actionsCell(row, channel, h) {
  const td = cell(row, "", "actions");
  button(td, "Test", "test", () => testChannel(channel.name, td));
  if (h.disabled) button(td, "Enable", "enable", () => switchChannel(channel.name, "enable", td));
  else button(td, "Disable", "disable secondary", () => switchChannel(channel.name, "disable", td));
  const result = document.createElement("span");
  result.className = "test-result detail";
  result.textContent = tested.get(channel.name) || "";
  td.appendChild(result);
}

function renderRow(body, channel, h) {
  const row = document.createElement("tr");
  row.dataset.name = channel.name;
  row.dataset.source = channel.source;
  cell(row, channel.name, "mono");
  cell(row, channel.source === "config" ? "all (config)" : channel.team);
  cell(row, channel.type || (h && h.type) || "");
  if (!h) {
    cell(row, "health unavailable", "muted").colSpan = 5;
  } else {
    row.dataset.circuit = h.circuit.state;
    row.dataset.disabled = h.disabled ? "yes" : "no";
    const chart = cell(row, "", "chart-cell");
    chart.appendChild(minuteChart(h.minutes, h.since, h.hours));
    circuitCell(row, h.circuit);
    const ratio = h.circuit.failure_ratio;
    cell(row, ratio == null ? "–" : Math.round(ratio * 100) + " %", "mono");
    cell(row, h.circuit.last_error || "", "error-text");
    stateCell(row, h);
  }
  const writable = channel.source !== "config" || isAdmin();
  if (mayOperate()) {
    if (h && writable) actionsCell(row, channel, h);
    else cell(row, "", "actions");
  }
  body.appendChild(row);
}

export async function loadChannels() {
  if (!token()) return;
  let response;
  try {
    response = await fetch("/v1/channels", { headers: authHeaders() });
  } catch (err) {
    return;
  }
  if (!response.ok) {
    notice("Channels: " + (await errorText(response, "refused")));
    return;
  }
  const channels = (await response.json()).channels || [];
  const healths = await Promise.all(channels.map((channel) => health(channel.name)));
  const body = $("channels").tBodies[0];
  body.replaceChildren();
  channels.forEach((channel, i) => renderRow(body, channel, healths[i]));
  $("channels-empty").hidden = channels.length > 0;
  $("channels-count").textContent = channels.length ? "(" + channels.length + ")" : "";
}

async function testChannel(name, td) {
  for (const b of td.querySelectorAll("button")) b.disabled = true;
  const response = await send("POST", path(name, "test"));
  let line;
  if (response && (response.status === 200 || response.status === 502)) {
    const r = await response.json();
    const status = r.status != null ? " HTTP " + r.status : "";
    line = r.outcome + status + " in " + r.latency_ms + " ms" + (r.error ? ": " + r.error : "");
  } else {
    line = "not sent: " + (response ? await errorText(response, "HTTP " + response.status) : "unreachable");
  }
  tested.set(name, line);
  await loadChannels();
}

async function switchChannel(name, verb, td) {
  for (const b of td.querySelectorAll("button")) b.disabled = true;
  const response = await send("POST", path(name, verb));
  if (response && response.ok) notice("");
  else {
    const why = response ? await errorText(response, "HTTP " + response.status) : "unreachable";
    notice("Could not " + verb + " " + name + ": " + why);
  }
  await loadChannels();
}

export function forgetChannels() {
  tested.clear();
  $("channels").tBodies[0].replaceChildren();
  $("channels-count").textContent = "";
}

export function initChannels() {
  $("channels-refresh").addEventListener("click", loadChannels);
}
