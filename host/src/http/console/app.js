// The rdev web console: every call goes to the gateway's own API with the key from this tab's
// session storage; live output comes over EventSource, which the gateway authenticates with the
// HttpOnly session cookie set at sign-in. Output is inserted as text, never as HTML.
"use strict";

const TOKEN = "rdev.token";
const ANSI = /\u001b\[[0-9;?]*[ -\/]*[@-~]|\u001b[@-_]/g;
const $ = (id) => document.getElementById(id);

let project = null;
let stream = null;
let current = null;

function token() {
  return sessionStorage.getItem(TOKEN);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    const id = error.request_id ? ` (request ${error.request_id})` : "";
    throw new Error(`${error.message || response.statusText}${id}`);
  }
  return data;
}

function cell(row, value) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "–" : String(value);
  row.appendChild(td);
}

function fill(table, items, columns, onClick) {
  const body = $(table).querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    for (const column of columns) cell(row, typeof column === "function" ? column(item) : item[column]);
    if (onClick) {
      row.classList.add("clickable");
      row.addEventListener("click", () => onClick(item));
    }
    body.appendChild(row);
  }
}

function show(view) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== view;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  showError("");
}

async function signIn(value) {
  sessionStorage.setItem(TOKEN, value);
  try {
    await api("GET", "/v1/projects");
    // The cookie only lets EventSource follow streams; the key stays in session storage.
    await fetch("/console/session", { method: "POST", headers: { authorization: `Bearer ${value}` } });
  } catch (e) {
    sessionStorage.removeItem(TOKEN);
    throw e;
  }
  enter();
}

async function signOut() {
  closeStream();
  await fetch("/console/session", { method: "DELETE" }).catch(() => {});
  sessionStorage.removeItem(TOKEN);
  $("nav").hidden = true;
  for (const section of document.querySelectorAll(".view")) section.hidden = true;
  $("signin").hidden = false;
  $("token").value = "";
}

function enter() {
  $("signin").hidden = true;
  $("nav").hidden = false;
  loadProjects().catch((e) => showError(e.message));
}

async function loadProjects() {
  show("projects");
  const { projects } = await api("GET", "/v1/projects");
  const list = $("project-list");
  list.replaceChildren();
  for (const p of projects) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = p.description ? `${p.name} — ${p.description}` : p.name;
    button.dataset.project = p.name;
    button.addEventListener("click", () => openProject(p.name));
    item.appendChild(button);
    list.appendChild(item);
  }
}

async function openProject(name) {
  project = name;
  show("project");
  $("project-name").textContent = name;
  await loadHistory();
}

async function loadHistory() {
  const { commands } = await api("GET", `/v1/projects/${encodeURIComponent(project)}/commands?limit=50`);
  fill("history", commands, ["id", "kind", "state", "exit_code", "created_at", "reason"], (c) => follow(c.id));
}

function body() {
  const kind = $("kind").value;
  const text = $("text").value;
  if (kind === "shell") return { kind, script: text };
  if (kind === "claude") return { kind, prompt: text };
  return { kind, args: text.split(/\s+/).filter(Boolean) };
}

async function run(event) {
  event.preventDefault();
  try {
    const command = await api("POST", `/v1/projects/${encodeURIComponent(project)}/commands`, body());
    follow(command.id);
    await loadHistory();
  } catch (e) {
    showError(e.message);
  }
}

function closeStream() {
  if (stream) stream.close();
  stream = null;
}

function setState(state, label) {
  $("command-state").textContent = label || state;
  $("cancel").hidden = ["succeeded", "failed", "cancelled", "timed_out", "interrupted"].includes(state);
}

function append(text, kind) {
  const span = document.createElement("span");
  if (kind === "stderr") span.className = "stderr";
  span.textContent = text.replace(ANSI, "");
  $("output").appendChild(span);
}

// Follows a command's output; after an error the stream is opened again after the last event
// seen, so nothing is shown twice or lost.
function follow(id, lastEventId) {
  closeStream();
  if (lastEventId === undefined) {
    current = { id, last: null };
    $("output").replaceChildren();
    $("current").hidden = false;
    $("command-id").textContent = id;
    setState("…");
  }
  const query = current.last === null ? "" : `?last_event_id=${encodeURIComponent(current.last)}`;
  const source = new EventSource(`/v1/commands/${encodeURIComponent(id)}/stream${query}`);
  stream = source;
  setState("running");
  source.addEventListener("output", (e) => {
    current.last = e.lastEventId;
    const chunk = JSON.parse(e.data);
    append(chunk.text, chunk.stream);
  });
  source.addEventListener("end", (e) => {
    const end = JSON.parse(e.data);
    setState(end.state, end.exit_code === null ? end.state : `${end.state} (exit ${end.exit_code})`);
    if (end.reason) append(`\n${end.reason}\n`, "stderr");
    closeStream();
    loadHistory().catch(() => {});
  });
  source.addEventListener("error", () => {
    if (stream !== source) return;
    source.close();
    setTimeout(() => {
      if (stream === source && current && current.id === id) follow(id, current.last);
    }, 1000);
  });
}

async function cancel() {
  if (!current) return;
  try {
    const command = await api("POST", `/v1/commands/${encodeURIComponent(current.id)}/cancel`);
    setState(command.state);
  } catch (e) {
    showError(e.message);
  }
}

async function loadPlugins() {
  show("plugins");
  const { plugins } = await api("GET", "/v1/plugins");
  const digest = (p) => (p.digest ? p.digest.slice(0, 12) : null);
  fill("plugin-table", plugins, ["name", "world", "state", digest, "calls", "denials", "traps", "last_error"]);
}

async function loadAudit(event) {
  if (event) event.preventDefault();
  show("audit");
  const query = new URLSearchParams({ limit: "100" });
  if ($("audit-action").value) query.set("action", $("audit-action").value);
  if ($("audit-since").value) query.set("since", $("audit-since").value);
  const { events } = await api("GET", `/v1/audit?${query}`);
  fill("audit-table", events, ["at", "action", "target", "outcome", "key_id"]);
}

function onKind() {
  const labels = { shell: "Script", git: "Arguments", claude: "Prompt" };
  $("text-label").firstChild.textContent = `${labels[$("kind").value]} `;
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token").value.trim()).catch((err) => showError(err.message));
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("run-form").addEventListener("submit", run);
  $("cancel").addEventListener("click", cancel);
  $("kind").addEventListener("change", onKind);
  $("audit-form").addEventListener("submit", (e) => loadAudit(e).catch((err) => showError(err.message)));
  const views = { projects: loadProjects, plugins: loadPlugins, audit: () => loadAudit() };
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => views[tab.dataset.view]().catch((e) => showError(e.message)));
  }
  if (token()) enter();
});
