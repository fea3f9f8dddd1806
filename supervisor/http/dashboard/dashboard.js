// superd's dashboard: the processes (from /api/status), kept live by the
// event stream (/api/events, Server-Sent Events), actions as POSTs, and a
// live view of one process's output (/api/output/NAME).
"use strict";

const MAX_OUTPUT_LINES = 2000;
const MAX_EVENTS = 200;
const RECONNECT_MS = 2000;
const COLUMNS = [
  ["name", "Name"], ["state", "State"], ["pid", "PID"], ["uptime", "Uptime"], ["health", "Health"],
  ["restarts", "Restarts"], ["description", "Description"], ["actions", ""],
];

// The API's address: relative to this page (superd may sit behind a proxy's
// path), without the credentials a user may have typed into the address bar
// (fetch refuses URLs that carry them; the browser sends them anyway).
const base = new URL(".", location.href);
base.username = "";
base.password = "";
const api = (path) => new URL("api/" + path, base).href;

const $ = (id) => document.getElementById(id);
const rows = new Map();     // process name -> {row, cells, info, fetched}
const groups = new Map();   // group name -> {section, tbody}
let refreshing = null;
let refreshAgain = false;
let refreshTimer = null;
let output = null;          // {name, stream, controller}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function showMessage(text, kind = "info") {
  const box = el("div", {class: "message " + kind, role: kind === "error" ? "alert" : "status"});
  box.append(el("span", {}, text));
  const close = el("button", {type: "button", "aria-label": "dismiss"}, "×");
  close.addEventListener("click", () => box.remove());
  box.append(close);
  $("messages").prepend(box);
  if (kind !== "error") setTimeout(() => box.remove(), 8000);
  while ($("messages").children.length > 8) $("messages").lastChild.remove();
}

async function errorOf(response) {
  const text = await response.text();
  try { return JSON.parse(text).error || text; } catch (e) { return text.trim() || response.statusText; }
}

// ---------------------------------------------------------------- status

function formatUptime(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
  const m = Math.floor(s % 3600 / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function groupOf(name) {
  let group = groups.get(name);
  if (group) return group;
  const section = el("section", {class: "group", "data-group": name});
  const header = el("header");
  header.append(el("h2", {}, name));
  const buttons = el("div", {class: "buttons", role: "group", "aria-label": "group " + name});
  for (const action of ["start", "stop", "restart"]) {
    buttons.append(el("button", {type: "button", "data-action": action, "data-name": name + ":*"},
                      action[0].toUpperCase() + action.slice(1) + " group"));
  }
  header.append(buttons);
  const table = el("table");
  const head = el("tr");
  for (const [key, label] of COLUMNS) head.append(el("th", {scope: "col", class: key}, label));
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  section.append(header, table);
  group = {section, tbody: table.tBodies[0], buttons};
  groups.set(name, group);
  return group;
}

function rowOf(info) {
  let entry = rows.get(info.name);
  if (entry) return entry;
  const row = el("tr", {"data-name": info.name});
  const cells = {};
  for (const [key, label] of COLUMNS) {
    cells[key] = el("td", {class: key, "data-label": label});
    row.append(cells[key]);
  }
  for (const action of ["start", "stop", "restart"]) {
    cells.actions.append(el("button", {type: "button", "data-action": action, "data-name": info.name},
                            action[0].toUpperCase() + action.slice(1)));
  }
  cells.actions.append(el("button", {type: "button", "data-action": "output", "data-name": info.name}, "Output"));
  cells.name.textContent = info.name;
  entry = {row, cells, info, fetched: 0};
  rows.set(info.name, entry);
  return entry;
}

function showState(entry, state) {
  entry.cells.state.textContent = state;
  entry.cells.state.className = "state state-" + state;
}

function fill(entry, info) {
  entry.info = info;
  entry.fetched = performance.now();
  showState(entry, info.state);
  entry.cells.pid.textContent = info.pid === null ? "–" : String(info.pid);
  entry.cells.pid.className = "pid num";
  entry.cells.uptime.className = "uptime num";
  entry.cells.health.textContent = info.health === null ? "–" : info.health;
  entry.cells.health.className = "health" + (info.health ? " health-" + info.health : "");
  entry.cells.restarts.textContent = String(info.restarts);
  entry.cells.restarts.className = "restarts num";
  entry.cells.description.textContent = info.description || "";
  tickUptime(entry);
}

function tickUptime(entry) {
  const up = entry.info.uptime;
  const now = up === null || up === undefined ? null : up + (performance.now() - entry.fetched) / 1000;
  entry.cells.uptime.textContent = formatUptime(now);
}

function render(status) {
  $("host").textContent = "on " + status.superd.host;
  $("daemon").textContent = status.superd.state;
  document.title = `superd on ${status.superd.host}`;
  const seen = new Set(), seenGroups = new Set();
  const container = $("processes");
  container.querySelector(".empty")?.remove();
  for (const info of status.processes) {
    const group = groupOf(info.group);
    const entry = rowOf(info);
    fill(entry, info);
    if (!seenGroups.has(info.group)) container.append(group.section);  // in the order superd lists them
    group.tbody.append(entry.row);
    seen.add(info.name);
    seenGroups.add(info.group);
  }
  for (const [name, entry] of rows) if (!seen.has(name)) { entry.row.remove(); rows.delete(name); }
  for (const [name, group] of groups) if (!seenGroups.has(name)) { group.section.remove(); groups.delete(name); }
  for (const [name, group] of groups) {
    // A group of one process named after it needs no group buttons of its own.
    const single = group.tbody.rows.length === 1 && group.tbody.rows[0].dataset.name === name;
    group.buttons.hidden = single;
  }
  if (!status.processes.length) container.replaceChildren(el("p", {class: "empty"}, "No processes."));
}

async function refresh() {
  if (refreshing) { refreshAgain = true; return refreshing; }
  refreshing = (async () => {
    try {
      const response = await fetch(api("status"), {cache: "no-store"});
      if (!response.ok) showMessage("status: " + await errorOf(response), "error");
      else render(await response.json());
    } catch (e) {
      showMessage("status: " + e.message, "error");
    }
  })();
  await refreshing;
  refreshing = null;
  if (refreshAgain) { refreshAgain = false; await refresh(); }
}

function refreshSoon() {
  if (refreshTimer === null) refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 100);
}

// ---------------------------------------------------------------- actions

async function act(action, name, button) {
  const everything = name === "all";
  if (everything && action !== "start" && !confirm(`${action[0].toUpperCase() + action.slice(1)} every process?`)) {
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch(api(action + "/" + encodeURIComponent(name)),
                                 {method: "POST", headers: {"X-Superd-Request": "1"}});
    if (!response.ok) {
      showMessage(`${action} ${name}: ${await errorOf(response)}`, "error");
    } else {
      for (const result of (await response.json()).results) {
        showMessage(`${result.name}: ${result.message}`, result.ok ? "info" : "error");
      }
    }
  } catch (e) {
    showMessage(`${action} ${name}: ${e.message}`, "error");
  } finally {
    button.disabled = false;
    refreshSoon();
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const {action, name} = button.dataset;
  if (action === "output") openOutput(name, "stdout");
  else act(action, name, button);
});

// ---------------------------------------------------------------- Server-Sent Events

// Read an SSE stream with fetch (unlike EventSource, it shows why a stream
// was refused): onEvent(type, data) for each event, until the stream ends.
async function followStream(url, signal, onOpen, onEvent) {
  const response = await fetch(url, {signal, cache: "no-store", headers: {Accept: "text/event-stream"}});
  if (!response.ok) throw new Error(await errorOf(response));
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        else if (line.startsWith("event:")) type = line.slice(6).trim();
      }
      if (data.length) onEvent(type, data.join("\n"));
    }
  }
}

// ---------------------------------------------------------------- output

function appendOutput(text, notice) {
  const pre = $("output-lines");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  if (notice) pre.append(el("span", {class: "notice"}, text + "\n"));
  else pre.append(document.createTextNode(text + "\n"));
  while (pre.childNodes.length > MAX_OUTPUT_LINES) pre.firstChild.remove();
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function closeOutput() {
  if (output) output.controller.abort();
  output = null;
  $("output").hidden = true;
}

async function openOutput(name, stream) {
  closeOutput();
  const controller = new AbortController();
  output = {name, stream, controller};
  $("output").hidden = false;
  $("output-name").textContent = name;
  $("output-stream").value = stream;
  $("output-lines").replaceChildren();
  $("output").scrollIntoView({block: "nearest"});
  const url = api(`output/${encodeURIComponent(name)}?stream=${stream}`);
  try {
    await followStream(url, controller.signal, () => {}, (type, data) => appendOutput(data, type === "notice"));
    if (output && output.controller === controller) appendOutput("[the output stream ended]", true);
  } catch (e) {
    if (e.name !== "AbortError") {
      appendOutput(`[${e.message}]`, true);
      showMessage(`output of ${name}: ${e.message}`, "error");
    }
  }
}

$("output-close").addEventListener("click", closeOutput);
$("output-stream").addEventListener("change", (event) => {
  if (output) openOutput(output.name, event.target.value);
});

// ---------------------------------------------------------------- events

let lastSerial = null;

function describe(event) {
  if (event.type === "process") return `${event.name}: ${event.from_state} → ${event.to_state}`;
  if (event.type === "daemon") return `superd: ${event.to_state}`;
  if (event.type === "ready") return `${event.name}: ${event.ready ? "ready" : "not ready"}`;
  if (event.type === "health") return `${event.name}: ${event.health}`;
  return event.name ? `${event.type} ${event.name}` : event.type;
}

function onEvent(event) {
  if (typeof event.serial === "number" && event.type !== "dropped") lastSerial = event.serial;
  const item = el("li", {"data-type": event.type});
  const when = new Date(event.time * 1000);
  item.append(el("time", {datetime: when.toISOString()}, when.toLocaleTimeString()),
              el("span", {class: "kind"}, event.type), el("span", {class: "what"}, describe(event)));
  if (event.reason) item.append(el("span", {class: "reason"}, event.reason));
  const list = $("event-list");
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  const entry = event.name ? rows.get(event.name) : null;
  if (entry && event.type === "process" && event.to_state) showState(entry, event.to_state);
  if (["process", "ready", "health", "reload", "daemon"].includes(event.type)) refreshSoon();
}

function setLive(on, why) {
  const live = $("live");
  live.className = "live " + (on ? "on" : "off");
  live.textContent = on ? "live" : "reconnecting";
  live.title = why || "live updates from superd's event stream";
}

async function followEvents() {
  for (;;) {
    const query = lastSerial === null ? "" : `?after=${lastSerial}`;
    try {
      await followStream(api("events" + query), undefined, () => { setLive(true); refreshSoon(); },
                         (type, data) => onEvent(JSON.parse(data)));
      setLive(false, "the event stream ended");
    } catch (e) {
      setLive(false, e.message);
    }
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

$("events-clear").addEventListener("click", () => $("event-list").replaceChildren());
setInterval(() => { for (const entry of rows.values()) tickUptime(entry); }, 1000);
refresh();
followEvents();
