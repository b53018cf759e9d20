// The counsellor's console: log in, unlock the Fier key, pick up a waiting conversation, talk,
// and run the driegesprek: propose it, send the needs note, pause, resume or end the police part.
// Which keys a message is sealed to follows from the bridge's state; the counsellor only chooses
// "care only" or not.

import "./staff.css";
import {
  $,
  Conversation,
  Staff,
  StaffError,
  applyLanguage,
  clock,
  crypto,
  el,
  loginFlow,
  renderMessage,
  renderNotice,
  show,
  status,
  t,
} from "../staff.js";

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
      button.addEventListener("click", () => openConversation(String(item.conversation_id)));
      li.append(since, language, button);
      return li;
    }),
  );
  $("queue-empty").hidden = waiting.length > 0;
  status("queue-status", "");
}

// --- one conversation ----------------------------------------------------------------------------

/** @param {string} id */
async function openConversation(id) {
  try {
    const ack = await staff.call("conversation.join", { conversation_id: id });
    // One conversation on screen at a time; events of another one are ignored until it is opened.
    const fresh = conv?.id !== id;
    if (fresh) conv = new Conversation(id);
    if (!conv) return;
    conv.apply(ack.conversation, /** @type {Uint8Array} */ (staff.orgKey));
    if (fresh) {
      $("messages").replaceChildren();
      $("conv").hidden = false;
      $("conv-none").hidden = true;
      $("bridge-panel").hidden = false;
      if (conv.bridge?.notice) status("bridge-notice", conv.bridge.notice);
    }
    render();
    await conv.fetchHistory(staff, Math.max(0, ...conv.seen), onMessage);
    await refreshQueue();
  } catch (err) {
    const code = err instanceof StaffError ? err.code : "";
    status("queue-status", code === "forbidden" ? t("queue.taken") : t("error.generic"));
    await refreshQueue();
  }
}

/** @param {Json} item */
function onMessage(item) {
  if (!conv || item.conversation_id !== conv.id || conv.seen.has(item.seq)) return;
  const opened = conv.open(item, "care");
  if (!opened) return;
  const audience = Array.isArray(opened.envelope.audience) ? opened.envelope.audience : [];
  /** @type {{kind: string, text: string}[]} */
  const marks = [];
  if (opened.envelope.kind === "needs_note") {
    marks.push({ kind: "needs-note", text: t("message.needsNote") });
  } else if (audience.includes("investigation")) {
    marks.push({ kind: "with-police", text: t("message.withPolice") });
  } else if (conv.epoch || conv.bridge) {
    marks.push({ kind: "care-only", text: t("message.careOnly") });
  }
  renderMessage($("messages"), item.seq, {
    text: opened.text,
    time: opened.time,
    role: opened.role,
    own: opened.envelope.sender?.device_id === staff.deviceId,
    marks,
  });
}

/** @param {Json} event */
function onParticipant(event) {
  if (!conv || event.conversation_id !== conv.id) return;
  conv.applyParticipant(event);
  for (const item of [...conv.pending.values()]) onMessage(item);
  render();
}

/** @param {Json} event */
function onBridgeState(event) {
  if (!conv || event.conversation_id !== conv.id) return;
  conv.applyBridgeState(event);
  if (typeof event.notice === "string") {
    status("bridge-notice", event.notice);
    renderNotice($("messages"), event.notice);
  }
  render();
}

/** @param {Json} event */
function onClosed(event) {
  if (!conv || event.conversation_id !== conv.id) return;
  conv.state = "closed";
  renderNotice($("messages"), t("conv.closed"));
  render();
}

function render() {
  if (!conv) return;
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
  const button = /** @type {HTMLButtonElement} */ ($("send"));
  button.disabled = true;
  try {
    await staff.call("message.send", { envelope: conv.build(staff, text, audience) });
    input.value = "";
    status("chat-status", "");
  } catch {
    status("chat-status", t("compose.failed"));
  } finally {
    button.disabled = false;
  }
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
    const code = err instanceof StaffError ? err.code : "";
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
  applyLanguage("title.counsellor");
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
      if (conv) await openConversation(conv.id); // back after a reconnect: join again
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
