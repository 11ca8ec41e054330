// Shared by every view of the dashboard: the token, the DOM helpers, the session.
// Text goes in with textContent only; nothing here builds HTML from strings.

export const SEVERITIES = ["debug", "info", "warning", "error", "critical"];
export const $ = (id) => document.getElementById(id);

// What every view reads: the token as /v1/whoami describes it ({ name, teams, role, may_operate }).
export const session = { me: null };

export function mayOperate() {
  return Boolean(session.me && session.me.may_operate);
}

export function token() {
  return $("token").value.trim();
}

// The Teams and Types inputs as query parameters (views without types drop them).
export function filters() {
  const q = new URLSearchParams();
  const teams = $("teams").value.trim();
  const types = $("types").value.trim();
  if (teams) q.set("team", teams);
  if (types) q.set("type", types);
  return q;
}

export function authHeaders() {
  return { Authorization: "Bearer " + token() };
}

export async function errorText(response, fallback) {
  try {
    return (await response.json()).error || fallback;
  } catch (err) {
    return fallback;
  }
}

// A JSON request; null when the server is unreachable.
export async function send(method, path, body) {
  const headers = { ...authHeaders(), "Content-Type": "application/json" };
  try {
    return await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  } catch (err) {
    return null;
  }
}

// A refused write's answer: { error, problems } (problems: every one the 422 listed).
export async function refusal(response) {
  if (!response) return { error: "unreachable", problems: [] };
  try {
    const data = await response.json();
    return { error: data.error || "HTTP " + response.status, problems: data.problems || [] };
  } catch (err) {
    return { error: "HTTP " + response.status, problems: [] };
  }
}

// A notice made of a message and a list of problems (ids: prefix-notice, prefix-error, list).
export function problemsNotice(prefix, text, problems, list = $(prefix + "-problems")) {
  $(prefix + "-error").textContent = text;
  list.replaceChildren();
  for (const problem of problems || []) {
    const item = document.createElement("li");
    item.textContent = problem;
    list.appendChild(item);
  }
  $(prefix + "-notice").hidden = !text;
}

export function textNotice(id, text) {
  $(id).textContent = text;
  $(id).hidden = !text;
}

export function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

export function badge(row, value, detail) {
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
  return td;
}

export function button(parent, label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "small " + className;
  b.textContent = label;
  b.addEventListener("click", onClick);
  parent.appendChild(b);
  return b;
}

// At most two units, as `eventbus alerts list` shows them: 45s, 3h12m, 2d4h.
export function age(seconds) {
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

export function clock(date) {
  return isNaN(date) ? "" : date.toLocaleTimeString([], { hour12: false });
}
