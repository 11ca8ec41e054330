// The eventbus dashboard: the live feed over EventSource and the connection;
// each other view is its own module (dash-*.js), loaded as ES modules from
// this server only (the page's CSP allows nothing else). No framework, no
// build step.
import { alertsChanged, forgetAlerts, loadAlerts } from "./dash-alerts.js";
import { forgetChannels, initChannels, loadChannels } from "./dash-channels.js";
import { closeDelivery, initDeliveries, loadDeliveries, refreshShown } from "./dash-deliveries.js";
import { initSilences, loadSilences, renderSilences } from "./dash-silences.js";
import {
  forgetSubscriptions, initSubscriptions, loadSubscriptions,
} from "./dash-subscriptions.js";
import {
  $, SEVERITIES, authHeaders, badge, cell, clock, filters, session, textNotice, token,
} from "./dash-util.js";

const TOKEN_KEY = "eventbus.token";
const MAX_ROWS = 200;
const REFRESH_EVERY_MS = 10000;

let source = null;
let lastId = "";
let retryTimer = null;
let retryDelay = 1000;
let refreshTimer = null;
let received = 0;
let generation = 0; // bumped by every disconnect(), so a stale connect gives up

function setState(kind, text) {
  const el = $("state");
  el.className = "state state-" + kind;
  el.textContent = text;
  document.body.dataset.state = kind;
}

function notice(text) {
  textNotice("notice", text);
}

// The effective severity, as the daemon computes it (Event.level): an event
// without one is "error" when it failed, else "info" (shown as implied).
function severityCell(row, ev) {
  const given = SEVERITIES.includes(ev.severity) ? ev.severity : null;
  const level = given || (ev.outcome === "error" ? "error" : "info");
  const td = cell(row, "");
  const span = document.createElement("span");
  span.className = "badge sev sev-" + level + (given ? "" : " sev-implied");
  span.textContent = level;
  span.title = given ? "severity " + level : "no severity given: " + level + " by default";
  td.appendChild(span);
  row.dataset.severity = level;
}

function addEvent(ev) {
  const outcome = ev.outcome || "none";
  const row = document.createElement("tr");
  row.className = "outcome-" + outcome;
  row.dataset.eventId = ev.id || "";
  const when = new Date(ev.timestamp);
  cell(row, clock(when), "mono").title = ev.timestamp || "";
  cell(row, ev.team_id);
  cell(row, ev.event, "mono");
  severityCell(row, ev);
  badge(row, outcome, ev.error);
  const res = ev.resource || {};
  cell(row, (res.type || "") + ":" + (res.id || ""), "mono");
  const actor = ev.actor || {};
  cell(row, actor.name || actor.id || actor.type || "");
  const body = $("feed").tBodies[0];
  body.insertBefore(row, body.firstChild);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  received += 1;
  $("feed-count").textContent = "(" + received + " received)";
  $("feed-empty").hidden = true;
}

async function loadWhoami() {
  session.me = null;
  try {
    const response = await fetch("/v1/whoami", { headers: authHeaders() });
    if (response.ok) session.me = await response.json();
  } catch (err) {
    /* unreachable: no buttons until the next connect */
  }
  document.body.dataset.operate = session.me && session.me.may_operate ? "yes" : "no";
}

function refused(message) {
  disconnect();
  setState("error", message);
}

// The deliveries double as the token check; false when the token was refused.
async function checkToken() {
  const why = await loadDeliveries();
  if (why) refused(why);
  return !why;
}

function openStream() {
  const q = filters();
  q.set("token", token());
  if (lastId) q.set("last_event_id", lastId);
  const es = new EventSource("/v1/events/stream?" + q);
  source = es;
  es.onopen = () => {
    retryDelay = 1000;
    setState("connected", "connected · live");
  };
  es.onmessage = (e) => {
    if (e.lastEventId) lastId = e.lastEventId;
    try {
      const ev = JSON.parse(e.data);
      addEvent(ev);
      alertsChanged(ev);
    } catch (err) {
      /* not an envelope: ignore */
    }
  };
  es.addEventListener("overflow", () => {
    notice("This page fell behind and was disconnected; resuming from the last event.");
  });
  es.addEventListener("replay-truncated", (e) => {
    notice("Some older events were not replayed (replay limit): " + e.data);
  });
  es.onerror = () => {
    if (source !== es) return;
    if (es.readyState === EventSource.CONNECTING) {
      // The browser reconnects by itself, sending Last-Event-ID.
      setState("reconnecting", "reconnecting…");
      return;
    }
    // Closed for good (the server refused, e.g. 503): retry by hand.
    es.close();
    source = null;
    setState("reconnecting", "disconnected · retrying in " + Math.round(retryDelay / 1000) + "s");
    retryTimer = setTimeout(reconnect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  };
}

async function reconnect() {
  retryTimer = null;
  const mine = generation;
  if ((await checkToken()) && mine === generation && !source) openStream();
}

function disconnect() {
  generation += 1;
  if (source) source.close();
  source = null;
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
}

async function connect(event) {
  if (event) event.preventDefault();
  disconnect();
  notice("");
  lastId = "";
  const t = token();
  if (!t) {
    setState("idle", "enter a token to connect");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, t);
  setState("reconnecting", "connecting…");
  const mine = generation;
  const accepted = await checkToken();
  if (mine !== generation || !accepted) return;
  await loadWhoami();
  if (mine !== generation) return;
  refreshShown();
  await Promise.all([loadAlerts(), loadSilences(), loadChannels(), loadSubscriptions()]);
  if (mine !== generation) return;
  openStream();
  let ticks = 0;
  refreshTimer = setInterval(async () => {
    if (!(await checkToken())) return;
    loadAlerts();
    loadSilences();
    // A request per channel: every third time (the chart's unit is a minute anyway).
    ticks += 1;
    if (ticks % 3 === 0) loadChannels();
  }, REFRESH_EVERY_MS);
}

// The server has no API token at all: nothing can connect, so say what to do.
function noTokens() {
  setState("error", "no token configured on this server");
  $("connect").disabled = true;
  $("feed-empty").textContent =
    "No API token is configured on this server. Make one with " +
    "`eventbus tokens new --name NAME --teams TEAM`, add it under http.tokens " +
    "in the configuration and reload the worker (SIGHUP).";
}

function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  $("token").value = "";
  disconnect();
  session.me = null;
  document.body.dataset.operate = "no";
  forgetAlerts();
  renderSilences([]);
  forgetChannels();
  forgetSubscriptions();
  closeDelivery();
  setState("idle", "not connected");
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.tokens === "none") {
    noTokens();
    return;
  }
  $("auth").addEventListener("submit", connect);
  $("alerts-refresh").addEventListener("click", loadAlerts);
  initDeliveries(refused);
  initSilences();
  initChannels();
  initSubscriptions();
  $("forget").addEventListener("click", forget);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    $("token").value = saved;
    connect();
  }
});
