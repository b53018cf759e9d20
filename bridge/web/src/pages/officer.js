// The officer's console: log in, unlock the AVIM key, see invites (purpose, preferences and
// expiry only: no content), accept one, then talk. The page always says what the officer can
// and cannot see, and says plainly when the police part is paused or the officer was removed.

import "./staff.css";
import { ApiError } from "../api.js";
import { $, clock, el, renderNotice, setupLanguage, show, status, t } from "../page.js";
import { Conversation } from "../conversation.js";
import * as crypto from "../crypto.js";
import { sendWritten } from "../socket.js";
import { Staff, loginFlow, renderMessage } from "../staff.js";

/** @typedef {Record<string, any>} Json */

const staff = new Staff("officer");
/** @type {Map<string, Json>} */
const invites = new Map();
/** @type {Conversation | null} */
let conv = null;
/** Set once this officer is out of the conversation: why (a reason key), else null. */
/** @type {string | null} */
let gone = null;

// --- invites -------------------------------------------------------------------------------------

async function refreshInvites() {
  try {
    const ack = await staff.call("invite.list", {});
    invites.clear();
    for (const invite of ack.invites) invites.set(String(invite.invite_id), invite);
    renderInvites();
  } catch {
    status("invites-status", t("error.generic"));
  }
}

/** @param {Json} invite */
function onInvite(invite) {
  invites.set(String(invite.invite_id), invite);
  renderInvites();
}

/** @param {Json} invite */
function describe(invite) {
  const prefs = invite.preferences ?? {};
  const lines = [t("invite.purpose", { purpose: t(`purpose.${invite.purpose}`) })];
  const gender = prefs.officer_gender;
  lines.push(
    gender === "female"
      ? t("invite.genderFemale")
      : gender === "male"
        ? t("invite.genderMale")
        : t("invite.genderAny"),
  );
  if (typeof prefs.region === "string" && prefs.region) {
    lines.push(t("invite.region", { region: prefs.region }));
  }
  if (prefs.same_officer) lines.push(t("invite.same"));
  lines.push(t("invite.expires", { time: clock(String(invite.expires_at)) }));
  return lines;
}

function renderInvites() {
  const now = Date.now();
  for (const [id, invite] of invites) {
    if (Date.parse(String(invite.expires_at)) <= now) invites.delete(id);
  }
  $("invites").replaceChildren(
    ...[...invites.values()].map((invite) => {
      const li = el("li", "invite");
      li.dataset.invite = String(invite.invite_id);
      const facts = el("ul", "invite-facts");
      for (const line of describe(invite)) facts.append(el("li", "", line));
      const button = /** @type {HTMLButtonElement} */ (el("button", "button primary", t("invite.accept")));
      button.type = "button";
      button.addEventListener("click", () => accept(String(invite.invite_id), button));
      li.append(facts, button);
      return li;
    }),
  );
  $("invites-empty").hidden = invites.size > 0;
}

/** @param {string} inviteId @param {HTMLButtonElement} button */
async function accept(inviteId, button) {
  button.disabled = true;
  try {
    const ack = await staff.call("invite.accept", { invite_id: inviteId });
    invites.delete(inviteId);
    conv = new Conversation(String(ack.conversation_id));
    conv.apply(ack, staff.orgKeys);
    conv.bridge = { state: "joined", epoch: conv.epoch };
    gone = null;
    const me = (ack.participants ?? []).find(
      (/** @type {Json} */ p) => p.role === "officer" && p.device_id === staff.deviceId,
    );
    const since = String(me?.since ?? new Date().toISOString());
    $("scope-since").dataset.since = since;
    $("scope-since").textContent = t("scope.since", { time: clock(since) });
    $("messages").replaceChildren();
    status("chat-status", "");
    show("chat");
    render();
    await conv.fetchHistory(staff, 0, onMessage);
  } catch {
    invites.delete(inviteId);
    renderInvites();
    status("invites-status", t("invite.gone"));
  }
}

// --- the conversation ----------------------------------------------------------------------------

/** @param {Json} item */
function onMessage(item) {
  if (!conv || item.conversation_id !== conv.id || conv.seen.has(item.seq)) return;
  const opened = conv.open(item, "investigation");
  if (!opened) return;
  const marks =
    opened.envelope.kind === "needs_note"
      ? [{ kind: "needs-note", key: "message.needsNote" }]
      : [];
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
  const p = event.participant ?? {};
  if (p.device_id === staff.deviceId && event.event !== "joined" && !gone) {
    gone = event.event === "left" ? "left" : "removed";
  }
  for (const item of [...conv.pending.values()]) onMessage(item);
  render();
}

/** @param {Json} event */
function onBridgeState(event) {
  if (!conv || event.conversation_id !== conv.id) return;
  conv.applyBridgeState(event);
  const state = event.state;
  if (state === "ended" || state === "expired" || state === "declined") {
    gone = event.reason === "officer_left" ? "left" : `removed.${event.reason ?? state}`;
  }
  if (typeof event.notice === "string") renderNotice($("messages"), event.notice);
  render();
}

/** @param {Json} event */
function onClosed(event) {
  if (!conv || event.conversation_id !== conv.id) return;
  if (!gone) gone = "removed.closed";
  render();
}

function render() {
  if (!conv) return;
  const names = [t("who.victim"), t("who.counsellor")];
  if (!gone) names.push(`${t("who.you")} (${t("who.officer")})`);
  $("who").textContent = t("who.label", { names: names.join(t("who.and")) });
  const state = conv.bridge?.state;
  const box = $("officer-state");
  const paused = !gone && state === "paused";
  let text = "";
  if (gone === "left") text = t("officer.left");
  else if (gone) text = t(`officer.${gone}`) === `officer.${gone}` ? t("officer.removed") : t(`officer.${gone}`);
  else if (paused) {
    const key = `officer.paused.${conv.bridge?.reason ?? ""}`;
    text = t(key) === key ? t("officer.paused") : t(key);
  }
  box.textContent = text;
  box.hidden = !text;
  box.classList.toggle("removed", Boolean(gone));
  box.classList.toggle("paused", paused);
  $("compose").hidden = Boolean(gone);
  for (const id of ["compose-text", "send"]) {
    /** @type {HTMLInputElement} */ ($(id)).disabled = paused;
  }
  $("leave").hidden = Boolean(gone);
  $("back").hidden = !gone;
}

/** @param {SubmitEvent} event */
async function onSend(event) {
  event.preventDefault();
  if (!conv || gone) return;
  const input = /** @type {HTMLTextAreaElement} */ ($("compose-text"));
  const text = input.value.trim();
  if (!text) return;
  await sendWritten(staff.outbox, conv.build(staff, text, ["care", "investigation"]), input, text, () =>
    status("chat-status", t("compose.queued")),
  );
}

async function leave() {
  if (!conv || gone) return;
  try {
    await staff.call("bridge.end", { conversation_id: conv.id });
    gone = "left";
    render();
  } catch (err) {
    if (err instanceof ApiError && err.code === "no_consent") {
      gone = "removed";
      render();
    } else {
      status("chat-status", t("error.generic"));
    }
  }
}

async function backToInvites() {
  conv = null;
  gone = null;
  show("invites");
  await refreshInvites();
}

/** After a reconnect: join the conversation again, unless this officer is out of it. */
async function rejoin() {
  if (!conv || gone) return;
  try {
    const ack = await staff.call("conversation.join", { conversation_id: conv.id });
    conv.apply(ack.conversation, staff.orgKeys);
    await conv.fetchHistory(staff, conv.resumeFrom(false), onMessage);
  } catch (err) {
    if (err instanceof ApiError && (err.code === "no_consent" || err.code === "forbidden")) {
      gone = "removed";
    }
  }
  render();
}

// --- start -----------------------------------------------------------------------------------------

async function main() {
  setupLanguage(() => {
    render();
    renderInvites();
    const since = $("scope-since").dataset.since;
    if (since) $("scope-since").textContent = t("scope.since", { time: clock(since) });
    if (staff.connection.connected) status("conn-status", t("conn.online"));
  });
  $("compose").addEventListener("submit", (e) => onSend(/** @type {SubmitEvent} */ (e)));
  $("leave").addEventListener("click", leave);
  $("back").addEventListener("click", backToInvites);
  await crypto.ready();
  document.body.dataset.ready = "";
  await loginFlow(staff);
  show("invites");
  status("conn-status", t("conn.connecting"));
  setInterval(renderInvites, 15_000); // expired invites disappear by themselves
  staff.connect({
    onReady: async () => {
      status("conn-status", t("conn.online"));
      await refreshInvites();
      await rejoin();
    },
    onDown: (text) => status("conn-status", text),
    events: {
      invite: onInvite,
      message: onMessage,
      participant: onParticipant,
      "bridge.state": onBridgeState,
      "conversation.closed": onClosed,
    },
  });
}

main();
