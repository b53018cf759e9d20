// The victim's page: choose a language, start a chat, talk with the counsellor, answer the
// question about the police, and steer the police part (pause, resume, stop).
//
// Keys are made here and never leave the browser. Only this conversation's keys and token are
// kept, in sessionStorage, so a reload in the same tab resumes and closing the tab forgets.
// Server data is only ever put into the page as text nodes.

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
import { Connection } from "../socket.js";
import "./victim.css";
import en from "../i18n/victim.en.json";
import nl from "../i18n/victim.nl.json";

/** @typedef {Record<string, any>} Json */

const STORE_KEY = "chat";

/** @type {{conversationId: string, token: string, deviceId: string, keys: crypto.DeviceKeys} | null} */
let session = null;
const connection = new Connection();
const { outbox } = connection;
/** @type {Json} */
let conv = { participants: new Map(), carePublic: null, victimDevice: null, state: null };
/** @type {Json | null} */
let bridge = null;
/** @type {Json | null} */
let prompt = null;
/** @type {Map<number, HTMLElement>} */
const shown = new Map();
/** @type {Map<number, Json>} messages whose signer is not known yet */
const pending = new Map();

// --- quick exit ---------------------------------------------------------------------------------

/** Leave at once for a neutral page; Back does not return. Answers no question. */
function quickExit() {
  try {
    sessionStorage.clear();
  } catch {
    // storage may be unavailable; leaving matters more
  }
  const meta = /** @type {HTMLMetaElement | null} */ (
    document.querySelector('meta[name="quick-exit"]')
  );
  const target = meta?.content || "about:blank";
  document.body.replaceChildren(); // nothing left on screen while the next page loads
  location.replace(target);
}

// --- storage ------------------------------------------------------------------------------------

function save() {
  if (!session) return;
  const { ed25519Seed, x25519Private } = session.keys.exportPrivate();
  const stored = {
    conversation_id: session.conversationId,
    token: session.token,
    device_id: session.deviceId,
    ed25519_seed: crypto.b64uEncode(ed25519Seed),
    x25519_private: crypto.b64uEncode(x25519Private),
  };
  sessionStorage.setItem(STORE_KEY, JSON.stringify(stored));
}

function load() {
  const raw = sessionStorage.getItem(STORE_KEY);
  if (!raw) return null;
  try {
    const stored = JSON.parse(raw);
    return {
      conversationId: String(stored.conversation_id),
      token: String(stored.token),
      deviceId: String(stored.device_id),
      keys: crypto.DeviceKeys.fromPrivate(
        crypto.b64uDecode(stored.ed25519_seed, 32),
        crypto.b64uDecode(stored.x25519_private, 32),
      ),
    };
  } catch {
    sessionStorage.removeItem(STORE_KEY);
    return null;
  }
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
    },
  });
}

async function join() {
  if (!session) return;
  const ack = await call("conversation.join", { conversation_id: session.conversationId });
  const c = ack.conversation;
  applyLanguage(c.lang ?? language());
  conv.state = c.state;
  conv.carePublic = c.care_scope?.public ?? null;
  conv.victimDevice = c.victim_device;
  conv.participants = new Map();
  conv.participants.set(c.victim_device.device_id, { role: "victim", ...c.victim_device });
  for (const p of c.participants ?? []) conv.participants.set(p.device_id, p);
  bridge = c.bridge ?? null;
  if (bridge && !bridge.epoch && c.epoch) bridge.epoch = c.epoch;
  renderPresence();
  if (c.state === "closed") onClosed();
  await fetchHistory(resumeFrom());
}

/** While the connection is down: say so calmly, and that written messages wait. */
function showDown() {
  const waiting = outbox.size ? ` ${t("compose.queued")}` : "";
  status("chat-status", t("chat.reconnecting") + waiting);
}

/** The last seq up to which every message is shown: a reconnect fetches what came after. */
function resumeFrom() {
  let seq = 0;
  while (shown.has(seq + 1)) seq += 1;
  return seq;
}

/** @param {number} after */
async function fetchHistory(after) {
  if (!session) return;
  let cursor = after;
  for (;;) {
    const ack = await call("history.fetch", {
      conversation_id: session.conversationId,
      after_seq: cursor,
      limit: 500,
    });
    const items = /** @type {Json[]} */ (ack.messages);
    for (const item of items) onMessage({ ...item, conversation_id: session.conversationId });
    if (items.length < 500) return;
    cursor = Math.max(cursor, ...items.map((m) => m.seq));
  }
}

// --- messages -----------------------------------------------------------------------------------

/** @param {Json} item */
function onMessage(item) {
  if (!session || item.conversation_id !== session.conversationId || shown.has(item.seq)) return;
  const envelope = item.envelope ?? {};
  const signer = conv.participants.get(envelope.sender?.device_id ?? "");
  if (!signer) {
    pending.set(item.seq, item);
    return;
  }
  pending.delete(item.seq);
  let text = null;
  let sentAt = null;
  try {
    if (signer.role !== envelope.sender.role) throw new crypto.CryptoError("role mismatch");
    if (envelope.conversation_id !== session.conversationId) {
      throw new crypto.CryptoError("another conversation");
    }
    crypto.verifyEnvelope(envelope, signer.ed25519);
    const plain = crypto.openEnvelope(envelope, "victim", session.keys.boxPrivate);
    text = typeof plain.text === "string" ? plain.text : null;
    sentAt = typeof plain.sent_at === "string" ? plain.sent_at : null;
  } catch {
    text = null;
  }
  renderMessage(item, envelope, text, sentAt ?? item.server_time);
}

/**
 * @param {Json} item @param {Json} envelope @param {string | null} text @param {string} time
 */
function renderMessage(item, envelope, text, time) {
  const role = String(envelope.sender?.role ?? "");
  const audience = Array.isArray(envelope.audience) ? envelope.audience : [];
  const from = role === "victim" ? "me" : role === "officer" ? "police" : "care";
  const li = messageItem(item.seq, role, `from-${from}`, { sender: `sender.${role}`, time, text });
  li.dataset.audience = audience.join(" ");
  const mark = markFor(envelope, audience);
  if (mark) li.append(el("p", `message-mark ${mark.kind}`, mark.text));
  // Each message once, in seq order.
  shown.set(item.seq, li);
  insertBySeq($("messages"), li);
}

/** @param {Json} envelope @param {string[]} audience */
function markFor(envelope, audience) {
  if (envelope.kind === "needs_note") return { kind: "needs-note", text: t("message.needsNote") };
  if (audience.includes("investigation")) {
    return { kind: "with-police", text: t("message.withPolice") };
  }
  // Care-only is worth saying once the police is, or was, part of this chat.
  if (bridge?.epoch) return { kind: "care-only", text: t("message.careOnly") };
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
  const input = /** @type {HTMLTextAreaElement} */ ($("compose-text"));
  const careOnly = /** @type {HTMLInputElement} */ ($("care-only")).checked;
  const text = input.value.trim();
  if (!text) return;
  const joined = bridge?.state === "joined" && bridge.epoch;
  const audience = joined && !careOnly ? ["care", "investigation"] : ["care"];
  /** @type {Record<string, string>} */
  const recipients = { victim: session.keys.x25519, care: conv.carePublic };
  if (audience.includes("investigation")) recipients.investigation = bridge?.epoch.public;
  let sent;
  try {
    const envelope = crypto.buildEnvelope({
      conversationId: session.conversationId,
      clientMsgId: globalThis.crypto.randomUUID(),
      senderRole: "victim",
      deviceId: session.deviceId,
      kind: "message",
      audience,
      epochId: audience.includes("investigation") ? bridge?.epoch.epoch_id : null,
      plaintext: { text, sent_at: new Date().toISOString() },
      recipients,
      signingKey: session.keys.signingKey,
    });
    sent = outbox.send(envelope);
  } catch {
    status("chat-status", t("compose.failed"));
    return;
  }
  // Written is as good as sent: the outbox sends it again after a reconnect.
  input.value = "";
  if (outbox.up) status("chat-status", "");
  else showDown();
  try {
    await sent;
    status("chat-status", "");
  } catch {
    status("chat-status", t("compose.failed"));
    if (!input.value) input.value = text;
  }
}

// --- who is here, and the police banner ---------------------------------------------------------

/** @param {Json} event */
function onParticipant(event) {
  const p = event.participant;
  if (!p) return;
  if (event.event === "joined") {
    conv.participants.set(p.device_id, p);
    // The officer's coming and going is told by the bridge.state notices.
    if (p.role === "counsellor") notice(t("chat.counsellorJoined"));
    for (const item of [...pending.values()]) onMessage(item);
  } else {
    // Keep the key to verify earlier messages; mark the participant as gone.
    conv.participants.set(p.device_id, { ...conv.participants.get(p.device_id), ...p, gone: true });
  }
  renderPresence();
}

function present(/** @type {string} */ role) {
  return [...conv.participants.values()].filter((p) => p.role === role && !p.gone);
}

function renderPresence() {
  const names = [t("who.victim")];
  if (present("counsellor").length) names.push(t("who.counsellor"));
  if (present("officer").length) names.push(t("who.officer"));
  $("who").textContent = t("who.label", { names: names.join(t("who.and")) });
  if (conv.state === "waiting" && !present("counsellor").length) {
    status("chat-status", t("chat.waiting"));
  }
  const banner = $("police-banner");
  const state = bridge?.state;
  const active = state === "joined" || state === "paused";
  banner.hidden = !active;
  if (!active) return;
  const officer = present("officer")[0];
  banner.classList.toggle("paused", state === "paused");
  $("police-banner-text").textContent =
    state === "paused" ? t("banner.paused") : t("banner.present", { time: clock(officer?.since ?? "") });
  $("police-pause").hidden = state !== "joined";
  $("police-resume").hidden = !(state === "paused" && bridge?.reason !== "counsellor_away");
}

/** @param {string} event */
async function steer(event) {
  if (!session) return;
  try {
    await call(event, { conversation_id: session.conversationId });
  } catch {
    status("chat-status", t("banner.failed"));
  }
}

/** @param {Json} event */
function onBridgeState(event) {
  const { conversation_id: _id, notice: text, ...state } = event;
  if (bridge?.request_id === state.request_id && bridge?.epoch && !state.epoch) {
    state.epoch = bridge.epoch;
  }
  bridge = state;
  if (prompt && (prompt.request_id !== state.request_id || state.state !== "proposed")) {
    closePrompt();
  }
  if (typeof text === "string") notice(text);
  renderPresence();
}

function onClosed() {
  conv.state = "closed";
  notice(t("chat.closed"));
  closePrompt();
  $("compose").hidden = true;
  $("end").hidden = true;
  $("police-banner").hidden = true;
  $("new-chat").hidden = false;
}

// --- the question about the police --------------------------------------------------------------

/**
 * The consent text's Markdown as elements: headings, lists (- or 1.) and paragraphs, as text only.
 * @param {string} body
 */
function renderMarkdown(body) {
  /** @type {HTMLElement[]} */
  const nodes = [];
  /** @type {HTMLElement | null} */
  let list = null;
  /** @type {string[]} */
  let para = [];
  const flush = () => {
    if (para.length) {
      const p = document.createElement("p");
      p.textContent = para.join(" ");
      nodes.push(p);
      para = [];
    }
  };
  for (const raw of body.split("\n")) {
    const line = raw.trim();
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const bullet = /^[-*]\s+(.*)$/.exec(line);
    const numbered = /^\d+[.)]\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      list = null;
      // The page has its own h1: the text's headings start one level down.
      const h = document.createElement(`h${Math.min(6, heading[1].length + 1)}`);
      h.textContent = heading[2];
      nodes.push(h);
    } else if (bullet || numbered) {
      flush();
      const tag = bullet ? "UL" : "OL";
      if (!list || list.tagName !== tag) {
        list = document.createElement(tag.toLowerCase());
        nodes.push(list);
      }
      const li = document.createElement("li");
      li.textContent = (bullet ?? numbered)?.[1] ?? "";
      list.append(li);
    } else if (!line || line.startsWith("<!--")) {
      flush();
      list = null;
    } else if (list && /^\s{2,}/.test(raw) && list.lastElementChild) {
      list.lastElementChild.append(` ${line}`); // a list item continued on the next line
    } else {
      list = null;
      para.push(line);
    }
  }
  flush();
  return nodes;
}

/** @param {Json} event */
function onPrompt(event) {
  if (!session || event.conversation_id !== session.conversationId) return;
  prompt = event;
  const who = $("consent-who");
  const items = [t("consent.whoOfficer"), t("consent.whoCounsellor")];
  const prefs = event.preferences ?? {};
  if (prefs.officer_gender === "female") items.push(t("consent.prefFemale"));
  if (prefs.officer_gender === "male") items.push(t("consent.prefMale"));
  if (prefs.same_officer) items.push(t("consent.prefSame"));
  who.replaceChildren(
    ...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
  const article = $("consent-text");
  article.lang = String(event.text?.lang ?? language());
  article.replaceChildren(...renderMarkdown(String(event.text?.body ?? "")));
  /** @type {HTMLInputElement} */ ($("choice-needs-note")).checked = false;
  /** @type {HTMLInputElement} */ ($("choice-case-file")).checked = false;
  $("consent-expires").textContent = event.expires_at
    ? t("consent.expires", { time: clock(event.expires_at) })
    : "";
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
    const text = {
      version: current.text.version,
      lang: current.text.lang,
      sha256: current.text.sha256,
    };
    const choices = {
      retain_for_case_file: /** @type {HTMLInputElement} */ ($("choice-case-file")).checked,
      share_needs_note: /** @type {HTMLInputElement} */ ($("choice-needs-note")).checked,
    };
    const avim = await api("/api/v1/orgs/avim/key");
    const scope = crypto.ScopeKey.generate();
    /** @type {Json} */
    const payload = {
      request_id: current.request_id,
      text,
      choices,
      investigation_scope: scope.asPayload(avim.x25519),
    };
    payload.sig = session.keys.sign(
      crypto.signedGrant({
        requestId: current.request_id,
        text,
        choices,
        investigationPublic: scope.public,
      }),
    );
    const ack = await call("consent.grant", payload);
    bridge = { ...(bridge ?? {}), epoch: { epoch_id: ack.epoch_id, public: scope.public } };
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
      care_scope: care.asPayload(fier.x25519),
    });
    session = {
      conversationId: created.conversation_id,
      token: created.victim_token,
      deviceId: created.device_id,
      keys,
    };
    save();
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
    await call("conversation.close", { conversation_id: session.conversationId });
    if (conv.state !== "closed") onClosed();
  } catch {
    status("chat-status", t("end.failed"));
  }
}

function newChat() {
  connection.close();
  session = null;
  sessionStorage.removeItem(STORE_KEY);
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
  session = load();
  if (session) {
    openChat(false);
  } else {
    show("language", false);
  }
  document.body.dataset.ready = "";
}

main();
