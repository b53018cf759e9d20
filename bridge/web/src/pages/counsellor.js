// The counsellor's console: log in, unlock the Fier key, pick up waiting conversations (several
// may be open; "my conversations" switches between them, each keeping its messages), talk,
// and run the driegesprek: propose it, send the needs note, pause, resume or end the police part.
// Which keys a message is sealed to follows from the bridge's state; the counsellor only chooses
// "care only" or not.

import "./staff.css";
import { ApiError } from "../api.js";
import { $, clock, el, renderNotice, setupLanguage, show, status, t } from "../page.js";
import { Conversation } from "../conversation.js";
import * as crypto from "../crypto.js";
import { sendWritten } from "../socket.js";
import { Staff, loginFlow, renderMessage } from "../staff.js";

/** @typedef {Record<string, any>} Json */

const staff = new Staff("counsellor");
/** @type {Conversation | null} */
let conv = null;
const IN_FORCE = new Set(["proposed", "granted", "joined", "paused"]);

// --- the queue -----------------------------------------------------------------------------------

async function refreshQueue() {
  try {
    const ack = await staff.call("queue.list", {});
    renderQueue(/** @type {Json[]} */ (ack.waiting));
  } catch {
    status("queue-status", t("error.generic"));
  }
}

/** @param {Json[]} waiting */
function renderQueue(waiting) {
  const list = $("queue");
  list.replaceChildren(
    ...waiting.map((item) => {
      const li = el("li", "queue-item");
      li.dataset.conversation = String(item.conversation_id);
      const since = el("p", "", t("queue.since", { time: clock(String(item.waiting_since)) }));
      const language = el("p", "hint", t("queue.lang", { lang: t(`lang.${item.lang}`) }));
      const button = /** @type {HTMLButtonElement} */ (el("button", "button", t("queue.open")));
      button.type = "button";
      const waitingSince = String(item.waiting_since ?? "");
      button.addEventListener("click", () => openConversation(String(item.conversation_id), waitingSince));
      li.append(since, language, button);
      return li;
    }),
  );
  $("queue-empty").hidden = waiting.length > 0;
  status("queue-status", "");
}

// --- my conversations ----------------------------------------------------------------------------

/**
 * One conversation this counsellor joined. Its messages stay in `list` (a detached list) while
 * another conversation is on screen, so switching back needs no refetch.
 * @typedef {{conv: Conversation, n: number, since: string, list: HTMLElement, unread: number,
 *            notice: string, draft: string}} Mine
 */

/** @type {Map<string, Mine>} conversation id -> what this page holds of it */
const mine = new Map();

/** Where `entry`'s messages go now: the list on screen, or its own list while it is not shown. */
function listOf(/** @type {Mine} */ entry) {
  return entry.conv === conv ? $("messages") : entry.list;
}

/** Put `entry` on screen; the one shown before keeps its messages and its draft. @param {Mine} entry */
function activate(entry) {
  const input = /** @type {HTMLTextAreaElement} */ ($("compose-text"));
  const before = conv ? mine.get(conv.id) : undefined;
  if (before === entry) return;
  if (before) {
    before.list.replaceChildren(...$("messages").childNodes);
    before.draft = input.value;
  }
  conv = entry.conv;
  $("messages").replaceChildren(...entry.list.childNodes);
  input.value = entry.draft;
  /** @type {HTMLInputElement} */ ($("care-only")).checked = false;
  for (const id of ["chat-status", "steer-status", "propose-status", "note-status"]) status(id, "");
  entry.unread = 0;
  $("conv").hidden = false;
  $("conv-none").hidden = true;
  $("bridge-panel").hidden = false;
}

function renderMine() {
  const list = $("mine");
  list.replaceChildren(
    ...[...mine.values()].map((entry) => {
      const li = el("li", "mine-item");
      li.dataset.conversation = entry.conv.id;
      const button = /** @type {HTMLButtonElement} */ (el("button", "mine-open"));
      button.type = "button";
      if (entry.conv === conv) button.setAttribute("aria-current", "true");
      const title = el("span", "mine-title", t("mine.item", { n: String(entry.n), time: clock(entry.since) }));
      const closed = entry.conv.state === "closed";
      const state = closed ? t("mine.closed") : t(`bridge.state.${entry.conv.bridge?.state ?? "none"}`);
      const bridge = el("span", "mine-state", t("bridge.state", { state }));
      bridge.dataset.state = closed ? "closed" : (entry.conv.bridge?.state ?? "none");
      button.append(title, bridge);
      if (entry.unread) {
        const marker = el("span", "mine-new", t("mine.new", { count: String(entry.unread) }));
        button.append(marker);
      }
      button.addEventListener("click", () => {
        activate(entry);
        render();
        /** @type {HTMLElement} */ ($("messages")).lastElementChild?.scrollIntoView({ block: "nearest" });
      });
      li.append(button);
      return li;
    }),
  );
  $("mine-empty").hidden = mine.size > 0;
}

// --- one conversation ----------------------------------------------------------------------------

/** Join `id` (again): on screen unless `quiet`. @param {string} id @param {string} [since] @param {boolean} [quiet] */
async function openConversation(id, since = "", quiet = false) {
  try {
    const ack = await staff.call("conversation.join", { conversation_id: id });
    let entry = mine.get(id);
    if (!entry) {
      const list = /** @type {HTMLElement} */ ($("messages").cloneNode(false));
      list.removeAttribute("id");
      entry = {
        conv: new Conversation(id),
        n: mine.size + 1,
        since: since || new Date().toISOString(),
        list,
        unread: 0,
        notice: "",
        draft: "",
      };
      mine.set(id, entry);
    }
    entry.conv.apply(ack.conversation, staff.orgKeys);
    if (entry.conv.bridge?.notice) entry.notice = entry.conv.bridge.notice;
    if (!quiet) activate(entry);
    render();
    const before = entry.unread;
    await entry.conv.fetchHistory(staff, entry.conv.resumeFrom(true), onMessage);
    if (quiet) entry.unread = before; // a rejoin's history is nothing new
    renderMine();
    if (!quiet) await refreshQueue();
  } catch (err) {
    const code = err instanceof ApiError ? err.code : "";
    status("queue-status", code === "forbidden" ? t("queue.taken") : t("error.generic"));
    await refreshQueue();
  }
}

/** @param {Json} item */
function onMessage(item) {
  const entry = mine.get(String(item.conversation_id));
  if (!entry || entry.conv.seen.has(item.seq)) return;
  const c = entry.conv;
  const opened = c.open(item, "care");
  if (!opened) return;
  const audience = Array.isArray(opened.envelope.audience) ? opened.envelope.audience : [];
  /** @type {{kind: string, key: string}[]} */
  const marks = [];
  if (opened.envelope.kind === "needs_note") {
    marks.push({ kind: "needs-note", key: "message.needsNote" });
  } else if (audience.includes("investigation")) {
    marks.push({ kind: "with-police", key: "message.withPolice" });
  } else if (c.epoch || c.bridge) {
    marks.push({ kind: "care-only", key: "message.careOnly" });
  }
  const own = opened.envelope.sender?.device_id === staff.deviceId;
  renderMessage(listOf(entry), item.seq, {
    text: opened.text,
    time: opened.time,
    role: opened.role,
    own,
    marks,
  });
  if (c !== conv && !own) {
    entry.unread += 1;
    renderMine();
  }
}

/** @param {Json} event */
function onParticipant(event) {
  const entry = mine.get(String(event.conversation_id));
  if (!entry) return;
  entry.conv.applyParticipant(event);
  for (const item of [...entry.conv.pending.values()]) onMessage(item);
  render();
}

/** @param {Json} event */
function onBridgeState(event) {
  const entry = mine.get(String(event.conversation_id));
  if (!entry) return;
  entry.conv.applyBridgeState(event);
  if (typeof event.notice === "string") {
    entry.notice = event.notice;
    renderNotice(listOf(entry), event.notice);
  }
  render();
}

/** @param {Json} event */
function onClosed(event) {
  const entry = mine.get(String(event.conversation_id));
  if (!entry) return;
  entry.conv.state = "closed";
  renderNotice(listOf(entry), t("conv.closed"));
  render();
}

function render() {
  renderMine();
  if (!conv) return;
  status("bridge-notice", mine.get(conv.id)?.notice ?? "");
  const names = [t("who.victim"), `${t("who.you")} (${t("who.counsellor")})`];
  const officer = conv.present("officer")[0];
  if (officer) names.push(t("who.officer"));
  $("who").textContent = t("who.label", { names: names.join(t("who.and")) });

  const state = conv.bridge?.state ?? "none";
  const inForce = IN_FORCE.has(state);
  const joined = state === "joined" && Boolean(conv.epoch);
  const indicator = $("police-indicator");
  indicator.classList.toggle("present", joined);
  indicator.classList.toggle("paused", state === "paused");
  indicator.textContent =
    state === "joined"
      ? t("police.present", { time: clock(officer?.since ?? "") })
      : state === "paused"
        ? t("police.paused")
        : t("police.absent");

  const closed = conv.state === "closed";
  $("compose").hidden = closed;
  const careOnly = /** @type {HTMLInputElement} */ ($("care-only"));
  careOnly.disabled = !joined;
  if (!joined) careOnly.checked = false;
  $("care-only-hint").textContent = joined
    ? careOnly.checked
      ? ""
      : t("compose.toAll")
    : t("compose.careOnlyHint");

  $("bridge-state").textContent = t("bridge.state", { state: t(`bridge.state.${state}`) });
  $("propose").hidden = closed || inForce;
  $("needs-note").hidden = closed || !(state === "granted" || state === "joined");
  $("steer-pause").hidden = state !== "joined";
  const victimPause = state === "paused" && conv.bridge?.reason === "victim";
  $("steer-resume").hidden = !(state === "paused" && conv.bridge?.reason === "counsellor");
  $("steer-end").hidden = !inForce;
  status("steer-status", victimPause ? t("steer.victimPause") : "");
}

// --- acting ----------------------------------------------------------------------------------------

/** @param {SubmitEvent} event */
async function onSend(event) {
  event.preventDefault();
  if (!conv) return;
  const input = /** @type {HTMLTextAreaElement} */ ($("compose-text"));
  const text = input.value.trim();
  if (!text) return;
  const careOnly = /** @type {HTMLInputElement} */ ($("care-only")).checked;
  const joined = conv.bridge?.state === "joined" && conv.epoch;
  const audience = joined && !careOnly ? ["care", "investigation"] : ["care"];
  await sendWritten(staff.outbox, conv.build(staff, text, audience), input, text, () =>
    status("chat-status", t("compose.queued")),
  );
}

/** @param {SubmitEvent} event */
async function onPropose(event) {
  event.preventDefault();
  if (!conv) return;
  const purpose = /** @type {HTMLInputElement} */ ($("purpose-report")).checked
    ? "report"
    : "informational";
  /** @type {Json} */
  const preferences = {
    officer_gender: /** @type {HTMLSelectElement} */ ($("propose-gender")).value,
    same_officer: /** @type {HTMLInputElement} */ ($("propose-same")).checked,
  };
  const region = /** @type {HTMLInputElement} */ ($("propose-region")).value.trim();
  if (region) preferences.region = region;
  const button = /** @type {HTMLButtonElement} */ ($("propose-submit"));
  button.disabled = true;
  try {
    await staff.call("bridge.propose", { conversation_id: conv.id, purpose, preferences });
    status("propose-status", "");
  } catch {
    status("propose-status", t("propose.failed"));
  } finally {
    button.disabled = false;
  }
}

/** @param {SubmitEvent} event */
async function onNeedsNote(event) {
  event.preventDefault();
  if (!conv) return;
  const input = /** @type {HTMLTextAreaElement} */ ($("note-text"));
  const text = input.value.trim();
  if (!text) return;
  const button = /** @type {HTMLButtonElement} */ ($("note-submit"));
  button.disabled = true;
  try {
    const envelope = conv.build(staff, text, ["care", "investigation"], "needs_note");
    await staff.call("message.send", { envelope });
    input.value = "";
    status("note-status", t("note.sent"));
  } catch (err) {
    const code = err instanceof ApiError ? err.code : "";
    status("note-status", code === "forbidden" ? t("note.forbidden") : t("note.failed"));
  } finally {
    button.disabled = false;
  }
}

/** @param {string} event */
async function steer(event) {
  if (!conv) return;
  try {
    await staff.call(event, { conversation_id: conv.id });
    status("steer-status", "");
  } catch {
    status("steer-status", t("steer.failed"));
  }
}

// --- start -----------------------------------------------------------------------------------------

async function main() {
  setupLanguage(() => {
    render();
    if (staff.connection.connected) {
      status("conn-status", t("conn.online"));
      void refreshQueue();
    }
  });
  $("compose").addEventListener("submit", (e) => onSend(/** @type {SubmitEvent} */ (e)));
  $("propose").addEventListener("submit", (e) => onPropose(/** @type {SubmitEvent} */ (e)));
  $("needs-note").addEventListener("submit", (e) => onNeedsNote(/** @type {SubmitEvent} */ (e)));
  $("care-only").addEventListener("change", render);
  $("steer-pause").addEventListener("click", () => steer("bridge.pause"));
  $("steer-resume").addEventListener("click", () => steer("bridge.resume"));
  $("steer-end").addEventListener("click", () => steer("bridge.end"));
  await crypto.ready();
  document.body.dataset.ready = "";
  await loginFlow(staff);
  show("console");
  status("conn-status", t("conn.connecting"));
  staff.connect({
    onReady: async () => {
      status("conn-status", t("conn.online"));
      await refreshQueue();
      // Back after a reconnect: join each conversation again; the one on screen stays.
      for (const id of mine.keys()) await openConversation(id, "", id !== conv?.id);
    },
    onDown: (text) => status("conn-status", text),
    events: {
      queue: () => void refreshQueue(),
      message: onMessage,
      participant: onParticipant,
      "bridge.state": onBridgeState,
      "conversation.closed": onClosed,
    },
  });
}

main();
