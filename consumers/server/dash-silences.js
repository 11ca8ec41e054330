// The Silences view: the silences in force; Add and Expire for a token with role operate.
import {
  $, authHeaders, cell, errorText, filters, mayOperate, problemsNotice, refusal, send, token,
} from "./dash-util.js";

function notice(text, problems) {
  problemsNotice("silences", text, problems, $("silence-problems"));
}

export function renderSilences(rows) {
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
    if (mayOperate()) {
      const td = cell(row, "", "actions");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small secondary expire";
      b.textContent = "Expire";
      b.addEventListener("click", () => expireSilence(silence, b));
      td.appendChild(b);
    }
    body.appendChild(row);
  }
  $("silences-count").textContent = rows.length ? "(" + rows.length + " in force)" : "";
  $("silences-empty").hidden = rows.length > 0;
  $("silence-form").hidden = !mayOperate();
}

export async function loadSilences() {
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
    notice("Silences: " + (await errorText(response, "refused")));
    return;
  }
  renderSilences((await response.json()).silences || []);
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
    notice("");
    $("s-matchers").value = "";
    $("s-comment").value = "";
    await loadSilences();
    return;
  }
  const why = await refusal(response);
  notice("Not added: " + why.error, why.problems);
}

async function expireSilence(silence, b) {
  b.disabled = true;
  const response = await send("DELETE", "/v1/silences/" + encodeURIComponent(silence.id));
  if (response && response.ok) {
    notice("");
    await loadSilences();
    return;
  }
  const why = response ? await errorText(response, "HTTP " + response.status) : "unreachable";
  notice("Could not expire the silence: " + why);
  b.disabled = false;
}

export function initSilences() {
  $("silences-refresh").addEventListener("click", loadSilences);
  $("silence-form").addEventListener("submit", addSilence);
}
