// The console: follow campaigns live, start a prepared scenario, act on a running campaign,
// manage the roster and access. Plain browser JavaScript served by `ivr serve` itself: no
// build step, nothing from the internet.
//
// Words: every string shown comes from one catalogue (/console-catalogue.json, French and
// English), through t(); the page is in the installation's language (IVR_LANGUAGE) unless the
// user picks the other (kept in localStorage). Numbers and dates are formatted for that
// language's locale (Intl).
//
// The token comes from the URL fragment (`/#token=...`, which browsers do not send to servers)
// or the login field, and is kept in sessionStorage (gone when the tab closes). It goes only
// in the Authorization header: the live stream (EventSource cannot set headers) is opened with
// a short single-use ticket instead. No cookie carries it, so another site cannot make the
// browser act with it (no CSRF).
"use strict";

const TOKEN_KEY = "ivr-token";
const LANGUAGE_KEY = "ivr-language";
const LANGUAGES = ["fr", "en"];
const ROLES = ["viewer", "operator", "admin"];
const POLL_MS = 5000;
const MAX_PEOPLE_ROWS = 200;
const SVG = "http://www.w3.org/2000/svg";
//: The audit filter's choices: an action, or every action starting with a prefix.
const AUDIT_ACTIONS = ["campaign.", "campaign.start", "campaign.stop", "campaign.quota",
  "campaign.extend", "roster.import", "token.", "pin."];

const $ = (id) => document.getElementById(id);

const view = {
  token: null,
  name: null,
  role: null,
  language: "fr",
  catalogue: null,
  tab: "campaigns",
  cid: null,
  source: null,
  report: null,
  events: [],
  people: new Map(),
  order: [],
  calling: new Set(),
  drawing: false,
  pbx: "unknown",
  link: ["unknown", "link.none"],
  campaigns: [],
  scenario: null,
  audioUrl: null,
  roster: null,
  auditCursor: null,
  cluster: null,
  clusterAt: 0,
  clusterError: null,
};

// -- words, numbers, dates -----------------------------------------------------------------

function has(key) {
  return Object.prototype.hasOwnProperty.call(view.catalogue[view.language], key);
}

// `vars.count`, when given, picks the singular form `key.one` where the language says so
// (French: 0 and 1; English: 1).
function t(key, vars) {
  const words = view.catalogue[view.language];
  if (vars && typeof vars.count === "number" && has(key + ".one")
      && new Intl.PluralRules(t("locale")).select(vars.count) === "one") {
    key += ".one";
  }
  const text = has(key) ? words[key] : view.catalogue.fr[key] || key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    vars && Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole);
}

function num(value) {
  if (value === null || value === undefined || value === "") return "—";
  return new Intl.NumberFormat(t("locale")).format(Number(value));
}

function when(seconds) {
  if (!seconds) return "—";
  return new Intl.DateTimeFormat(t("locale"), { dateStyle: "short", timeStyle: "medium" })
    .format(new Date(seconds * 1000));
}

// The time of day alone (a plan's steps are minutes apart, within one campaign).
function clock(seconds) {
  return new Intl.DateTimeFormat(t("locale"), { timeStyle: "short" })
    .format(new Date(seconds * 1000));
}

// A code the API gives (a status, an outcome, an action) in words, or as it is if unknown.
function label(prefix, code) {
  return has(prefix + code) ? t(prefix + code) : String(code);
}

function chooseLanguage() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const asked = hash.get("lang") || localStorage.getItem(LANGUAGE_KEY);
  const fallback = document.documentElement.dataset.defaultLanguage;
  if (LANGUAGES.includes(asked)) return asked;
  return LANGUAGES.includes(fallback) ? fallback : "fr";
}

function setLanguage(language) {
  view.language = language;
  localStorage.setItem(LANGUAGE_KEY, language);
  translate();
}

function translate() {
  document.documentElement.lang = view.language;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  for (const button of document.querySelectorAll("[data-language]")) {
    button.setAttribute("aria-pressed", String(button.dataset.language === view.language));
  }
  fillAuditActions();
  showPbx(view.pbx);
  badge("link", view.link[0], t(view.link[1]));
  showWho();
  drawCampaigns();
  draw();
  if (view.scenario) drawPreview(view.scenario);
  if (view.tab === "start") {
    loadScenarios();
    loadFreeForm();
  }
  if (view.tab === "admin") loadAdmin();
  drawCluster();
}

// -- token and API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || "HTTP " + status);
    this.status = status;
    this.body = body;
  }
}

// Codes whose words say it all; for the others the service's own message (which names the
// field, the line or the group at fault) follows the words.
const TERSE_ERRORS = ["missing_token", "invalid_token", "revoked_token", "forbidden"];

function errorText(err) {
  const body = err instanceof ApiError ? err.body : { message: err && err.message };
  if (!body.error || !has("error." + body.error)) return body.message || t("error.unknown");
  const words = t("error." + body.error);
  if (TERSE_ERRORS.includes(body.error) || !body.message) return words;
  return words + " — " + body.message;
}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + view.token, Accept: options.accept || "application/json" };
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.contentType) {
    headers["Content-Type"] = options.contentType;
  }
  const response = await fetch(path, { method: options.method || "GET", headers, body });
  if (!response.ok) {
    const problem = new ApiError(response.status, await response.json().catch(() => ({})));
    if (response.status === 401) logout(errorText(problem));
    throw problem;
  }
  return response;
}

const getJson = async (path) => (await api(path)).json();
const postJson = async (path, json, method = "POST") => (await api(path, { method, json })).json();

function allows(needed) {
  return ROLES.indexOf(view.role) >= ROLES.indexOf(needed);
}

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

async function login(token, wanted) {
  view.token = token;
  let me;
  try {
    me = await getJson("/api/whoami");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) logout(errorText(err));
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  view.name = me.name;
  view.role = me.role;
  $("login").hidden = true;
  $("console").hidden = false;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  for (const el of document.querySelectorAll("[data-needs]")) el.hidden = !allows(el.dataset.needs);
  showWho();
  await refreshCampaigns();
  if (wanted) select(wanted);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  view.token = view.name = view.role = null;
  view.cluster = view.clusterError = null;
  follow(null);
  showTab("campaigns");
  $("console").hidden = true;
  $("tabs").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
  showWho();
}

function showWho() {
  $("whoami").textContent = view.name
    ? t("whoami", { name: view.name, role: label("role.", view.role) }) : "";
}

function notice(text, kind = "info") {
  const el = $("notice");
  el.className = "notice " + kind;
  el.textContent = text;
  // An action's effect on the list too, not only on the campaign followed live.
  if (kind === "good") refreshCampaigns();
}

// -- tabs ----------------------------------------------------------------------------------

function showTab(name) {
  view.tab = name;
  // A token shown once does not stay on screen behind another tab.
  $("token-new").hidden = true;
  $("token-value").textContent = "";
  for (const button of document.querySelectorAll("#tabs .tab")) {
    button.setAttribute("aria-pressed", String(button.dataset.tab === name));
  }
  for (const tab of ["campaigns", "start", "admin", "cluster"]) {
    $("view-" + tab).hidden = tab !== name;
  }
  if (name === "start") {
    loadScenarios();
    loadFreeForm();
  }
  if (name === "admin") loadAdmin();
  if (name === "cluster") refreshCluster();
}

// -- PBX link and stream badges ------------------------------------------------------------

function badge(id, cls, text) {
  const el = $(id);
  el.className = "badge " + cls;
  el.textContent = text;
}

function showPbx(state) {
  view.pbx = state;
  badge("pbx", state, t("pbx.label", { state: label("pbx.", state) }));
}

function showLink(cls, key) {
  view.link = [cls, key];
  badge("link", cls, t(key));
}

async function refreshHealth() {
  try {
    const response = await fetch("/api/health");
    showPbx((await response.json()).ami);
  } catch (err) {
    showPbx("unreachable");
  }
}

// -- campaign list -------------------------------------------------------------------------

async function refreshCampaigns() {
  if (!view.token) return;
  try {
    view.campaigns = (await getJson("/api/campaigns?limit=20")).items;
  } catch (err) {
    return;
  }
  drawCampaigns();
  if (view.cid === null && view.campaigns.length) {
    const running = view.campaigns.find((c) => c.status === "running");
    select((running || view.campaigns[0]).id);
  }
}

function drawCampaigns() {
  if (!view.catalogue) return;
  const body = $("campaign-list");
  body.replaceChildren();
  $("no-campaign").hidden = view.campaigns.length > 0;
  for (const c of view.campaigns) {
    const tr = row([c.id, c.name + (c.drill ? " " + t("campaign.drill_tag") : ""),
                    label("status.", c.status), when(c.created_at),
                    [num(c.available), "n"], [num(c.pending), "n"], [num(c.total), "n"]]);
    tr.dataset.campaign = c.id;
    tr.tabIndex = 0;
    if (c.id === view.cid) tr.classList.add("selected");
    tr.addEventListener("click", () => select(c.id));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        select(c.id);
      }
    });
    body.append(tr);
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

async function streamUrl(cid) {
  // The token never goes in a URL: a single-use ticket of 30 s, asked for with the token in
  // the header, opens the stream (EventSource cannot set headers).
  const path = "/api/campaigns/" + encodeURIComponent(cid);
  const { ticket } = await postJson(path + "/stream-ticket");
  return path + "/stream?ticket=" + encodeURIComponent(ticket);
}

function retryFollow(cid, source) {
  setTimeout(() => {
    if (view.source === source) follow(cid);
  }, POLL_MS);
}

async function follow(cid) {
  if (view.source && view.source.close) view.source.close();
  view.source = null;
  view.cid = cid;
  $("campaign").hidden = cid === null;
  if (cid === null) {
    view.report = null;
    return;
  }
  const marker = {};
  view.source = marker;
  const url = await streamUrl(cid).catch(() => null);
  if (view.source !== marker) return; // another campaign was chosen meanwhile
  if (url === null) {
    showLink("lost", "link.reconnecting");
    if (view.token) retryFollow(cid, marker);
    return;
  }
  const source = new EventSource(url);
  view.source = source;
  source.addEventListener("open", () => showLink("live", "link.live"));
  source.addEventListener("error", () => {
    showLink("lost", "link.reconnecting");
    // A ticket opens one stream: a dropped stream is opened again with a new ticket, not
    // retried by EventSource with the used one.
    source.close();
    if (view.source === source) retryFollow(cid, source);
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
    if (data.events.some((event) => event.type === "extended")) {
      // People were added: a fresh snapshot brings them all (a new ticket, a new stream).
      follow(cid);
      return;
    }
    view.events.push(...data.events);
    for (const p of data.people) {
      if (!view.people.has(p.id)) view.order.push(p.id);
      view.people.set(p.id, p);
    }
    apply(data);
  });
  source.addEventListener("ami", (e) => showPbx(JSON.parse(e.data).ami));
  source.addEventListener("failure", () => showLink("lost", "link.failure"));
}

function apply(data) {
  view.report = data.report;
  view.calling = new Set(data.calling);
  showPbx(data.ami);
  showLink("live", "link.live");
  draw();
}

function draw() {
  // Many updates in one frame draw once.
  if (view.drawing) return;
  view.drawing = true;
  requestAnimationFrame(() => {
    view.drawing = false;
    if (view.report && view.catalogue) {
      drawCounts(view.report);
      drawRoles(view.report);
      drawCurve();
      drawPeople();
    }
  });
}

// -- drawing -------------------------------------------------------------------------------

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
    if (text instanceof Node) {
      const td = el("td", null, cls);
      td.append(text);
      tr.append(td);
    } else {
      tr.append(el("td", text === null || text === undefined ? "—" : String(text), cls));
    }
  }
  return tr;
}

function drawCounts(r) {
  $("campaign-title").textContent = t("campaign.title", { id: r.campaign, name: r.name });
  $("campaign-status").textContent = label("status.", r.status);
  $("drill").hidden = !r.drill;
  for (const key of ["available", "unavailable", "in_flight", "pending", "total"]) {
    $("count-" + key).textContent = num(r[key]);
  }
  $("count-forecast").textContent = num(r.forecast["+30"] + r.forecast["+60"]);
  const sms = r.sms || {};
  $("count-sms").textContent = num(sms.sent || 0);
  $("count-sms-answered").textContent = num(sms.answered || 0);
  const running = r.status === "running";
  $("action-stop").disabled = !running;
  $("action-quota").disabled = !(running || r.status === "done");
  $("action-extend").disabled = !(running || r.status === "done");
}

function drawRoles(r) {
  const box = $("roles");
  box.replaceChildren();
  for (const [role, entry] of Object.entries(r.by_role)) {
    const target = entry.quota || entry.total;
    const line = el("div", null, "role");
    line.id = "role-" + role;
    const bar = el("div", null, "bar" + (entry.met ? " met" : ""));
    const fill = el("div", null, "fill");
    fill.style.width = Math.min(100, (100 * entry.available) / Math.max(1, target)) + "%";
    bar.append(fill);
    const vars = { available: num(entry.available), target: num(target) };
    const text = t(entry.quota ? "roles.against_quota" : "roles.against_people", vars);
    line.append(el("span", role), bar, el("span", text, "n role-count"));
    box.append(line);
  }
}

// The curve is drawn as SVG here rather than with a chart library: one staircase chart does
// not justify vendoring one (nothing may come from the internet, and there is no build step).
function curvePoints() {
  const started = view.events.find((e) => e.type === "started");
  const start = started ? Number(started.t) : (view.report.started_at || 0) * 1000;
  const minute = (time) => (Number(time) - start) / 60000;
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
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
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
    root.append(svg("text", { x: sx(m), y: sy(0) + 24, "text-anchor": "middle" }, num(m)));
  }
  root.append(svg("text", { x: w / 2, y: h - 4, "text-anchor": "middle" }, t("curve.minutes")));
  const ystep = tickStep(top, 6);
  for (let n = 0; n <= top; n += ystep) {
    root.append(svg("text", { x: left - 10, y: sy(n) + 6, "text-anchor": "end" }, num(n)));
  }
  if (totalQuota > 0) {
    root.append(svg("line", { class: "quota", x1: left, y1: sy(totalQuota), x2: w - right,
                              y2: sy(totalQuota) }));
    root.append(svg("text", { x: w - right - 6, y: sy(totalQuota) - 8, "text-anchor": "end" },
                    t("curve.quota", { n: num(totalQuota) })));
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

// Each step of a person's delivery plan and where it stands (ivr.campaign.progress):
// "Appel : pas de réponse 14:01 · SMS : envoyé 14:02 · Appel : prévu 14:07".
function planText(plan) {
  return (plan || []).map((s) => {
    let said = label("plan.", s.state);
    if (s.state === "done") {
      said = s.channel === "sms" ? label("smsresult.", s.result) : label("state.", s.result);
    }
    const time = s.at ? clock(s.at) : "";
    return t("plan.entry", { channel: label("channel.", s.channel), state: said, time }).trim();
  }).join(" · ");
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
    const said = label("state.", state);
    const shown = p.answered_by === "sms" ? t("people.by_sms", { state: said }) : said;
    const tr = row([p.name || p.id, p.role, p.unit, [shown, state], [planText(p.plan), "plan"],
                    [num(p.attempts), "n"], [num(p.eta_minutes), "n"]]);
    tr.dataset.person = p.id;
    body.append(tr);
  }
  const more = people.length - MAX_PEOPLE_ROWS;
  $("people-more").textContent = more > 0 ? t("people.more", { n: num(more) }) : "";
}

// -- report and CSV ------------------------------------------------------------------------

async function openReport() {
  // Fetched with the token header, then shown from memory: no token in a page address.
  const win = window.open("", "_blank");
  const response = await api("/api/campaigns/" + view.cid + "/report.html", { accept: "text/html" });
  const blob = new Blob([await response.text()], { type: "text/html" });
  const url = URL.createObjectURL(blob);
  if (win) win.location = url;
  else location.assign(url);
}

async function downloadCsv() {
  const response = await api("/api/campaigns/" + view.cid + "/attempts.csv", { accept: "text/csv" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = "campaign-" + view.cid + ".csv";
  link.click();
}

// -- one dialog for confirmations and small forms ------------------------------------------

// Shows the dialog; `action` runs on OK (its error is shown in the dialog, which stays open);
// resolves with what `action` returned, or null if cancelled (button or Escape).
function ask({ title, body, ok, danger = false, action }) {
  const dialog = $("dialog");
  const form = $("dialog-form");
  const okButton = $("dialog-ok");
  const cancel = $("dialog-cancel");
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(...body);
  $("dialog-error").textContent = "";
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener("submit", submit);
      cancel.removeEventListener("click", cancelled);
      dialog.removeEventListener("cancel", cancelled);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const submit = async (e) => {
      e.preventDefault();
      okButton.disabled = true;
      try {
        done(await action());
      } catch (err) {
        $("dialog-error").textContent = errorText(err);
      } finally {
        okButton.disabled = false;
      }
    };
    const cancelled = (e) => {
      if (e) e.preventDefault();
      done(null);
    };
    form.addEventListener("submit", submit);
    cancel.addEventListener("click", cancelled);
    dialog.addEventListener("cancel", cancelled);
    dialog.showModal();
    // A dangerous action is not one Enter away: the focus starts on Cancel.
    const first = dialog.querySelector("#dialog-body input, #dialog-body select");
    (danger ? cancel : first || okButton).focus();
  });
}

function field(labelText, input) {
  const wrap = el("p", null, "field");
  const caption = el("label", labelText);
  input.id = input.id || "field-" + Math.random().toString(36).slice(2);
  caption.htmlFor = input.id;
  wrap.append(caption, input);
  return wrap;
}

function checkbox(text, value, name) {
  const wrap = el("label", null, "check");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.value = value;
  box.name = name;
  wrap.append(box, " " + text);
  return wrap;
}

// -- acting on the campaign followed ---------------------------------------------------------

function campaignPath(suffix) {
  return "/api/campaigns/" + encodeURIComponent(view.cid) + suffix;
}

async function stopCampaign() {
  const r = view.report;
  const left = num(r.pending + r.in_flight);
  const done = await ask({
    title: t("stop.title", { id: r.campaign }),
    body: [el("p", t("stop.body", { pending: left }), "big")],
    ok: t("stop.ok"),
    danger: true,
    action: () => postJson(campaignPath("/stop")),
  });
  if (done) notice(t("stop.done", { id: done.id, status: label("status.", done.status) }), "good");
}

async function raiseQuota() {
  const roles = Object.entries(view.report.by_role);
  const choice = document.createElement("select");
  for (const [role, entry] of roles) {
    const option = el("option", role + " — " + t("quota.current", {
      quota: entry.quota ? num(entry.quota) : t("quota.none"), available: num(entry.available),
    }));
    option.value = role;
    choice.append(option);
  }
  const amount = document.createElement("input");
  amount.type = "number";
  amount.min = "1";
  amount.max = "100000";
  amount.required = true;
  const suggest = () => {
    const entry = view.report.by_role[choice.value] || {};
    amount.value = String((entry.quota || entry.available || 0) + 1);
  };
  choice.addEventListener("change", suggest);
  suggest();
  const done = await ask({
    title: t("quota.title", { id: view.report.campaign }),
    body: [field(t("people.role"), choice), field(t("quota.new"), amount)],
    ok: t("quota.ok"),
    action: () => postJson(campaignPath("/quota"),
                           { role: choice.value, quota: Number(amount.value) }),
  });
  if (done) {
    const old = done.old === null ? t("quota.none") : num(done.old);
    notice(t("quota.done", { role: done.role, old, quota: num(done.quota) }), "good");
  }
}

async function extendCampaign() {
  let options;
  try {
    options = await getJson(campaignPath("/extensions"));
  } catch (err) {
    notice(errorText(err), "bad");
    return;
  }
  const body = [];
  const next = options.groups[0];
  const useNext = document.createElement("input");
  useNext.type = "radio";
  useNext.name = "extend-how";
  useNext.id = "extend-next";
  const useChosen = document.createElement("input");
  useChosen.type = "radio";
  useChosen.name = "extend-how";
  useChosen.id = "extend-chosen";
  if (next) {
    const text = t("extend.next", { name: next.name || t("extend.group"),
                                    targets: [...next.roles, ...next.units].join(", "),
                                    n: num(next.new) });
    const line = el("p", null, "choice");
    const caption = el("label", text);
    caption.htmlFor = "extend-next";
    useNext.checked = true;
    line.append(useNext, " ", caption);
    body.push(line);
  } else {
    body.push(el("p", t("extend.no_group")));
    useChosen.checked = true;
  }
  const line = el("p", null, "choice");
  const caption = el("label", t("extend.chosen"));
  caption.htmlFor = "extend-chosen";
  line.append(useChosen, " ", caption);
  body.push(line);
  const roles = el("fieldset");
  roles.append(el("legend", t("extend.roles")));
  for (const [role, count] of Object.entries(options.roles)) {
    roles.append(checkbox(role + " (" + num(count) + ")", role, "extend-role"));
  }
  const units = el("fieldset");
  units.append(el("legend", t("extend.units")));
  for (const [unit, count] of Object.entries(options.units)) {
    units.append(checkbox(unit + " (" + num(count) + ")", unit, "extend-unit"));
  }
  body.push(roles, units);
  const checked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)]
    .map((box) => box.value);
  const done = await ask({
    title: t("extend.title", { id: view.report.campaign }),
    body,
    ok: t("extend.ok"),
    action: () => {
      if (useNext.checked) return postJson(campaignPath("/extend"), {});
      const chosen = { roles: checked("extend-role"), units: checked("extend-unit") };
      if (!chosen.roles.length && !chosen.units.length) throw new Error(t("extend.pick"));
      return postJson(campaignPath("/extend"), chosen);
    },
  });
  if (done) notice(t("extend.done", { n: num(done.added), count: done.added, group: done.group }), "good");
}

// -- starting a scenario -------------------------------------------------------------------

async function loadScenarios() {
  let items;
  try {
    items = (await getJson("/api/scenarios")).items;
  } catch (err) {
    notice(errorText(err), "bad");
    return;
  }
  const box = $("scenarios");
  box.replaceChildren();
  $("no-scenario").hidden = items.length > 0;
  for (const s of items) {
    const button = el("button", null, "scenario");
    button.type = "button";
    button.dataset.scenario = s.key;
    button.append(el("span", s.key, "scenario-key"), el("span", s.labels[view.language] || s.name, "name"),
                  el("span", t("start.targets", { n: num(s.targets), count: s.targets }), "targets"));
    button.addEventListener("click", () => preview(s.key));
    box.append(button);
  }
}

async function preview(key) {
  try {
    view.scenario = await getJson("/api/scenarios/" + encodeURIComponent(key));
  } catch (err) {
    notice(errorText(err), "bad");
    return;
  }
  $("preview-drill").checked = true; // a drill unless the operator says otherwise
  drawPreview(view.scenario);
  $("preview").hidden = false;
  $("preview-title").focus();
}

function drawPreview(s) {
  $("preview-title").tabIndex = -1;
  $("preview-title").textContent = t("preview.title", { key: s.key,
                                                        name: s.labels[view.language] || s.name });
  $("preview-targets").textContent = t("preview.targets", { n: num(s.targets), count: s.targets,
                                                            on_call: num(s.on_call) });
  const e = s.estimate;
  $("preview-eta").textContent = t("preview.eta", { minutes: num(e.total_minutes),
                                                    lines: num(e.lines) });
  const warnings = $("preview-warnings");
  warnings.replaceChildren(...e.warnings.map((w) => el("li", w)));
  const roles = $("preview-roles");
  roles.replaceChildren();
  for (const [role, count] of Object.entries(s.by_role)) {
    const quota = s.quotas[role];
    roles.append(row([role, [num(count), "n"], [quota ? num(quota) : t("preview.everyone"), "n"]]));
  }
  const units = $("preview-units");
  units.replaceChildren();
  for (const [unit, count] of Object.entries(s.by_unit)) units.append(row([unit, [num(count), "n"]]));
  $("preview-groups").replaceChildren(...(s.groups.length ? s.groups.map((g) =>
    el("li", t("preview.group", { name: g.name || t("extend.group"),
                                  targets: [...g.roles, ...g.units].join(", "),
                                  n: num(g.new) })))
    : [el("li", t("preview.no_group"))]));
  const messages = $("preview-messages");
  messages.replaceChildren();
  for (const [language, text] of Object.entries(s.messages)) {
    const block = el("div", null, "message");
    const heading = el("p", label("language.", language), "language");
    const quote = el("blockquote", text);
    quote.lang = language;
    const play = el("button", t("preview.play"));
    play.type = "button";
    play.dataset.play = language;
    play.addEventListener("click", () => playMessage(s.key, language, play));
    block.append(heading, quote, play);
    messages.append(block);
  }
}

async function playMessage(key, language, button) {
  button.disabled = true;
  const before = button.textContent;
  button.textContent = t("preview.rendering");
  try {
    const path = "/api/scenarios/" + encodeURIComponent(key) + "/audio?language=" + language;
    const response = await api(path, { accept: "audio/wav" });
    if (view.audioUrl) URL.revokeObjectURL(view.audioUrl);
    view.audioUrl = URL.createObjectURL(await response.blob());
    const audio = $("preview-audio");
    audio.src = view.audioUrl;
    audio.hidden = false;
    await audio.play().catch(() => {});
  } catch (err) {
    notice(t("preview.no_audio", { reason: errorText(err) }), "bad");
  } finally {
    button.disabled = false;
    button.textContent = before;
  }
}

async function startScenario() {
  const s = view.scenario;
  const drill = $("preview-drill").checked;
  const banner = el("p", t(drill ? "confirm.drill" : "confirm.real"), drill ? "drill" : "real");
  const report = await ask({
    title: t("confirm.title", { name: s.labels[view.language] || s.name }),
    body: [banner, el("p", t("confirm.body", { n: num(s.targets), count: s.targets }), "big")],
    ok: t(drill ? "confirm.ok_drill" : "confirm.ok_real"),
    danger: !drill,
    action: () => postJson("/api/scenarios/" + encodeURIComponent(s.key) + "/start", { drill }),
  });
  if (!report) return;
  view.scenario = null;
  $("preview").hidden = true;
  await started(report);
}

// A campaign just started, from a scenario or the free form: follow it.
async function started(report) {
  notice(t("start.done", { id: report.campaign, n: num(report.total),
                        count: report.total }), "good");
  showTab("campaigns");
  await refreshCampaigns();
  select(String(report.campaign));
}

// -- a free campaign: everything `ivr campaign start` can do ------------------------------

async function loadFreeForm() {
  let roster;
  try {
    roster = await getJson("/api/roster/summary");
  } catch (err) {
    notice(errorText(err), "bad");
    return;
  }
  const fill = (id, counts, name) => {
    const box = $(id);
    box.replaceChildren(box.querySelector("legend"));
    for (const [value, count] of Object.entries(counts)) {
      box.append(checkbox(value + " (" + num(count) + ")", value, name));
    }
  };
  fill("free-roles", roster.roles, "free-role");
  fill("free-units", roster.units, "free-unit");
  const quotas = $("free-quotas");
  quotas.replaceChildren(quotas.querySelector("legend"));
  for (const role of Object.keys(roster.roles)) {
    const input = document.createElement("input");
    input.type = "number";
    input.min = "1";
    input.max = "100000";
    input.dataset.role = role;
    input.id = "free-quota-" + role;
    input.placeholder = t("preview.everyone");
    quotas.append(field(role, input));
  }
}

function freeCampaign() {
  const value = (id) => $(id).value.trim();
  const checked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)]
    .map((box) => box.value);
  const body = { messages: { fr: value("free-message-fr") } };
  if (value("free-message-en")) body.messages.en = value("free-message-en");
  if (value("free-name")) body.name = value("free-name");
  const roles = checked("free-role");
  const units = checked("free-unit");
  if (roles.length) body.roles = roles;
  if (units.length) body.units = units;
  const quotas = {};
  for (const input of document.querySelectorAll("#free-quotas input")) {
    if (input.value) quotas[input.dataset.role] = Number(input.value);
  }
  if (Object.keys(quotas).length) body.quotas = quotas;
  for (const [key, id] of [["attempts", "free-attempts"], ["retry_delay", "free-retry"],
                           ["ring_timeout", "free-ring"]]) {
    if (value(id)) body[key] = Number(value(id));
  }
  if (value("free-callback")) body.callback_number = value("free-callback");
  body.escalate = $("free-escalate").checked;
  body.amd = $("free-amd").checked;
  body.ask_eta = $("free-eta").checked;
  body.drill = $("free-drill").checked;
  return body;
}

async function estimateFree() {
  const body = freeCampaign();
  delete body.drill;
  try {
    const got = await postJson("/api/campaigns/estimate", body);
    $("free-estimate").textContent = t("free.estimated", {
      n: num(got.targets), count: got.targets, minutes: num(got.total_minutes),
      lines: num(got.lines),
    }) + (got.warnings.length ? " " + got.warnings.join(" ") : "");
    return got;
  } catch (err) {
    $("free-estimate").textContent = errorText(err);
    return null;
  }
}

async function startFree(e) {
  e.preventDefault();
  const estimate = await estimateFree();
  if (!estimate) return;
  const body = freeCampaign();
  const banner = el("p", t(body.drill ? "confirm.drill" : "confirm.real"),
                    body.drill ? "drill" : "real");
  const report = await ask({
    title: t("confirm.title", { name: body.name || t("free.heading") }),
    body: [banner, el("p", t("confirm.body", { n: num(estimate.targets), count: estimate.targets }),
                      "big"),
           el("blockquote", body.messages.fr)],
    ok: t(body.drill ? "confirm.ok_drill" : "confirm.ok_real"),
    danger: !body.drill,
    action: () => postJson("/api/campaigns", body),
  });
  if (report) await started(report);
}

// -- roster and access ---------------------------------------------------------------------

function loadAdmin() {
  loadRoster();
  loadPins();
  loadTokens();
  loadAudit(true);
}

async function loadRoster() {
  try {
    const page = await getJson("/api/roster?limit=1");
    $("roster-current").textContent = page.version
      ? t("roster.current", { n: num(page.total), version: page.version }) : t("roster.empty");
  } catch (err) {
    $("roster-current").textContent = errorText(err);
  }
}

async function checkRoster() {
  const file = $("roster-file").files[0];
  const result = $("roster-result");
  const problems = $("roster-problems");
  $("roster-import").hidden = true;
  problems.hidden = true;
  view.roster = null;
  if (!file) {
    result.textContent = t("roster.no_file");
    return;
  }
  const data = await file.arrayBuffer();
  try {
    const response = await api("/api/roster/check", { method: "POST", body: data,
                                                      contentType: "text/csv" });
    const got = await response.json();
    view.roster = data;
    const roles = Object.entries(got.roles).map(([r, n]) => r + " " + num(n)).join(", ");
    result.className = "good";
    result.textContent = t("roster.good", { n: num(got.count), roles, added: num(got.added),
                                            removed: num(got.removed) });
    $("roster-import").hidden = false;
  } catch (err) {
    result.className = "bad";
    if (err instanceof ApiError && err.body.error === "roster_error") {
      const lines = err.body.problems || [];
      result.textContent = t("roster.bad", { n: num(lines.length) }) + " " + err.body.message;
      problems.tBodies[0].replaceChildren(...lines.map((p) => row([[p.line, "n"], p.reason])));
      problems.hidden = lines.length === 0;
    } else {
      result.textContent = errorText(err);
    }
  }
}

async function importRoster() {
  const data = view.roster;
  if (!data) return;
  const done = await ask({
    title: t("roster.confirm_title"),
    body: [el("p", t("roster.confirm_body"), "big")],
    ok: t("roster.import"),
    danger: true,
    action: async () => (await api("/api/roster", { method: "POST", body: data,
                                                    contentType: "text/csv" })).json(),
  });
  if (!done) return;
  view.roster = null;
  $("roster-import").hidden = true;
  $("roster-result").textContent = t("roster.imported", { n: num(done.count) });
  loadRoster();
  loadPins();
}

async function loadPins() {
  try {
    const got = await getJson("/api/pins");
    $("pins-summary").textContent = t("pins.summary", { n: num(got.items.length), count: got.items.length,
                                                        roster: num(got.roster) });
    $("pins").replaceChildren(...got.items.map((p) => row([
      p.id, p.in_roster ? p.name : t("pins.not_in_roster"), p.role, p.unit,
    ])));
  } catch (err) {
    $("pins-summary").textContent = errorText(err);
  }
}

async function loadTokens() {
  let items;
  try {
    items = (await getJson("/api/tokens")).items;
  } catch (err) {
    notice(errorText(err), "bad");
    return;
  }
  $("tokens").replaceChildren(...items.map((token) => {
    const revoke = el("button", t("tokens.revoke"), "danger");
    revoke.type = "button";
    revoke.dataset.token = token.name;
    revoke.addEventListener("click", () => revokeToken(token.name));
    return row([token.name, label("role.", token.role), when(token.created_at), revoke]);
  }));
}

async function createToken(e) {
  e.preventDefault();
  $("token-new").hidden = true;
  try {
    const made = await postJson("/api/tokens", { name: $("token-name").value.trim(),
                                                 role: $("token-role").value });
    $("token-value").textContent = made.token;
    $("token-new").hidden = false;
    $("token-name").value = "";
    notice(t("tokens.made", { name: made.name, role: label("role.", made.role) }), "good");
    loadTokens();
  } catch (err) {
    notice(errorText(err), "bad");
  }
}

async function revokeToken(name) {
  const own = name === view.name;
  const done = await ask({
    title: t("tokens.revoke_title", { name }),
    body: [el("p", t(own ? "tokens.revoke_own" : "tokens.revoke_body"), "big")],
    ok: t("tokens.revoke"),
    danger: true,
    action: () => postJson("/api/tokens/" + encodeURIComponent(name), undefined, "DELETE"),
  });
  if (!done) return;
  notice(t("tokens.revoked", { name }), "good");
  if (own) logout(t("tokens.revoked", { name }));
  else loadTokens();
}

function fillAuditActions() {
  const choice = $("audit-action");
  const chosen = choice.value;
  for (const option of [...choice.options].slice(1)) option.remove();
  for (const action of AUDIT_ACTIONS) {
    const option = el("option", label("action.", action));
    option.value = action;
    choice.append(option);
  }
  choice.value = chosen;
}

async function loadAudit(fresh) {
  const query = new URLSearchParams({ limit: "50" });
  for (const [name, id] of [["action", "audit-action"], ["who", "audit-who"],
                            ["target", "audit-target"]]) {
    const value = $(id).value.trim();
    if (value) query.set(name, value);
  }
  if (!fresh && view.auditCursor) query.set("before", view.auditCursor);
  let page;
  try {
    page = await getJson("/api/audit?" + query);
  } catch (err) {
    notice(errorText(err), "bad");
    return;
  }
  const body = $("audit");
  if (fresh) body.replaceChildren();
  for (const entry of page.items) {
    const tr = row([when(entry.at), entry.who, label("action.", entry.action), entry.target,
                    [JSON.stringify(entry.details), "details"]]);
    tr.dataset.action = entry.action;
    body.append(tr);
  }
  view.auditCursor = page.next;
  $("audit-more").hidden = !page.next;
}

// -- the platform: sites and their workers, Redis, the Sentinels --------------------------

// Read every POLL_MS while the screen is shown (the campaign stream does not carry it).
async function refreshCluster() {
  if (!view.token || view.tab !== "cluster") return;
  try {
    view.cluster = await getJson("/api/cluster");
    view.clusterAt = Date.now();
    view.clusterError = null;
  } catch (err) {
    view.clusterError = errorText(err);
  }
  drawCluster();
}

const STATE_CLASS = { ok: "good", warning: "warn", critical: "bad", unknown: "unknown" };

// How long ago, in the unit read at a glance.
function ago(seconds) {
  if (seconds < 120) return t("cluster.ago_s", { n: num(Math.round(seconds)) });
  if (seconds < 7200) return t("cluster.ago_min", { n: num(Math.floor(seconds / 60)) });
  return t("cluster.ago_h", { n: num(Math.floor(seconds / 3600)) });
}

function drawCluster() {
  const c = view.cluster;
  if (!view.catalogue || (!c && !view.clusterError)) return;
  const state = $("cluster-state");
  if (view.clusterError) {
    state.className = "cluster-state bad";
    state.textContent = t("cluster.failed", { reason: view.clusterError });
  }
  if (!c) return;
  if (!view.clusterError) {
    state.className = "cluster-state " + (STATE_CLASS[c.status] || "unknown");
    state.textContent = t("cluster.state", { state: label("health.", c.status) });
  }
  $("cluster-checks").replaceChildren(...c.checks.map((check) => {
    const item = el("li", t("cluster.check", { name: label("check.", check.name),
                                               state: label("health.", check.state),
                                               summary: check.summary }),
                    STATE_CLASS[check.state]);
    item.dataset.check = check.name;
    return item;
  }));
  $("cluster-updated").textContent = t("cluster.updated", {
    time: new Intl.DateTimeFormat(t("locale"), { timeStyle: "medium" })
      .format(new Date(view.clusterAt)),
  });
  drawSites(c.sites);
  drawRedis(c);
}

function drawSites(sites) {
  const names = Object.keys(sites).sort();
  $("cluster-no-worker").hidden = names.length > 0;
  $("cluster-sites").replaceChildren(...names.map((site) => {
    const workers = sites[site];
    const box = el("div", null, "site");
    box.dataset.site = site;
    const table = el("table");
    const head = ["cluster.worker", "cluster.channels", "cluster.ami", "cluster.heard",
                  "cluster.worker_state"];
    const tr = document.createElement("tr");
    tr.append(...head.map((key) => el("th", t(key), key === "cluster.channels" ? "n" : "")));
    table.createTHead().append(tr);
    const body = table.createTBody();
    for (const w of workers) {
      const code = w.silent ? "silent" : w.ami_up ? "working" : "no_ami";
      const line = row([w.worker,
                        [t("cluster.in_use", { in_flight: num(w.in_flight),
                                               capacity: num(w.capacity) }), "n"],
                        label("pbx.", w.ami_up ? "up" : "down"), ago(w.heard_s_ago),
                        [label("wstate.", code), code === "working" ? "good" : "bad"]]);
      line.dataset.worker = w.worker;
      line.classList.toggle("silent", w.silent);
      body.append(line);
    }
    box.append(el("h4", t("cluster.site", { site, n: num(workers.length),
                                            count: workers.length })), table);
    return box;
  }));
}

function drawRedis(c) {
  const redis = c.redis;
  const role = label("redisrole.", redis.role);
  $("cluster-primary").textContent = redis.primary
    ? t("cluster.primary", { address: redis.primary, role, where: c.where })
    : t("cluster.single", { role, where: c.where });
  $("cluster-no-replica").hidden = redis.replicas.length > 0;
  $("cluster-replica-table").hidden = redis.replicas.length === 0;
  $("cluster-replicas").replaceChildren(...redis.replicas.map((r) => row([
    r.address, label("replica.", r.state),
    [t("cluster.seconds", { n: num(r.lag_s) }), "n"],
    [t("cluster.bytes", { n: num(r.bytes_behind) }), "n"],
  ])));
  $("cluster-no-sentinel").hidden = c.sentinel !== null;
  $("cluster-sentinel-table").hidden = c.sentinel === null;
  const sentinels = c.sentinel ? c.sentinel.sentinels : [];
  $("cluster-sentinels").replaceChildren(...sentinels.map((s) => {
    let line;
    if (s.error) {
      line = row([s.sentinel, null, [null, "n"], [null, "n"],
                  [t("cluster.sentinel_error", { reason: s.error }), "bad"]]);
    } else {
      const code = s.down ? "down" : s.primary === redis.primary ? "agrees" : "other";
      line = row([s.sentinel, s.primary, [num(s.replicas), "n"], [num(s.sentinels), "n"],
                  [label("sview.", code), { agrees: "good", other: "warn" }[code] || "bad"]]);
    }
    line.dataset.sentinel = s.sentinel;
    return line;
  }));
}

// -- start ---------------------------------------------------------------------------------

async function start() {
  view.catalogue = await (await fetch("/console-catalogue.json")).json();
  view.language = chooseLanguage();
  translate();
  const wanted = takeFragment();
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    login($("token").value.trim());
  });
  $("logout").addEventListener("click", () => logout(""));
  for (const button of document.querySelectorAll("[data-language]")) {
    if (button.dataset.language) {
      button.addEventListener("click", () => setLanguage(button.dataset.language));
    }
  }
  for (const button of document.querySelectorAll("#tabs .tab")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  $("open-report").addEventListener("click", openReport);
  $("download-csv").addEventListener("click", downloadCsv);
  $("action-stop").addEventListener("click", stopCampaign);
  $("action-quota").addEventListener("click", raiseQuota);
  $("action-extend").addEventListener("click", extendCampaign);
  $("preview-start").addEventListener("click", startScenario);
  $("preview-cancel").addEventListener("click", () => {
    view.scenario = null;
    $("preview").hidden = true;
  });
  $("free-estimate-button").addEventListener("click", estimateFree);
  $("free-form").addEventListener("submit", startFree);
  $("roster-check").addEventListener("click", checkRoster);
  $("roster-import").addEventListener("click", importRoster);
  $("token-form").addEventListener("submit", createToken);
  $("audit-form").addEventListener("submit", (e) => {
    e.preventDefault();
    loadAudit(true);
  });
  $("audit-more").addEventListener("click", () => loadAudit(false));
  refreshHealth();
  setInterval(refreshHealth, POLL_MS);
  setInterval(refreshCampaigns, POLL_MS);
  setInterval(refreshCluster, POLL_MS);
  setInterval(draw, POLL_MS); // the curve's time axis moves on while nothing happens
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    logout("");
    return;
  }
  await login(token, wanted);
}

start();
