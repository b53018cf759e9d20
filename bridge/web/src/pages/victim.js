// The victim's page: choose a language, start a chat, talk with the counsellor, answer the
// question about the police, and steer the police part (pause, resume, stop).
//
// Keys are made here and never leave the browser; what the page keeps, and the quick exit, are
// ../victim/tab.js. Server data is only ever put into the page as text nodes.

import { apiCall } from "../api.js";
import * as crypto from "../crypto.js";
import {
  $,
  applyLanguage,
  clock,
  el,
  insertBySeq,
  language,
  messageItem,
  renderNotice,
  show,
  status,
  t,
  useStrings,
} from "../page.js";
import { Conversation } from "../conversation.js";
import { Connection, sendWritten } from "../socket.js";
import { grantPayload, showQuestion } from "../victim/consent.js";
import { forget, keep, kept, quickExit } from "../victim/tab.js";
import "./victim.css";
import en from "../i18n/victim.en.json";
import nl from "../i18n/victim.nl.json";

/** @typedef {Record<string, any>} Json */
/** @typedef {import("../victim/tab.js").Kept} Kept */

/**
 * This chat: its token, this device and its keys, and what is known of the conversation.
 * @typedef {{token: string, deviceId: string, keys: crypto.DeviceKeys, conv: Conversation}} Chat
 */

/** @type {Chat | null} */
let session = null;
const connection = new Connection();
const { outbox } = connection;
/** @type {Json | null} */
let prompt = null;

/** @param {Kept} kept @returns {Chat} */
function chat({ conversationId, token, deviceId, keys }) {
  const conv = new Conversation(conversationId);
  conv.scopeKeys.set("victim", keys.boxPrivate); // the victim opens with its own device key
  return { token, deviceId, keys, conv };
}

// --- HTTP and Socket.IO -------------------------------------------------------------------------

/** @param {string} path @param {Json} [body] */
const api = (path, body) => apiCall(path, null, body);
/** @param {string} event @param {Json} payload */
const call = (event, payload) => connection.call(event, payload);

/** Connect; on every (re)connect join again, fetch what was missed, then send what waits. */
function connect() {
  if (!session) return;
  connection.open(session.token, {
    up: async () => {
      status("chat-status", "");
      await join();
    },
    down: showDown,
    failed: showDown,
    // The chat's token is refused (the chat is gone): trying again will not help.
    refused: () => {
      status("chat-status", t("chat.refused"));
      $("new-chat").hidden = false;
    },
    events: {
      message: onMessage,
      participant: onParticipant,
      "bridge.state": onBridgeState,
      "consent.prompt": onPrompt,
      "conversation.closed": onClosed,
      // Told in plain words when the counsellor had to act under the meldcode.
      notice: (/** @type {Json} */ event) => {
        if (session && event.conversation_id === session.conv.id) notice(String(event.notice));
      },
    },
  });
}

async function join() {
  if (!session) return;
  const { conv } = session;
  const ack = await call("conversation.join", { conversation_id: conv.id });
  const c = ack.conversation;
  applyLanguage(c.lang ?? language());
  conv.participants.clear(); // who is here now, as the server says
  conv.apply(c, null);
  renderPresence();
  if (c.state === "closed") onClosed();
  await conv.fetchHistory(connection, conv.resumeFrom(true), onMessage);
}

/** While the connection is down: say so calmly, and that written messages wait. */
function showDown() {
  const waiting = outbox.size ? ` ${t("compose.queued")}` : "";
  status("chat-status", t("chat.reconnecting") + waiting);
}

// --- messages -----------------------------------------------------------------------------------

/** @param {Json} item */
function onMessage(item) {
  if (!session) return;
  const { conv } = session;
  if (item.conversation_id !== conv.id || conv.seen.has(item.seq)) return;
  const opened = conv.open(item, "victim");
  if (!opened) return;
  const { envelope, role } = opened;
  const audience = Array.isArray(envelope.audience) ? envelope.audience : [];
  const from = role === "victim" ? "me" : role === "officer" ? "police" : "care";
  const { time, text } = opened;
  const li = messageItem(item.seq, role, `from-${from}`, { sender: `sender.${role}`, time, text });
  li.dataset.audience = audience.join(" ");
  const mark = markFor(envelope, audience, conv);
  if (mark) li.append(el("p", `message-mark ${mark.kind}`, mark.text));
  insertBySeq($("messages"), li);
}

/** @param {Json} envelope @param {string[]} audience @param {Conversation} conv */
function markFor(envelope, audience, conv) {
  if (envelope.kind === "needs_note") return { kind: "needs-note", text: t("message.needsNote") };
  if (audience.includes("investigation")) {
    return { kind: "with-police", text: t("message.withPolice") };
  }
  // Care-only is worth saying once the police is, or was, part of this chat.
  if (conv.bridge?.epoch) return { kind: "care-only", text: t("message.careOnly") };
  return null;
}

/** @param {string} text */
function notice(text) {
  renderNotice($("messages"), text);
}

/** @param {SubmitEvent} event */
async function onSend(event) {
  event.preventDefault();
  if (!session) return;
  const { conv } = session;
  const input = /** @type {HTMLTextAreaElement} */ ($("compose-text"));
  const careOnly = /** @type {HTMLInputElement} */ ($("care-only")).checked;
  const text = input.value.trim();
  if (!text) return;
  const joined = conv.bridge?.state === "joined" && conv.bridge.epoch;
  const audience = joined && !careOnly ? ["care", "investigation"] : ["care"];
  let envelope;
  try {
    const { deviceId, keys } = session;
    envelope = conv.build({ role: "victim", deviceId, keys }, text, audience);
  } catch {
    status("chat-status", t("compose.failed"));
    return;
  }
  await sendWritten(outbox, envelope, input, text, showDown);
}

// --- who is here, and the police banner ---------------------------------------------------------

/** @param {Json} event */
function onParticipant(event) {
  if (!session || !event.participant) return;
  const { conv } = session;
  conv.applyParticipant(event);
  if (event.event === "joined") {
    // The officer's coming and going is told by the bridge.state notices.
    if (event.participant.role === "counsellor") notice(t("chat.counsellorJoined"));
    for (const item of [...conv.pending.values()]) onMessage(item);
  }
  renderPresence();
}

function renderPresence() {
  if (!session) return;
  const { conv } = session;
  const names = [t("who.victim")];
  if (conv.present("counsellor").length) names.push(t("who.counsellor"));
  if (conv.present("officer").length) names.push(t("who.officer"));
  $("who").textContent = t("who.label", { names: names.join(t("who.and")) });
  if (conv.state === "waiting" && !conv.present("counsellor").length) {
    status("chat-status", t("chat.waiting"));
  }
  const banner = $("police-banner");
  const state = conv.bridge?.state;
  const active = state === "joined" || state === "paused";
  banner.hidden = !active;
  if (!active) return;
  const officer = conv.present("officer")[0];
  banner.classList.toggle("paused", state === "paused");
  $("police-banner-text").textContent =
    state === "paused" ? t("banner.paused") : t("banner.present", { time: clock(officer?.since ?? "") });
  $("police-pause").hidden = state !== "joined";
  $("police-resume").hidden = !(state === "paused" && conv.bridge?.reason !== "counsellor_away");
}

/** @param {string} event */
async function steer(event) {
  if (!session) return;
  try {
    await call(event, { conversation_id: session.conv.id });
  } catch {
    status("chat-status", t("banner.failed"));
  }
}

/** @param {Json} event */
function onBridgeState(event) {
  if (!session) return;
  session.conv.applyBridgeState(event);
  if (prompt && (prompt.request_id !== event.request_id || event.state !== "proposed")) {
    closePrompt();
  }
  if (typeof event.notice === "string") notice(event.notice);
  renderPresence();
}

function onClosed() {
  if (session) session.conv.state = "closed";
  notice(t("chat.closed"));
  closePrompt();
  $("compose").hidden = true;
  $("end").hidden = true;
  $("police-banner").hidden = true;
  $("new-chat").hidden = false;
}

// --- the question about the police --------------------------------------------------------------

/** @param {Json} event */
function onPrompt(event) {
  if (!session || event.conversation_id !== session.conv.id) return;
  prompt = event;
  showQuestion(event);
  status("consent-status", "");
  setConsentBusy(false);
  show("consent");
}

function closePrompt() {
  prompt = null;
  if (!$("view-consent").hidden) show("chat");
}

/** @param {boolean} busy */
function setConsentBusy(busy) {
  for (const id of ["consent-yes", "consent-no"]) {
    /** @type {HTMLButtonElement} */ ($(id)).disabled = busy;
  }
}

async function grant() {
  if (!session || !prompt) return;
  const current = prompt;
  setConsentBusy(true);
  try {
    const choices = {
      retain_for_case_file: /** @type {HTMLInputElement} */ ($("choice-case-file")).checked,
      share_needs_note: /** @type {HTMLInputElement} */ ($("choice-needs-note")).checked,
    };
    const avim = await api("/api/v1/orgs/avim/key");
    const { payload, scope } = grantPayload(current, choices, avim, session.keys);
    const ack = await call("consent.grant", payload);
    const { conv } = session;
    conv.epoch = { epoch_id: ack.epoch_id, public: scope.public };
    conv.bridge = { ...(conv.bridge ?? {}), epoch: conv.epoch };
    closePrompt();
  } catch {
    status("consent-status", t("consent.failed"));
    setConsentBusy(false);
  }
}

async function decline() {
  if (!prompt) return;
  setConsentBusy(true);
  try {
    await call("consent.decline", { request_id: prompt.request_id });
    closePrompt();
  } catch {
    status("consent-status", t("consent.failed"));
    setConsentBusy(false);
  }
}

// --- starting ------------------------------------------------------------------------------------

async function start() {
  const button = /** @type {HTMLButtonElement} */ ($("start"));
  button.disabled = true;
  status("start-status", t("start.busy"));
  try {
    const fier = await api("/api/v1/orgs/fier/key");
    const keys = crypto.DeviceKeys.generate();
    const care = crypto.ScopeKey.generate();
    const created = await api("/api/v1/conversations", {
      lang: language(),
      device: { ed25519: keys.ed25519, x25519: keys.x25519 },
      care_scope: care.asPayload(fier.x25519, fier.key_id),
    });
    const started = {
      conversationId: created.conversation_id,
      token: created.victim_token,
      deviceId: created.device_id,
      keys,
    };
    keep(started);
    session = chat(started);
    status("start-status", "");
    openChat();
  } catch {
    status("start-status", t("start.failed"));
    button.disabled = false;
  }
}

/** @param {boolean} [focus] */
function openChat(focus = true) {
  show("chat", focus);
  connect();
}

/** @param {boolean} open */
function askEnd(open) {
  $("end-confirm").hidden = !open;
  $("end-chat").setAttribute("aria-expanded", String(open));
  (open ? $("end-no") : $("end-chat")).focus();
}

async function endChat() {
  if (!session) return;
  try {
    await call("conversation.close", { conversation_id: session.conv.id });
    if (session.conv.state !== "closed") onClosed();
  } catch {
    status("chat-status", t("end.failed"));
  }
}

function newChat() {
  connection.close();
  session = null;
  forget();
  location.reload();
}

async function main() {
  useStrings({ nl, en });
  $("quick-exit").addEventListener("click", quickExit);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") quickExit();
  });
  applyLanguage(document.documentElement.lang);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => {
      applyLanguage(/** @type {HTMLElement} */ (button).dataset.lang ?? "nl");
      show("start");
    });
  }
  $("start").addEventListener("click", start);
  $("compose").addEventListener("submit", (event) => onSend(/** @type {SubmitEvent} */ (event)));
  $("police-pause").addEventListener("click", () => steer("bridge.pause"));
  $("police-resume").addEventListener("click", () => steer("bridge.resume"));
  $("police-stop").addEventListener("click", () => steer("consent.withdraw"));
  $("consent-yes").addEventListener("click", grant);
  $("consent-no").addEventListener("click", decline);
  $("new-chat").addEventListener("click", newChat);
  $("end-chat").addEventListener("click", () => askEnd(true));
  $("end-no").addEventListener("click", () => askEnd(false));
  $("end-yes").addEventListener("click", endChat);
  await crypto.ready();
  const before = kept();
  session = before && chat(before);
  if (session) {
    openChat(false);
  } else {
    show("language", false);
  }
  document.body.dataset.ready = "";
}

main();
