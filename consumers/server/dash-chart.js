// A per-minute chart of delivered and failed attempts, as plain inline SVG
// (stacked bars, one column per minute): no library, nothing inline for the CSP.
const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 40;

function bars(columns, className) {
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("class", className);
  path.setAttribute("d", columns.join(" ") || "M0 " + HEIGHT);
  return path;
}

// minutes: [{at, delivered, failed}] (unix seconds); since and hours: the span shown.
export function minuteChart(minutes, since, hours) {
  const span = hours * 60;
  const counts = new Map();
  let delivered = 0;
  let failed = 0;
  let peak = 0;
  for (const m of minutes) {
    const x = Math.floor((m.at - since) / 60);
    if (x < 0 || x >= span) continue;
    counts.set(x, m);
    delivered += m.delivered;
    failed += m.failed;
    peak = Math.max(peak, m.delivered + m.failed);
  }
  const scale = peak ? (HEIGHT - 2) / peak : 0;
  const ok = [];
  const bad = [];
  for (const [x, m] of counts) {
    const top = HEIGHT - m.delivered * scale;
    if (m.delivered) ok.push("M" + (x + 0.5) + " " + HEIGHT + "V" + top.toFixed(2));
    if (m.failed) bad.push("M" + (x + 0.5) + " " + top.toFixed(2) + "V" + (top - m.failed * scale).toFixed(2));
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 " + span + " " + HEIGHT);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.dataset.delivered = String(delivered);
  svg.dataset.failed = String(failed);
  svg.dataset.minutes = String(counts.size);
  svg.dataset.peak = String(peak);
  const title = document.createElementNS(SVG, "title");
  title.textContent =
    "last " + hours + " h: " + delivered + " delivered, " + failed + " failed" +
    (peak ? " (peak " + peak + "/min)" : "");
  svg.appendChild(title);
  const base = document.createElementNS(SVG, "line");
  base.setAttribute("class", "axis");
  base.setAttribute("x1", "0");
  base.setAttribute("x2", String(span));
  base.setAttribute("y1", String(HEIGHT));
  base.setAttribute("y2", String(HEIGHT));
  svg.appendChild(base);
  svg.appendChild(bars(ok, "delivered"));
  svg.appendChild(bars(bad, "failed"));
  return svg;
}
