"use strict";
// The live page (live.html): the current notes, each change applied as it comes.
//
// The current notes: a snapshot (GET /snapshot: the notes and the seq it
// was read at), then every change after that seq, over a WebSocket (GET /ws)
// when the browser has one, else as Server-Sent Events (GET /events); both
// resume after ?last_event_id. Applying a change is idempotent (put or
// remove by id), so a change that the snapshot already shows does no harm.
// EventSource reconnects by itself and sends Last-Event-ID; when it gives up
// (closed), or the WebSocket closes, we start again after the last event we
// applied. A reset (the change log was reset, so our ids are ahead of the
// stream) makes the page start over from a fresh snapshot.
//
// Each of those requests carries a ticket (?ticket=): EventSource and
// WebSocket cannot send an Authorization header, and the key itself must
// not be in a URL. A ticket comes from POST /stream-tickets with the key,
// which the page asks for once and keeps in sessionStorage (this tab
// only); it is valid for a minute, so each connection gets a fresh one.
// A key that is refused (unknown, revoked, no read scope) is forgotten and
// asked for again.
const KEY_ITEM = "live-page-api-key";
const transport = "WebSocket" in window ? "websocket" : "sse";
const notes = new Map();
let lastId = null;
let source = null;
let retryDelay = 1000;

const $ = (id) => document.getElementById(id);

function setState(state, text) {
  $("state").dataset.state = state;
  $("state").textContent = text;
}

function summary() {
  const count = notes.size;
  const last = lastId === null ? "" : ` · last event #${lastId}`;
  const via = transport === "websocket" ? "WebSocket" : "SSE";
  $("summary").textContent = `${count} note${count === 1 ? "" : "s"}${last} · ${via}`;
  $("empty").hidden = count > 0;
}

function noteElement(note) {
  let item = document.querySelector(`#notes li[data-id="${note.id}"]`);
  if (!item) {
    item = document.createElement("li");
    item.className = "note";
    item.dataset.id = note.id;
    item.append(document.createElement("h2"), document.createElement("p"),
                document.createElement("small"));
    item.addEventListener("animationend", () => item.classList.remove("fresh"));
  }
  item.querySelector("h2").textContent = note.title;
  item.querySelector("p").textContent = note.body;
  item.querySelector("small").textContent = `updated ${note.updated_at}`;
  return item;
}

function render() {
  // Newest first, as GET /notes lists them.
  const list = $("notes");
  const sorted = [...notes.values()].sort(
    (a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
  for (const note of sorted) list.append(noteElement(note));
  summary();
}

function flash(id) {
  const item = document.querySelector(`#notes li[data-id="${id}"]`);
  if (!item) return;
  item.classList.remove("fresh");
  void item.offsetWidth;  // restart the animation
  item.classList.add("fresh");
}

function remove(id) {
  const item = document.querySelector(`#notes li[data-id="${id}"]`);
  if (!item) return;
  item.removeAttribute("data-id");
  item.classList.add("leaving");
  setTimeout(() => item.remove(), 300);
}

function log(event) {
  const note = event.new_val || event.old_val;
  const entry = document.createElement("li");
  const kind = document.createElement("b");
  kind.textContent = event.type.replace("note.", "");
  entry.append(kind, ` #${event.id} ${note ? note.title : ""}`);
  $("log").prepend(entry);
  while ($("log").children.length > 12) $("log").lastChild.remove();
}

function apply(event) {
  if (lastId !== null && event.id <= lastId) return;  // already applied
  lastId = event.id;
  if (event.type === "note.deleted") {
    notes.delete(event.old_val.id);
    remove(event.old_val.id);
  } else {
    notes.set(event.new_val.id, event.new_val);
    render();
    flash(event.new_val.id);
  }
  log(event);
  summary();
}

class KeyNeeded extends Error {}

async function ticket() {
  // With AUTH=off the worker answers without a key: no prompt then.
  const key = sessionStorage.getItem(KEY_ITEM);
  const answer = await fetch("/stream-tickets", {
    method: "POST",
    cache: "no-store",
    headers: key ? {Authorization: `Bearer ${key}`} : {},
  });
  if (answer.status === 401 || answer.status === 403) {
    const problem = await answer.json().catch(() => ({}));
    sessionStorage.removeItem(KEY_ITEM);
    throw new KeyNeeded(key ? problem.detail || "The key was refused." : "");
  }
  if (!answer.ok) throw new Error(`ticket: ${answer.status}`);
  return encodeURIComponent((await answer.json()).ticket);
}

function askForKey(message) {
  setState("key", "key needed");
  $("key-error").textContent = message;
  $("key-form").hidden = false;
  $("key").focus();
}

function retry() {
  setState("down", "disconnected");
  setTimeout(reconnect, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}

async function reconnect() {
  try {
    listen(await ticket());
  } catch (error) {
    if (error instanceof KeyNeeded) askForKey(error.message);
    else retry();
  }
}

function restart() {
  const old = source;
  source = null;
  if (old) old.close();
  notes.clear();
  $("notes").replaceChildren();
  lastId = null;
  setState("connecting", "starting over");
  start();
}

function listenWebSocket(pass) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(
    `${scheme}//${location.host}/ws?ticket=${pass}&last_event_id=${lastId}`);
  source = socket;
  socket.onopen = () => { retryDelay = 1000; setState("live", "live"); };
  socket.onmessage = (message) => {
    // Events are note.*; the server's own messages (stream, reset) are not.
    const event = JSON.parse(message.data);
    if (event.type === "reset") restart();
    else if (event.type.startsWith("note.")) apply(event);
  };
  socket.onclose = () => {
    if (source !== socket) return;  // closed on purpose (restart)
    source = null;
    retry();
  };
}

function listenEventSource(pass) {
  // On a dropped connection EventSource retries this URL by itself: while
  // the ticket is valid that works; after, the 401 closes it and retry()
  // gets a fresh ticket.
  const events = new EventSource(`/events?ticket=${pass}&last_event_id=${lastId}`);
  source = events;
  events.onopen = () => { retryDelay = 1000; setState("live", "live"); };
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) {
      events.close();
      if (source === events) retry();
    } else {
      setState("connecting", "reconnecting");
    }
  };
  events.addEventListener("reset", restart);
  for (const type of ["note.created", "note.updated", "note.deleted"]) {
    events.addEventListener(type, (message) => apply(JSON.parse(message.data)));
  }
}

function listen(pass) {
  if (transport === "websocket") listenWebSocket(pass);
  else listenEventSource(pass);
}

async function start() {
  try {
    const pass = await ticket();
    const answer = await fetch(`/snapshot?ticket=${pass}`, {cache: "no-store"});
    if (!answer.ok) throw new Error(`snapshot: ${answer.status}`);
    const snapshot = await answer.json();
    for (const note of snapshot.notes) notes.set(note.id, note);
    lastId = snapshot.seq;
    render();
    listen(pass);
  } catch (error) {
    if (error instanceof KeyNeeded) {
      askForKey(error.message);
      return;
    }
    setState("down", "disconnected");
    setTimeout(start, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
  $("key").value = "";
  $("key-form").hidden = true;
  setState("connecting", "connecting");
  start();
});

$("state").dataset.transport = transport;
start();
