// The eventbus dashboard: live feed over EventSource, recent deliveries over JSON.
// No framework and no build step; text goes in with textContent only.
"use strict";

(() => {
  const TOKEN_KEY = "eventbus.token";
  const MAX_ROWS = 200;
  const DELIVERIES_EVERY_MS = 10000;
  const SEVERITIES = ["debug", "info", "warning", "error", "critical"];
  // Routing decisions that sent nothing: the record says why (reason) and what explains it.
  const ROUTED = ["suppressed", "grouped", "silenced", "merged"];
  const $ = (id) => document.getElementById(id);

  let source = null;
  let lastId = "";
  let retryTimer = null;
  let retryDelay = 1000;
  let deliveriesTimer = null;
  let received = 0;
  let generation = 0; // bumped by every disconnect(), so a stale connect gives up

  function setState(kind, text) {
    const el = $("state");
    el.className = "state state-" + kind;
    el.textContent = text;
    document.body.dataset.state = kind;
  }

  function notice(text) {
    const el = $("notice");
    el.textContent = text;
    el.hidden = !text;
  }

  function token() {
    return $("token").value.trim();
  }

  function filters() {
    const q = new URLSearchParams();
    const teams = $("teams").value.trim();
    const types = $("types").value.trim();
    if (teams) q.set("team", teams);
    if (types) q.set("type", types);
    return q;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function badge(row, value, detail) {
    const td = cell(row, "");
    const span = document.createElement("span");
    span.className = "badge badge-" + value;
    span.textContent = value;
    td.appendChild(span);
    if (detail) {
      const note = document.createElement("span");
      note.className = "detail error-text";
      note.textContent = detail;
      td.appendChild(note);
    }
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

  function resultCell(row, d) {
    if (ROUTED.includes(d.status)) {
      const why = [d.reason, d.refers_to ? "→ " + d.refers_to : ""].filter(Boolean).join(" ");
      cell(row, why, "routed-text");
    } else if (d.last_error) cell(row, d.last_error, "error-text");
    else cell(row, d.last_status ? "HTTP " + d.last_status : "", "muted");
  }

  function clock(date) {
    return isNaN(date) ? "" : date.toLocaleTimeString([], { hour12: false });
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

  function renderDeliveries(rows) {
    const body = $("deliveries").tBodies[0];
    body.replaceChildren();
    for (const d of rows) {
      const row = document.createElement("tr");
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
    $("deliveries-empty").hidden = rows.length > 0;
  }

  // Loads recent deliveries; doubles as the token check (EventSource cannot
  // show why a connection was refused). Returns false when the token is refused.
  async function loadDeliveries() {
    const t = token();
    if (!t) return false;
    const q = filters();
    q.delete("type");
    q.set("limit", "50");
    let response;
    try {
      response = await fetch("/v1/deliveries?" + q, { headers: { Authorization: "Bearer " + t } });
    } catch (err) {
      return true; // the server is unreachable: the stream will say so and retry
    }
    if (response.status === 401 || response.status === 403 || response.status === 400) {
      let message = "refused";
      try {
        message = (await response.json()).error || message;
      } catch (err) {
        /* keep the default */
      }
      disconnect();
      setState("error", message);
      return false;
    }
    if (response.ok) renderDeliveries((await response.json()).deliveries || []);
    return true;
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
        addEvent(JSON.parse(e.data));
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
    if ((await loadDeliveries()) && mine === generation && !source) openStream();
  }

  function disconnect() {
    generation += 1;
    if (source) source.close();
    source = null;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    if (deliveriesTimer) clearInterval(deliveriesTimer);
    deliveriesTimer = null;
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
    const accepted = await loadDeliveries();
    if (mine !== generation || !accepted) return;
    openStream();
    deliveriesTimer = setInterval(loadDeliveries, DELIVERIES_EVERY_MS);
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

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.tokens === "none") {
      noTokens();
      return;
    }
    $("auth").addEventListener("submit", connect);
    $("refresh").addEventListener("click", loadDeliveries);
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("token").value = "";
      disconnect();
      setState("idle", "not connected");
    });
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      $("token").value = saved;
      connect();
    }
  });
})();
