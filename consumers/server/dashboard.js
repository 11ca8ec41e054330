// The eventbus dashboard: live feed over EventSource, alerts and recent deliveries over JSON.
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
  let me = null; // the token as /v1/whoami describes it: { name, teams, role, may_operate }
  let alertsSoon = null;
  // Actions sent and not yet taken in by a worker: "team\0key" -> the status when sent.
  const pending = new Map();
  let records = []; // the deliveries listed, with their history
  let shownId = null; // the delivery whose attempts the detail panel shows

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

  function authHeaders() {
    return { Authorization: "Bearer " + token() };
  }

  async function errorText(response, fallback) {
    try {
      return (await response.json()).error || fallback;
    } catch (err) {
      return fallback;
    }
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

  // At most two units, as `eventbus alerts list` shows them: 45s, 3h12m, 2d4h.
  function age(seconds) {
    let rest = Math.max(1, Math.round(seconds));
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      if (rest >= size) {
        parts.push(Math.floor(rest / size) + unit);
        rest %= size;
      }
    }
    return parts.slice(0, 2).join("");
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

  function alertsNotice(text) {
    $("alerts-notice").textContent = text;
    $("alerts-notice").hidden = !text;
  }

  function actionButton(td, label, verb, alert) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small " + verb + (verb === "resolve" ? " secondary" : "");
    button.textContent = label;
    button.addEventListener("click", () => act(alert, verb, td));
    td.appendChild(button);
  }

  // Buttons only for a token with role operate (the server refuses the others anyway).
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

  function renderAlerts(rows) {
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
      if (me && me.may_operate) actionsCell(row, alert);
      body.appendChild(row);
    }
    const firing = rows.filter((alert) => alert.status === "firing").length;
    $("alerts-count").textContent = rows.length ? "(" + firing + " firing)" : "";
    $("alerts-empty").hidden = rows.length > 0;
  }

  async function loadWhoami() {
    me = null;
    try {
      const response = await fetch("/v1/whoami", { headers: authHeaders() });
      if (response.ok) me = await response.json();
    } catch (err) {
      /* unreachable: no buttons until the next connect */
    }
    document.body.dataset.operate = me && me.may_operate ? "yes" : "no";
  }

  async function loadAlerts() {
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
      alertsNotice("Alerts: " + (await errorText(response, "refused")));
      return;
    }
    alertsNotice("");
    renderAlerts((await response.json()).alerts || []);
  }

  async function act(alert, verb, td) {
    for (const button of td.querySelectorAll("button")) button.disabled = true;
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
      alertsNotice("");
      const row = td.parentElement;
      row.dataset.sent = verb;
      td.replaceChildren();
      actionsCell(row, alert);
      return;
    }
    const why = response ? await errorText(response, "HTTP " + response.status) : "unreachable";
    alertsNotice("Could not " + verb + " " + alert.key + ": " + why);
    for (const button of td.querySelectorAll("button")) button.disabled = false;
  }

  // An alert event on the live feed: the alerts table is stale, reload it shortly.
  function alertsChanged(ev) {
    if (!ev.alert && !String(ev.event || "").startsWith("eventbus.alert.")) return;
    if (alertsSoon) clearTimeout(alertsSoon);
    alertsSoon = setTimeout(() => {
      alertsSoon = null;
      loadAlerts();
    }, 1000);
  }

  function renderDeliveries(rows) {
    const wanted = $("f-subscription").value.trim();
    records = wanted ? rows.filter((d) => d.subscription === wanted) : rows;
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
    $("detail-notice").textContent = text;
    $("detail-notice").hidden = !text;
  }

  // Every attempt of one delivery (its history), and Resend for an operate token.
  function showDelivery(id, keepNotice) {
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
    $("resend").hidden = !(me && me.may_operate);
    $("resend").disabled = false;
    $("delivery-detail").hidden = false;
  }

  function closeDelivery() {
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

  function silencesNotice(text, problems) {
    $("silences-error").textContent = text;
    const list = $("silence-problems");
    list.replaceChildren();
    for (const problem of problems || []) {
      const item = document.createElement("li");
      item.textContent = problem;
      list.appendChild(item);
    }
    $("silences-notice").hidden = !text;
  }

  function renderSilences(rows) {
    const body = $("silences").tBodies[0];
    body.replaceChildren();
    for (const silence of rows) {
      const row = document.createElement("tr");
      row.dataset.id = silence.id;
      row.dataset.team = silence.team;
      cell(row, silence.team);
      cell(row, silence.matchers.join(", "), "mono");
      cell(row, silence.ends_at, "mono");
      cell(row, silence.comment);
      cell(row, silence.created_by);
      if (me && me.may_operate) {
        const td = cell(row, "", "actions");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "small secondary expire";
        button.textContent = "Expire";
        button.addEventListener("click", () => expireSilence(silence, button));
        td.appendChild(button);
      }
      body.appendChild(row);
    }
    $("silences-count").textContent = rows.length ? "(" + rows.length + " in force)" : "";
    $("silences-empty").hidden = rows.length > 0;
    $("silence-form").hidden = !(me && me.may_operate);
  }

  async function loadSilences() {
    if (!token()) return;
    const q = filters();
    q.delete("type");
    let response;
    try {
      response = await fetch("/v1/silences?" + q, { headers: authHeaders() });
    } catch (err) {
      return;
    }
    if (!response.ok) {
      silencesNotice("Silences: " + (await errorText(response, "refused")));
      return;
    }
    renderSilences((await response.json()).silences || []);
  }

  async function send(method, path, body) {
    const headers = { ...authHeaders(), "Content-Type": "application/json" };
    try {
      return await fetch(path, { method, headers, body: body && JSON.stringify(body) });
    } catch (err) {
      return null;
    }
  }

  async function addSilence(event) {
    event.preventDefault();
    const body = {
      matchers: $("s-matchers").value.split("\n").map((line) => line.trim()).filter(Boolean),
      duration: $("s-duration").value.trim(),
      comment: $("s-comment").value.trim(),
    };
    const team = $("s-team").value.trim();
    if (team) body.team = team;
    const response = await send("POST", "/v1/silences", body);
    if (response && response.status === 201) {
      silencesNotice("");
      $("s-matchers").value = "";
      $("s-comment").value = "";
      await loadSilences();
      return;
    }
    let data = {};
    try {
      data = response ? await response.json() : { error: "unreachable" };
    } catch (err) {
      data = { error: "HTTP " + response.status };
    }
    silencesNotice("Not added: " + (data.error || "refused"), data.problems);
  }

  async function expireSilence(silence, button) {
    button.disabled = true;
    const response = await send("DELETE", "/v1/silences/" + encodeURIComponent(silence.id));
    if (response && response.ok) {
      silencesNotice("");
      await loadSilences();
      return;
    }
    const why = response ? await errorText(response, "HTTP " + response.status) : "unreachable";
    silencesNotice("Could not expire the silence: " + why);
    button.disabled = false;
  }

  // Loads recent deliveries; doubles as the token check (EventSource cannot
  // show why a connection was refused). Returns false when the token is refused.
  async function loadDeliveries() {
    const t = token();
    if (!t) return false;
    const q = filters();
    q.delete("type");
    q.set("limit", "50");
    q.set("history", "true");
    for (const [name, id] of [["status", "f-status"], ["channel", "f-channel"], ["event", "f-event"]]) {
      const value = $(id).value.trim();
      if (value) q.set(name, value);
    }
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
    await loadWhoami();
    if (mine !== generation) return;
    if (shownId) showDelivery(shownId, true); // the Resend button follows the role
    await loadAlerts();
    await loadSilences();
    if (mine !== generation) return;
    openStream();
    deliveriesTimer = setInterval(() => {
      loadDeliveries();
      loadAlerts();
      loadSilences();
    }, DELIVERIES_EVERY_MS);
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
    $("alerts-refresh").addEventListener("click", loadAlerts);
    $("deliveries-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadDeliveries();
    });
    $("detail-close").addEventListener("click", closeDelivery);
    $("resend").addEventListener("click", resend);
    $("silences-refresh").addEventListener("click", loadSilences);
    $("silence-form").addEventListener("submit", addSilence);
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("token").value = "";
      disconnect();
      me = null;
      pending.clear();
      renderAlerts([]);
      renderSilences([]);
      closeDelivery();
      setState("idle", "not connected");
    });
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      $("token").value = saved;
      connect();
    }
  });
})();
