// What the counsellor's and the officer's consoles share: text, login, unlocking the org key,
// the device key, the socket, and verifying, opening and building envelopes.
//
// Keys live in this page's memory only: a reload means logging in and unlocking again. The org
// passphrase never leaves the browser (the org key is opened here with Argon2id). Server data is
// only ever put into the page as text nodes.

import { io } from "socket.io-client";
import * as crypto from "./crypto.js";
import { Outbox } from "./outbox.js";
import { ApiError, apiCall } from "./api.js";
import en from "./i18n/staff.en.json";
import nl from "./i18n/staff.nl.json";

export { crypto, Outbox };

/** @typedef {Record<string, any>} Json */

const STRINGS = /** @type {Record<string, Record<string, string>>} */ ({ nl, en });
const ACK_TIMEOUT_MS = 15_000;
// After the server closed the socket itself (a restart, or this page reading too slowly), try
// again after a pause of this much, with jitter so that many consoles do not come back at once.
const SERVER_CLOSED_RETRY_MS = 500;

let lang = "nl";

// --- text and the page ---------------------------------------------------------------------------

/** @param {string} id */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {string} key @param {Record<string, string>} [values] */
export function t(key, values = {}) {
  const text = STRINGS[lang]?.[key] ?? STRINGS.nl[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
}

const LANG_KEY = "fier.staff.lang";

/** Fill every `[data-i18n]` element with its text, in the page's language. @param {string} title */
export function applyLanguage(title) {
  const code = document.documentElement.lang;
  lang = Object.hasOwn(STRINGS, code) ? code : "nl";
  document.documentElement.dir = t("dir") === "rtl" ? "rtl" : "ltr";
  document.title = t(title);
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(/** @type {string} */ (/** @type {HTMLElement} */ (el).dataset.i18n));
  }
  const other = lang === "nl" ? "en" : "nl";
  const button = document.getElementById("lang-switch");
  if (button) button.lang = other;
}

/**
 * The Dutch/English switch: Dutch by default, the choice kept for this tab. `onChange` redraws
 * what the page built from text itself.
 * @param {string} title @param {() => void} [onChange]
 */
export function setupLanguage(title, onChange = () => {}) {
  let stored = null;
  try {
    stored = sessionStorage.getItem(LANG_KEY);
  } catch {
    // no storage: Dutch
  }
  document.documentElement.lang = stored && Object.hasOwn(STRINGS, stored) ? stored : "nl";
  applyLanguage(title);
  document.getElementById("lang-switch")?.addEventListener("click", () => {
    const next = lang === "nl" ? "en" : "nl";
    try {
      sessionStorage.setItem(LANG_KEY, next);
    } catch {
      // the choice then lasts until a reload
    }
    document.documentElement.lang = next;
    applyLanguage(title);
    onChange();
  });
}

/** @param {string} iso */
export function clock(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString(lang === "en" ? "en-GB" : "nl-NL", {
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** @param {string} name */
export function show(name) {
  for (const view of document.querySelectorAll(".view")) {
    /** @type {HTMLElement} */ (view).hidden = view.id !== `view-${name}`;
  }
  const heading = /** @type {HTMLElement | null} */ (document.querySelector(`#view-${name} h1`));
  heading?.focus();
}

/** @param {string} id @param {string} text */
export function status(id, text) {
  $(id).textContent = text;
}

/**
 * An element holding `text` as a text node.
 * @param {string} tag @param {string} [className] @param {string} [text]
 */
export function el(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

// --- login, unlock, socket -----------------------------------------------------------------------

/** One logged-in staff member in this page: token, org key, device key and socket. */
export class Staff {
  /** @param {"counsellor" | "officer"} role */
  constructor(role) {
    this.role = role;
    /** @type {string | null} */
    this.token = null;
    /** @type {Json} */
    this.session = {};
    /** @type {Uint8Array | null} */
    this.orgKey = null;
    /** @type {crypto.DeviceKeys | null} */
    this.keys = null;
    /** @type {string | null} */
    this.deviceId = null;
    /** @type {import("socket.io-client").Socket | null} */
    this.socket = null;
    /** Messages written, kept until acknowledged and sent again after a reconnect. */
    this.outbox = new Outbox((event, payload) => this.call(event, payload));
  }

  /** @param {string} path @param {Json} [body] */
  async api(path, body) {
    return apiCall(path, this.token, body);
  }

  /** `POST /api/v1/session`; a staff member of another role is refused (`wrong_role`). */
  async login(/** @type {string} */ username, /** @type {string} */ password) {
    const session = await this.api("/api/v1/session", { username, password });
    if (session.role !== this.role) throw new ApiError("wrong_role");
    this.session = session;
    this.token = session.token;
  }

  /** Fetch the sealed org key and open it here with the passphrase (Argon2id). */
  async unlock(/** @type {string} */ passphrase) {
    await crypto.ready();
    const sealed = await this.api(`/api/v1/orgs/${encodeURIComponent(this.session.org)}/sealed-key`);
    // Let the page show that it is busy before Argon2id takes the main thread.
    await new Promise((resolve) => setTimeout(resolve, 20));
    this.orgKey = crypto.openOrgKey(sealed, passphrase);
    this.keys = crypto.DeviceKeys.generate();
  }

  /**
   * Connect; on every (re)connect register the device (same keys, same device id), call
   * `onReady` (which joins again and fetches what was missed), then send again what is waiting
   * in the outbox. A dropped connection is tried again by socket.io-client itself; a socket the
   * server closed, by this page after a pause. A refused token is not tried again.
   * @param {{onReady: () => Promise<void> | void, onDown: (text: string) => void,
   *          events: Record<string, (data: Json) => void>}} handlers
   */
  connect({ onReady, onDown, events }) {
    const socket = io({ auth: { token: this.token }, transports: ["websocket"] });
    this.socket = socket;
    socket.on("connect", async () => {
      try {
        const ack = await this.call("device.register", /** @type {any} */ (this.keys).registration());
        this.deviceId = String(ack.device_id);
        onDown("");
        await onReady();
        await this.outbox.resume();
      } catch {
        if (socket.connected) onDown(t("conn.failed"));
      }
    });
    socket.on("disconnect", (reason) => {
      this.outbox.down();
      onDown(t("conn.down"));
      if (reason === "io server disconnect") {
        setTimeout(() => socket.connect(), SERVER_CLOSED_RETRY_MS * (1 + Math.random()));
      }
    });
    socket.on("connect_error", (err) => {
      // A refused token (logged out, expired) will not get better by trying again.
      const refusedToken = /** @type {any} */ (err)?.data?.code === "unauthenticated";
      onDown(refusedToken ? t("conn.refused") : t("conn.down"));
    });
    for (const [name, handler] of Object.entries(events)) socket.on(name, handler);
  }

  /** Emit with an ack; the ack of an accepted event, else a ApiError with its code. While
   * the socket is down this fails at once (a plain Error: nothing was refused). */
  async call(/** @type {string} */ event, /** @type {Json} */ payload) {
    // socket.io-client would buffer it and send it on reconnect, before the device is registered.
    if (!this.socket?.connected) throw new Error("not connected");
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (!ack || ack.ok !== true) throw new ApiError(ack?.error?.code ?? "internal");
    return ack;
  }
}

// --- one conversation ----------------------------------------------------------------------------

/** What a console knows of one conversation: signers, keys to seal to and to open with. */
export class Conversation {
  /** @param {string} id */
  constructor(id) {
    this.id = id;
    /** @type {string | null} */
    this.state = null;
    /** @type {Map<string, Json>} device_id -> participant */
    this.participants = new Map();
    /** @type {string | null} */
    this.carePublic = null;
    /** @type {Json | null} */
    this.victimDevice = null;
    /** @type {Json | null} {epoch_id, public} */
    this.epoch = null;
    /** @type {Json | null} */
    this.bridge = null;
    /** @type {Map<string, Uint8Array>} "care" or an epoch id -> opened scope key */
    this.scopeKeys = new Map();
    /** @type {Map<number, Json>} messages whose signer is not known yet */
    this.pending = new Map();
    /** @type {Set<number>} */
    this.seen = new Set();
  }

  /**
   * Where to fetch history from after a reconnect: the last seq up to which every message is
   * here when this reader sees every message (`everySeq`: victim and counsellor), else the last
   * seq seen (the officer reads only its epoch, so its seqs have gaps).
   * @param {boolean} everySeq
   */
  resumeFrom(everySeq) {
    if (!everySeq) return Math.max(0, ...this.seen);
    let seq = 0;
    while (this.seen.has(seq + 1)) seq += 1;
    return seq;
  }

  /**
   * Apply a `conversation.join` answer or an `invite.accept` ack; open the scope keys it carries.
   * @param {Json} data @param {Uint8Array} orgKey
   */
  apply(data, orgKey) {
    if (typeof data.state === "string") this.state = data.state;
    const care = data.care_scope ?? {};
    if (care.public) this.carePublic = care.public;
    if (care.sealed_private && !this.scopeKeys.has("care")) {
      this.scopeKeys.set("care", crypto.openScopeKey(care.sealed_private, orgKey));
    }
    if ("bridge" in data) this.bridge = data.bridge ? { ...data.bridge } : null;
    const epoch = data.epoch ?? this.bridge?.epoch ?? null;
    if (epoch) {
      this.epoch = { epoch_id: epoch.epoch_id, public: epoch.public };
      if (epoch.sealed_private && !this.scopeKeys.has(epoch.epoch_id)) {
        this.scopeKeys.set(epoch.epoch_id, crypto.openScopeKey(epoch.sealed_private, orgKey));
      }
    }
    if (data.victim_device) {
      this.victimDevice = data.victim_device;
      this.participants.set(data.victim_device.device_id, {
        role: "victim",
        ...data.victim_device,
      });
    }
    for (const p of data.participants ?? []) this.participants.set(p.device_id, p);
  }

  /** @param {Json} event a `bridge.state` event */
  applyBridgeState(event) {
    const { conversation_id: _id, notice: _notice, ...state } = event;
    if (this.bridge?.request_id === state.request_id && this.bridge?.epoch && !state.epoch) {
      state.epoch = this.bridge.epoch;
    }
    this.bridge = state;
    if (state.epoch) this.epoch = { epoch_id: state.epoch.epoch_id, public: state.epoch.public };
  }

  /** @param {Json} event a `participant` event */
  applyParticipant(event) {
    const p = event.participant;
    if (!p) return;
    if (event.event === "joined") {
      this.participants.set(p.device_id, p);
    } else {
      // Keep the key, to verify earlier messages; mark the participant as gone.
      this.participants.set(p.device_id, { ...this.participants.get(p.device_id), ...p, gone: true });
    }
  }

  /** Participants present now, of `role`. @param {string} role */
  present(role) {
    return [...this.participants.values()].filter((p) => p.role === role && !p.gone);
  }

  /**
   * Verify and open a relayed message. `null` while its signer is unknown (kept in `pending`).
   * @param {Json} item @param {string} keyName "care" or "investigation"
   * @returns {{text: string | null, time: string, role: string, envelope: Json} | null}
   */
  open(item, keyName) {
    const envelope = item.envelope ?? {};
    const signer = this.participants.get(envelope.sender?.device_id ?? "");
    if (!signer) {
      this.pending.set(item.seq, item);
      return null;
    }
    this.pending.delete(item.seq);
    this.seen.add(item.seq);
    let text = null;
    let sentAt = null;
    try {
      if (signer.role !== envelope.sender.role) throw new crypto.CryptoError("role mismatch");
      if (envelope.conversation_id !== this.id) throw new crypto.CryptoError("another conversation");
      crypto.verifyEnvelope(envelope, signer.ed25519);
      const slot = keyName === "care" ? "care" : String(envelope.epoch_id ?? "");
      const key = this.scopeKeys.get(slot);
      if (!key) throw new crypto.CryptoError("no key for this scope");
      const plain = crypto.openEnvelope(envelope, keyName, key);
      text = typeof plain.text === "string" ? plain.text : null;
      sentAt = typeof plain.sent_at === "string" ? plain.sent_at : null;
    } catch {
      text = null;
    }
    return { text, time: sentAt ?? item.server_time, role: String(envelope.sender.role), envelope };
  }

  /**
   * A signed envelope from this console's device.
   * @param {Staff} staff @param {string} text @param {string[]} audience @param {string} [kind]
   */
  build(staff, text, audience, kind = "message") {
    /** @type {Record<string, string>} */
    const recipients = {
      victim: String(this.victimDevice?.x25519),
      care: String(this.carePublic),
    };
    const investigation = audience.includes("investigation");
    if (investigation) recipients.investigation = String(this.epoch?.public);
    const keys = /** @type {crypto.DeviceKeys} */ (staff.keys);
    return crypto.buildEnvelope({
      conversationId: this.id,
      clientMsgId: globalThis.crypto.randomUUID(),
      senderRole: staff.role,
      deviceId: String(staff.deviceId),
      kind,
      audience,
      epochId: investigation ? (this.epoch?.epoch_id ?? null) : null,
      plaintext: { text, sent_at: new Date().toISOString() },
      recipients,
      signingKey: keys.signingKey,
    });
  }

  /** Every message after `after`, page by page, passed to `onItem`. */
  async fetchHistory(
    /** @type {Staff} */ staff,
    /** @type {number} */ after,
    /** @type {(item: Json) => void} */ onItem,
  ) {
    let cursor = after;
    for (;;) {
      const ack = await staff.call("history.fetch", {
        conversation_id: this.id,
        after_seq: cursor,
        limit: 500,
      });
      const items = /** @type {Json[]} */ (ack.messages);
      for (const item of items) onItem({ ...item, conversation_id: this.id });
      if (items.length < 500) return;
      cursor = Math.max(cursor, ...items.map((m) => m.seq));
    }
  }
}

/** An element with our own text, redrawn on a language switch. @param {string} tag
 * @param {string} className @param {string} key */
function label(tag, className, key) {
  const node = el(tag, className, t(key));
  node.dataset.i18n = key;
  return node;
}

// --- the message list ----------------------------------------------------------------------------

/**
 * Put one message into `list`, in seq order, once.
 * @param {HTMLElement} list @param {number} seq
 * @param {{text: string | null, time: string, role: string, own: boolean,
 *          marks: {kind: string, key: string}[]}} message
 */
export function renderMessage(list, seq, { text, time, role, own, marks }) {
  if (list.querySelector(`li[data-seq="${seq}"]`)) return;
  const li = el("li", `message from-${role}${own ? " own" : ""}`);
  li.dataset.seq = String(seq);
  li.dataset.sender = role;
  const head = el("p", "message-head");
  const when = el("time", "", clock(time));
  /** @type {HTMLTimeElement} */ (when).dateTime = time;
  head.append(label("span", "sender", own ? "sender.you" : `sender.${role}`), " ", when);
  const body = text === null ? label("p", "message-text", "message.unreadable") : el("p", "message-text", text);
  if (text === null) li.classList.add("unreadable");
  li.append(head, body);
  for (const mark of marks) {
    li.classList.add(mark.kind);
    li.append(label("p", `message-mark ${mark.kind}`, mark.key));
  }
  const after = [...list.children].find(
    (c) => c instanceof HTMLElement && c.dataset.seq && Number(c.dataset.seq) > seq,
  );
  list.insertBefore(li, after ?? null);
  li.scrollIntoView({ block: "nearest" });
}

/** A system line in `list` (states, joins), as text. @param {HTMLElement} list @param {string} text */
export function renderNotice(list, text) {
  if (!text) return;
  const li = el("li", "notice", text);
  list.append(li);
  li.scrollIntoView({ block: "nearest" });
}

/**
 * Wire the login and unlock forms; resolves once the org key is open.
 * @param {Staff} staff
 */
export function loginFlow(staff) {
  return new Promise((resolve) => {
    const loginForm = /** @type {HTMLFormElement} */ ($("login-form"));
    const unlockForm = /** @type {HTMLFormElement} */ ($("unlock-form"));
    loginForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = /** @type {HTMLButtonElement} */ ($("login-submit"));
      button.disabled = true;
      status("login-status", t("login.busy"));
      try {
        const user = /** @type {HTMLInputElement} */ ($("login-username")).value.trim();
        const password = /** @type {HTMLInputElement} */ ($("login-password")).value;
        await staff.login(user, password);
        /** @type {HTMLInputElement} */ ($("login-password")).value = "";
        status("login-status", "");
        show("unlock");
      } catch (err) {
        const code = err instanceof ApiError ? err.code : "";
        status("login-status", code === "wrong_role" ? t(`login.wrongRole.${staff.role}`) : t("login.failed"));
      } finally {
        button.disabled = false;
      }
    });
    unlockForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = /** @type {HTMLButtonElement} */ ($("unlock-submit"));
      const input = /** @type {HTMLInputElement} */ ($("unlock-passphrase"));
      button.disabled = true;
      status("unlock-status", t("unlock.busy"));
      try {
        await staff.unlock(input.value);
        input.value = "";
        status("unlock-status", "");
        resolve(undefined);
      } catch {
        status("unlock-status", t("unlock.failed"));
        button.disabled = false;
      }
    });
  });
}
