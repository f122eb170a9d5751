// The live console: the campaign list, then one campaign followed by server-sent events.
// Plain browser JavaScript served by `ivr serve` itself: no build step, nothing from the internet.
//
// The token comes from the URL fragment (`/#token=...`, which browsers do not send to servers)
// or the login field, and is kept in sessionStorage (gone when the tab closes). EventSource
// cannot set headers, so the stream alone takes it as `?token=`.
"use strict";

const TOKEN_KEY = "ivr-token";
const POLL_MS = 5000;
const MAX_PEOPLE_ROWS = 200;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

const view = {
  token: null,
  cid: null,
  source: null,
  report: null,
  events: [],
  people: new Map(),
  order: [],
  calling: new Set(),
  drawing: false,
};

// -- token and API -------------------------------------------------------------------------

function takeFragment() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = hash.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    hash.delete("token");
    // Out of the address bar, the history and any screenshot of it.
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  return hash.get("campaign");
}

async function api(path, accept = "application/json") {
  const response = await fetch(path, {
    headers: { Authorization: "Bearer " + view.token, Accept: accept },
  });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    logout(body.message || "token refused");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response;
}

function login(token) {
  view.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  refreshCampaigns();
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  view.token = null;
  follow(null);
  $("console").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

// -- PBX link and stream badges ------------------------------------------------------------

function badge(id, cls, text) {
  const el = $(id);
  el.className = "badge " + cls;
  el.textContent = text;
}

function showPbx(state) {
  badge("pbx", state, "PBX link: " + state);
}

async function refreshHealth() {
  try {
    const response = await fetch("/api/health");
    showPbx((await response.json()).ami);
  } catch (err) {
    badge("pbx", "unknown", "PBX link: ? (service unreachable)");
  }
}

// -- campaign list -------------------------------------------------------------------------

async function refreshCampaigns() {
  if (!view.token) return;
  let page;
  try {
    page = await (await api("/api/campaigns?limit=20")).json();
  } catch (err) {
    return;
  }
  const body = $("campaign-list");
  body.replaceChildren();
  $("no-campaign").hidden = page.items.length > 0;
  for (const c of page.items) {
    const tr = row([c.id, c.name + (c.drill ? " (drill)" : ""), c.status,
                    [c.available, "n"], [c.pending, "n"], [c.total, "n"]]);
    tr.dataset.campaign = c.id;
    if (c.id === view.cid) tr.classList.add("selected");
    tr.addEventListener("click", () => select(c.id));
    body.append(tr);
  }
  if (view.cid === null && page.items.length) {
    const running = page.items.find((c) => c.status === "running");
    select((running || page.items[0]).id);
  }
}

function select(cid) {
  const hash = new URLSearchParams(location.hash.slice(1));
  hash.set("campaign", cid);
  history.replaceState(null, "", "#" + hash.toString());
  for (const tr of $("campaign-list").children) {
    tr.classList.toggle("selected", tr.dataset.campaign === cid);
  }
  follow(cid);
}

// -- live stream of one campaign -----------------------------------------------------------

function follow(cid) {
  if (view.source) view.source.close();
  view.source = null;
  view.cid = cid;
  $("campaign").hidden = cid === null;
  if (cid === null) return;
  const url = "/api/campaigns/" + encodeURIComponent(cid) + "/stream?token="
    + encodeURIComponent(view.token);
  const source = new EventSource(url);
  view.source = source;
  source.addEventListener("open", () => badge("link", "live", "live"));
  source.addEventListener("error", () => {
    badge("link", "lost", "reconnecting…");
    // EventSource retries a dropped stream itself, but not one refused (401, 404, 503).
    if (source.readyState === EventSource.CLOSED && view.source === source) {
      setTimeout(() => {
        if (view.source === source) follow(cid);
      }, POLL_MS);
    }
  });
  source.addEventListener("snapshot", (e) => {
    const data = JSON.parse(e.data);
    view.events = data.events;
    view.people = new Map();
    view.order = [];
    for (const p of data.people) {
      view.people.set(p.id, p);
      view.order.push(p.id);
    }
    apply(data);
  });
  source.addEventListener("update", (e) => {
    const data = JSON.parse(e.data);
    view.events.push(...data.events);
    for (const p of data.people) {
      if (!view.people.has(p.id)) view.order.push(p.id);
      view.people.set(p.id, p);
    }
    apply(data);
  });
  source.addEventListener("ami", (e) => showPbx(JSON.parse(e.data).ami));
  source.addEventListener("failure", () => badge("link", "lost", "service error, retrying…"));
}

function apply(data) {
  view.report = data.report;
  view.calling = new Set(data.calling);
  showPbx(data.ami);
  badge("link", "live", "live");
  draw();
}

function draw() {
  // Many updates in one frame draw once.
  if (view.drawing) return;
  view.drawing = true;
  requestAnimationFrame(() => {
    view.drawing = false;
    if (view.report) {
      drawCounts(view.report);
      drawRoles(view.report);
      drawCurve();
      drawPeople();
    }
  });
}

// -- drawing -------------------------------------------------------------------------------

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (cls) td.className = cls;
    tr.append(td);
  }
  return tr;
}

function drawCounts(r) {
  $("campaign-title").textContent = "Campaign " + r.campaign + " — " + r.name;
  $("campaign-status").textContent = r.status;
  $("drill").hidden = !r.drill;
  for (const key of ["available", "unavailable", "in_flight", "pending", "total"]) {
    $("count-" + key).textContent = r[key];
  }
  $("count-forecast").textContent = r.forecast["+30"] + r.forecast["+60"];
  const sms = r.sms || {};
  $("count-sms").textContent = sms.sent || 0;
  $("count-sms-answered").textContent = sms.answered || 0;
}

function drawRoles(r) {
  const box = $("roles");
  box.replaceChildren();
  for (const [role, entry] of Object.entries(r.by_role)) {
    const target = entry.quota || entry.total;
    const line = document.createElement("div");
    line.className = "role";
    line.id = "role-" + role;
    const name = document.createElement("span");
    name.textContent = role;
    const bar = document.createElement("div");
    bar.className = "bar" + (entry.met ? " met" : "");
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = Math.min(100, (100 * entry.available) / Math.max(1, target)) + "%";
    bar.append(fill);
    const label = document.createElement("span");
    label.className = "n role-count";
    label.textContent = entry.available + " / " + target + (entry.quota ? "" : " people");
    line.append(name, bar, label);
    box.append(line);
  }
}

// The curve is drawn as SVG here rather than with a chart library: one staircase chart does
// not justify vendoring one (nothing may come from the internet, and there is no build step).
function curvePoints() {
  const started = view.events.find((e) => e.type === "started");
  const start = started ? Number(started.t) : (view.report.started_at || 0) * 1000;
  const minute = (t) => (Number(t) - start) / 60000;
  const answered = new Map();
  const arrivals = [];
  let last = 0;
  for (const e of view.events) {
    last = Math.max(last, minute(e.t));
    if (e.type === "final" && e.outcome === "available" && !answered.has(e.pid)) {
      answered.set(e.pid, minute(e.t));
    }
  }
  for (const e of view.events) {
    const keyed = Number(e.minutes);
    if (e.type === "eta" && Number.isFinite(keyed) && keyed >= 0) {
      arrivals.push((answered.has(e.pid) ? answered.get(e.pid) : minute(e.t)) + keyed);
    }
  }
  const steps = (times) => times.sort((a, b) => a - b).map((m, i) => [m, i + 1]);
  if (view.report.status === "running") last = Math.max(last, minute(Date.now()));
  return { available: steps([...answered.values()]), onSite: steps(arrivals), last };
}

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function tickStep(span, most) {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440]) {
    if (span / step <= most) return step;
  }
  return Math.ceil(span / most);
}

function drawCurve() {
  const c = curvePoints();
  const quotas = Object.values(view.report.by_role).map((e) => e.quota || 0);
  const totalQuota = quotas.reduce((a, b) => a + b, 0);
  const lastOf = (pts) => (pts.length ? pts[pts.length - 1] : [0, 0]);
  const end = Math.max(5, c.last, lastOf(c.available)[0], lastOf(c.onSite)[0]);
  const top = Math.max(1, totalQuota, lastOf(c.available)[1], lastOf(c.onSite)[1]);
  const [w, h, left, right, upper, lower] = [1000, 360, 70, 20, 20, 50];
  const sx = (m) => left + ((w - left - right) * m) / end;
  const sy = (n) => upper + (h - upper - lower) * (1 - n / (top * 1.05));
  const root = $("curve");
  root.replaceChildren();
  root.append(svg("line", { class: "axis", x1: left, y1: sy(0), x2: w - right, y2: sy(0) }));
  root.append(svg("line", { class: "axis", x1: left, y1: upper, x2: left, y2: sy(0) }));
  const xstep = tickStep(end, 10);
  for (let m = 0; m <= end + 1e-9; m += xstep) {
    root.append(svg("text", { x: sx(m), y: sy(0) + 24, "text-anchor": "middle" }, String(m)));
  }
  root.append(svg("text", { x: w / 2, y: h - 4, "text-anchor": "middle" }, "minutes since start"));
  const ystep = tickStep(top, 6);
  for (let n = 0; n <= top; n += ystep) {
    root.append(svg("text", { x: left - 10, y: sy(n) + 6, "text-anchor": "end" }, String(n)));
  }
  if (totalQuota > 0) {
    root.append(svg("line", { class: "quota", x1: left, y1: sy(totalQuota), x2: w - right,
                              y2: sy(totalQuota) }));
    root.append(svg("text", { x: w - right - 6, y: sy(totalQuota) - 8, "text-anchor": "end" },
                    "quota " + totalQuota));
  }
  const stairs = (pts) => {
    const out = [[sx(0), sy(0)]];
    let held = 0;
    for (const [m, n] of pts) {
      out.push([sx(m), sy(held)], [sx(m), sy(n)]);
      held = n;
    }
    out.push([sx(end), sy(held)]);
    return out.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" ");
  };
  root.append(svg("polyline", { class: "onsite", points: stairs(c.onSite) }));
  root.append(svg("polyline", { class: "available", id: "curve-available",
                                points: stairs(c.available),
                                "data-count": String(c.available.length) }));
}

function stateOf(p) {
  if (view.calling.has(p.id) || p.state === "calling") return "calling";
  if (p.state === "done") return p.outcome || "done";
  return p.state;
}

function drawPeople() {
  // Those being called first, then the latest answers, then the rest in calling order.
  const rank = (p) => (stateOf(p) === "calling" ? 0 : p.finished_at ? 1 : 2);
  const people = view.order.map((id) => view.people.get(id));
  people.sort((a, b) => rank(a) - rank(b) || (b.finished_at || 0) - (a.finished_at || 0));
  const body = $("people");
  body.replaceChildren();
  for (const p of people.slice(0, MAX_PEOPLE_ROWS)) {
    const state = stateOf(p);
    const label = p.answered_by === "sms" ? state + " (SMS)" : state;
    const tr = row([p.name || p.id, p.role, p.unit, [label, state],
                    [p.attempts, "n"], [p.eta_minutes, "n"]]);
    tr.dataset.person = p.id;
    body.append(tr);
  }
  const more = people.length - MAX_PEOPLE_ROWS;
  $("people-more").textContent = more > 0 ? "… and " + more + " more (see the report)" : "";
}

// -- report and CSV ------------------------------------------------------------------------

async function openReport() {
  // Fetched with the token header, then shown from memory: no token in a page address.
  const win = window.open("", "_blank");
  const response = await api("/api/campaigns/" + view.cid + "/report.html", "text/html");
  const blob = new Blob([await response.text()], { type: "text/html" });
  const url = URL.createObjectURL(blob);
  if (win) win.location = url;
  else location.assign(url);
}

async function downloadCsv() {
  const response = await api("/api/campaigns/" + view.cid + "/attempts.csv", "text/csv");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = "campaign-" + view.cid + ".csv";
  link.click();
}

// -- start ---------------------------------------------------------------------------------

function start() {
  const wanted = takeFragment();
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    login($("token").value.trim());
  });
  $("logout").addEventListener("click", () => logout(""));
  $("open-report").addEventListener("click", openReport);
  $("download-csv").addEventListener("click", downloadCsv);
  refreshHealth();
  setInterval(refreshHealth, POLL_MS);
  setInterval(refreshCampaigns, POLL_MS);
  setInterval(draw, POLL_MS); // the curve's time axis moves on while nothing happens
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    logout("");
    return;
  }
  login(token);
  if (wanted) select(wanted);
}

start();
