// dqueue dashboard: plain JavaScript over the node's JSON API (docs/ui.md).
// Every value from the API is put in the page with textContent or attributes, never as HTML:
// task payloads, types and errors are untrusted.
"use strict";

const POLL_MS = 3000;
const TOKEN_KEY = "dqueue.token";
const STATUSES = ["pending", "leased", "completed", "dead", "cancelled"];
const COLORS = {pending: "#2458d3", leased: "#d97706", dead: "#b42318", completed: "#0f7b3f",
                cancelled: "#667085", enqueued: "#2458d3", acked: "#0f7b3f",
                dead_lettered: "#b42318"};
const $ = (id) => document.getElementById(id);

const state = {tab: "cluster", cursor: null, detailId: null, tokenWaiters: [], timer: null};

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
  }
}

// ------------------------------------------------------------------ API and token

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(method, path, body) {
  for (;;) {
    const headers = {"Accept": "application/json"};
    const tok = token();
    if (tok) headers["Authorization"] = "Bearer " + tok;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, {method, headers, cache: "no-store",
                                    body: body === undefined ? undefined : JSON.stringify(body)});
    let parsed = null;
    try { parsed = await resp.json(); } catch (e) { parsed = null; }
    if (resp.status === 401) {
      await askToken(new ApiError(401, parsed).message);
      continue;  // retry with the new token
    }
    if (!resp.ok) throw new ApiError(resp.status, parsed);
    return parsed;
  }
}

function askToken(reason) {
  return new Promise((resolve) => {
    state.tokenWaiters.push(resolve);
    const dialog = $("token-dialog");
    $("token-reason").textContent = reason || "";
    if (!dialog.open) {
      $("token-input").value = "";
      dialog.showModal();
      $("token-input").focus();
    }
  });
}

function saveToken() {
  const value = $("token-input").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token-dialog").close();
  const waiters = state.tokenWaiters.splice(0);
  waiters.forEach((resolve) => resolve());
}

// ------------------------------------------------------------------ DOM helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(value) { return value === null || value === undefined ? "–" : String(value); }

function fill(tbody, rows) { tbody.replaceChildren(...rows); }

function banner(text, ok) {
  const node = $("banner");
  node.textContent = text;
  node.className = ok ? "banner ok" : "banner";
  node.hidden = !text;
}

// ------------------------------------------------------------------ cluster

function showNode(health) {
  $("node-line").textContent = `node ${show(health.node_id)} · ${show(health.role)}` +
    (health.leader_id ? "" : " · no leader");
}

async function refreshCluster() {
  const [health, cluster] = await Promise.all([api("GET", "/health"), api("GET", "/cluster")]);
  showNode(health);
  $("c-node").textContent = show(health.node_id);
  $("c-leader").textContent = show(cluster.leader_id);
  $("c-term").textContent = show(cluster.term);
  $("c-commit").textContent = show(cluster.commit_index);
  $("c-applied").textContent = show(cluster.applied_index);
  const lag = Number.isInteger(cluster.commit_index) && Number.isInteger(cluster.applied_index)
    ? cluster.commit_index - cluster.applied_index : null;
  $("c-lag").textContent = show(lag);
  const rows = (cluster.members || []).map((m) => {
    const isLeader = m.id === cluster.leader_id;
    const role = el("td", {}, el("span", {class: isLeader ? "badge leader" : "badge"},
                                 isLeader ? "★ leader" : show(m.role)));
    return el("tr", {"data-member": String(m.id), class: isLeader ? "leader" : ""},
              el("td", {class: "id"}, show(m.id)), role,
              el("td", {class: "mono"}, show(m.raft_addr)),
              el("td", {class: "mono"}, show(m.http_addr)),
              el("td", {class: "num"}, show(m.match_index)),
              el("td", {class: "num"}, show(m.lag)));
  });
  fill($("members").tBodies[0], rows);
}

// ------------------------------------------------------------------ queues

async function refreshQueues() {
  const [stats, history, listed] = await Promise.all([
    api("GET", "/stats"), api("GET", "/stats/history"), api("GET", "/queues")]);
  const overview = overviewCard(stats.tasks || {}, stats.by_type || {}, history.samples || []);
  const queues = (listed.queues || []).map(queueCard);
  $("queue-list").replaceChildren(overview, el("h2", {}, `Queues (${queues.length})`), ...queues);
}

function countsTable(counts) {
  const row = el("tr", {}, ...STATUSES.map((s) =>
    el("td", {class: "num", "data-depth": s}, show(counts[s] || 0))));
  return el("div", {class: "scroll"}, el("table", {class: "depth"},
    el("thead", {}, el("tr", {}, ...STATUSES.map((s) => el("th", {class: "num"}, s)))),
    el("tbody", {}, row)));
}

// Every queue together: the counts of GET /stats, the charts of GET /stats/history.
function overviewCard(tasks, byTypeCounts, samples) {
  const typeRows = Object.entries(byTypeCounts).map(([type, counts]) =>
    el("tr", {"data-type": type}, el("td", {class: "mono"}, type),
       ...STATUSES.map((s) => el("td", {class: "num"}, show((counts || {})[s] || 0)))));
  const byType = el("table", {},
                    el("thead", {}, el("tr", {}, el("th", {}, "type"),
                                       ...STATUSES.map((s) => el("th", {class: "num"}, s)))),
                    el("tbody", {}, ...typeRows));
  const depthSeries = ["pending", "leased", "dead"].map((s) => ({
    name: s, points: samples.map((p) => [p.t_ms, (p.depth || {})[s] || 0])}));
  const rateSeries = ["enqueued", "acked", "dead_lettered"].map((s) => ({
    name: s, points: samples.map((p) => [p.t_ms, (p.rates || {})[s]])}));
  return el("div", {class: "queue", id: "overview"},
            el("h2", {}, "Every queue"),
            countsTable(tasks),
            el("div", {class: "charts"},
               chart("Depth, last 15 minutes", depthSeries, ""),
               chart("Rates per second, last 15 minutes", rateSeries, "/s")),
            el("h3", {}, "By type"),
            el("div", {class: "scroll"}, byType),
            el("p", {class: "muted"},
               `${samples.length} samples, one every few seconds, kept in memory by this node.`));
}

// One named queue (GET /queues): its counts and its settings.
function queueCard(q) {
  const settings = Object.entries(q.settings || {}).map(([key, value]) =>
    el("tr", {"data-setting": key}, el("th", {}, key),
       el("td", {class: "mono"}, value === null ? "node default" :
                                 typeof value === "object" ? JSON.stringify(value) : String(value))));
  return el("div", {class: "queue", "data-queue": String(q.name)},
            el("h2", {}, "Queue ", el("span", {class: "mono"}, show(q.name)),
               el("span", {class: "muted"}, ` · depth ${show(q.depth)}`)),
            countsTable(q.counts || {}),
            el("details", {}, el("summary", {}, "Settings"),
               el("table", {class: "fields"}, el("tbody", {}, ...settings))));
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function chart(title, series, unit) {
  // The node's clock, not the browser's: the right edge is the newest sample.
  const times = series.flatMap((s) => s.points.map(([t]) => t));
  const W = 400, H = 160, L = 48, B = 18;
  const now = times.length ? Math.max(...times) : Date.now(), from = now - 15 * 60 * 1000;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (v !== null && v > max) max = v;
  max = max > 0 ? max : 1;
  const x = (t) => L + (W - L - 4) * Math.max(0, t - from) / (now - from);
  const y = (v) => 4 + (H - B - 8) * (1 - v / max);
  const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title});
  root.append(svg("line", {x1: L, y1: H - B, x2: W, y2: H - B, stroke: "#d9dde5"}));
  root.append(svg("line", {x1: L, y1: 4, x2: L, y2: H - B, stroke: "#d9dde5"}));
  root.append(svg("text", {x: L - 4, y: 12, "text-anchor": "end", "font-size": 10,
                           fill: "#667085"}, formatNumber(max) + unit));
  root.append(svg("text", {x: L - 4, y: H - B, "text-anchor": "end", "font-size": 10,
                           fill: "#667085"}, "0"));
  root.append(svg("text", {x: L, y: H - 4, "font-size": 10, fill: "#667085"}, "-15 min"));
  root.append(svg("text", {x: W - 2, y: H - 4, "text-anchor": "end", "font-size": 10,
                           fill: "#667085"}, "now"));
  for (const s of series) {
    let d = "", pen = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined || t < from) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    }
    if (d) root.append(svg("path", {d, fill: "none", stroke: COLORS[s.name], "stroke-width": 2,
                                    "data-series": s.name}));
  }
  const last = (s) => { const p = s.points.filter(([, v]) => v !== null); return p.length ? p[p.length - 1][1] : null; };
  const legend = el("div", {class: "legend"}, ...series.map((s) => {
    const swatch = el("i");
    swatch.style.background = COLORS[s.name];
    return el("span", {}, swatch, `${s.name} ${show(last(s) === null ? null : formatNumber(last(s)))}`);
  }));
  const box = el("div", {class: "chart"}, el("h3", {}, title), legend);
  box.append(root);
  return box;
}

function formatNumber(v) { return Number.isInteger(v) ? String(v) : v.toFixed(2); }

// ------------------------------------------------------------------ tasks

function taskLink(task) {
  return el("button", {class: "link", type: "button", onclick: () => showTask(task.id)}, task.id);
}

async function listTasks(more) {
  const params = new URLSearchParams({status: $("t-status").value, limit: "50"});
  const type = $("t-type").value.trim();
  if (type) params.set("type", type);
  const queue = $("t-queue").value.trim();
  if (queue) params.set("queue", queue);
  if (more && state.cursor) params.set("cursor", state.cursor);
  const page = await api("GET", "/tasks?" + params);
  const rows = (page.tasks || []).map((t) => el("tr", {"data-task-id": t.id},
    el("td", {class: "id"}, taskLink(t)), el("td", {class: "mono"}, show(t.queue)),
    el("td", {class: "mono"}, show(t.type)), el("td", {}, show(t.status)), el("td", {class: "num"}, show(t.attempts)),
    el("td", {class: "num"}, show(t.priority)), el("td", {}, show(t.updated_at))));
  const body = $("tasks").tBodies[0];
  if (more) body.append(...rows); else fill(body, rows);
  state.cursor = page.next_cursor || null;
  $("t-more").hidden = !state.cursor;
}

async function showTask(id) {
  state.detailId = id;
  let task;
  try {
    task = await api("GET", "/tasks/" + encodeURIComponent(id));
  } catch (e) {
    if (e.status === 404) {
      state.detailId = null;
      $("task-detail").hidden = true;
      throw new Error(`No task ${id}.`);
    }
    throw e;
  }
  const lease = task.lease || null;
  const fields = [
    ["status", task.status], ["queue", task.queue], ["type", task.type], ["priority", task.priority],
    ["attempts", `${show(task.attempts)} (max_retries ${show(task.max_retries)})`],
    ["created", task.created_at], ["updated", task.updated_at], ["visible at", task.visible_at],
    ["lease", lease ? `${lease.worker_id ? "held by " + lease.worker_id + ", " : ""}expires ${show(lease.expires_at)}` : null],
    ["idempotency key", task.idempotency_key], ["last error", task.last_error],
  ];
  if ("result" in task) fields.push(["result", JSON.stringify(task.result)]);
  $("d-id").textContent = task.id;
  fill($("d-fields"), fields.map(([k, v]) => el("tr", {"data-field": k}, el("th", {}, k),
                                              el("td", {}, show(v)))));
  $("d-payload").textContent = JSON.stringify(task.payload, null, 2);
  $("task-detail").hidden = false;
}

async function refreshTasks() {
  if ($("tasks").tBodies[0].rows.length && !state.cursor) await listTasks(false);
  if (state.detailId) await showTask(state.detailId);
}

// ------------------------------------------------------------------ workers

async function refreshWorkers() {
  const listed = (await api("GET", "/workers")).workers || [];
  $("w-count").textContent = listed.length
    ? `${listed.length} worker${listed.length === 1 ? "" : "s"}, each dropped after 3 missed heartbeats`
    : "No worker sent a heartbeat within 3 of its intervals.";
  const names = (values) => (values && values.length ? values.join(", ") : "–");
  fill($("workers").tBodies[0], listed.map((w) => el("tr", {"data-worker": String(w.worker_id)},
    el("td", {class: "id"}, show(w.worker_id)), el("td", {}, show(w.host)),
    el("td", {class: "num"}, show(w.pid)), el("td", {}, show(w.transport)),
    el("td", {}, names(w.queues)), el("td", {}, names(w.types)),
    el("td", {class: "num"}, show(w.concurrency)), el("td", {class: "num"}, show(w.in_flight)),
    el("td", {class: "mono"}, show(w.started_at)),
    el("td", {class: "mono"}, show(w.last_heartbeat_at)))));
}

// ------------------------------------------------------------------ dead letters

async function refreshDlq() {
  const params = new URLSearchParams({status: "dead", limit: "1000"});
  const type = $("q-type").value.trim();
  if (type) params.set("type", type);
  const page = await api("GET", "/tasks?" + params);
  const tasks = page.tasks || [];
  $("q-count").textContent = `${tasks.length}${page.next_cursor ? "+" : ""} dead task(s)` +
    (type ? ` of type ${type}` : "");
  fill($("dead").tBodies[0], tasks.map((t) => el("tr", {"data-task-id": t.id},
    el("td", {class: "id"}, show(t.id)), el("td", {class: "mono"}, show(t.queue)),
    el("td", {class: "mono"}, show(t.type)),
    el("td", {class: "num"}, show(t.attempts)), el("td", {}, show(t.last_error)),
    el("td", {}, show(t.updated_at)),
    el("td", {}, el("button", {type: "button", class: "small redrive",
                               onclick: () => act(() => redrive({task_id: t.id}))}, "Redrive")))));
}

async function redrive(body) {
  const answer = await api("POST", "/dlq/redrive", body);
  banner(`Redriven: ${answer.redriven}.`, true);
}

function confirmPurge(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm-dialog");
    $("confirm-text").textContent = text;
    const done = (yes) => { dialog.close(); resolve(yes); };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
  });
}

async function purge() {
  const type = $("q-type").value.trim();
  const what = type ? `every dead task of type “${type}”` : "every dead task of every type";
  if (!await confirmPurge(`This deletes ${what} for good. It cannot be undone.`)) {
    banner("Nothing purged.", true);
    return;
  }
  const answer = await api("DELETE", "/dlq" + (type ? "?" + new URLSearchParams({type}) : ""));
  banner(`Purged: ${answer.purged}.`, true);
}

// ------------------------------------------------------------------ schedules

function scheduleWhen(s) {
  if (s.cron) return `cron ${s.cron} (${show(s.timezone)})`;
  return `every ${show(s.every_seconds)} s`;
}

async function refreshSchedules() {
  const listed = await api("GET", "/schedules");
  const schedules = listed.schedules || [];
  $("s-count").textContent = `${schedules.length} schedule(s)`;
  fill($("schedules").tBodies[0], schedules.map((s) => {
    const task = s.task || {};
    const paused = s.paused === true;
    const toggle = el("button", {type: "button", class: paused ? "small resume" : "small pause",
                                 onclick: () => act(() => pauseOrResume(s.name, paused))},
                      paused ? "Resume" : "Pause");
    return el("tr", {"data-schedule": String(s.name), class: paused ? "paused" : ""},
              el("td", {class: "mono"}, show(s.name)),
              el("td", {class: "mono"}, scheduleWhen(s)),
              el("td", {class: "mono"}, `${show(task.queue)} / ${show(task.type)}`),
              el("td", {"data-field": "next_slot"}, paused ? "paused" : show(s.next_slot)),
              el("td", {}, show(s.last_slot)),
              el("td", {class: "num", "data-field": "fired"}, show(s.fired)),
              el("td", {}, show(s.last_error)),
              el("td", {}, toggle));
  }));
}

async function pauseOrResume(name, paused) {
  const action = paused ? "resume" : "pause";
  await api("POST", `/schedules/${encodeURIComponent(name)}/${action}`);
  banner(`${paused ? "Resumed" : "Paused"}: ${name}.`, true);
}

// ------------------------------------------------------------------ tabs and polling

const REFRESH = {cluster: refreshCluster, queues: refreshQueues, tasks: refreshTasks,
                 dlq: refreshDlq, schedules: refreshSchedules, workers: refreshWorkers};

async function act(action) {
  try {
    await action();
    await refresh();
  } catch (e) {
    banner(e.message);
  }
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    if (state.tab !== "cluster") showNode(await api("GET", "/health"));
    await REFRESH[state.tab]();
    $("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
    if ($("banner").className === "banner") banner("");
  } catch (e) {
    banner(e.status === 403 ? e.message + " (use the Token button to change token)" : e.message);
  } finally {
    state.timer = setTimeout(() => { if (!document.hidden) refresh(); else schedule(); }, POLL_MS);
  }
}

function schedule() { state.timer = setTimeout(refresh, POLL_MS); }

function selectTab(tab) {
  if (!(tab in REFRESH)) tab = "cluster";
  state.tab = tab;
  for (const button of document.querySelectorAll(".tabs button")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  }
  for (const name of Object.keys(REFRESH)) $("view-" + name).hidden = name !== tab;
  banner("");
  refresh();
}

function start() {
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => { location.hash = button.dataset.tab; });
  }
  window.addEventListener("hashchange", () => selectTab(location.hash.slice(1)));
  $("token-button").addEventListener("click", () => askToken("Enter a token for this node.").then(refresh));
  $("token-save").addEventListener("click", saveToken);
  $("token-dialog").addEventListener("cancel", () => {  // Escape: wait for the Token button
    if (state.tokenWaiters.length) banner("This node needs a token: use the Token button.");
  });
  $("token-input").addEventListener("keydown", (e) => { if (e.key === "Enter") saveToken(); });
  $("token-clear").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); $("token-input").value = ""; });
  $("t-find").addEventListener("click", () => {
    const id = $("t-id").value.trim();
    if (id) act(() => showTask(id));
  });
  $("t-id").addEventListener("keydown", (e) => { if (e.key === "Enter") $("t-find").click(); });
  $("t-list").addEventListener("click", () => act(() => listTasks(false)));
  $("t-more").addEventListener("click", () => act(() => listTasks(true)));
  $("q-refresh").addEventListener("click", () => act(async () => {}));
  $("q-redrive-all").addEventListener("click", () => {
    const type = $("q-type").value.trim();
    act(() => redrive(type ? {type} : {}));
  });
  $("q-purge").addEventListener("click", () => act(purge));
  selectTab(location.hash.slice(1));
}

document.addEventListener("DOMContentLoaded", start);
