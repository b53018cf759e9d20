// What the counsellor's and the officer's consoles share: login, unlocking the org key,
// the device key, the socket, and verifying, opening and building envelopes.
//
// Keys live in this page's memory only: a reload means logging in and unlocking again. The org
// passphrase never leaves the browser (the org key is opened here with Argon2id). Server data is
// only ever put into the page as text nodes.

import * as crypto from "./crypto.js";
import { ApiError, apiCall } from "./api.js";
import { $, insertBySeq, label, messageItem, show, status, t, useStrings } from "./page.js";
import { logIn } from "./login.js";
import { Connection } from "./socket.js";
import en from "./i18n/staff.en.json";
import nl from "./i18n/staff.nl.json";

export { crypto };

/** @typedef {Record<string, any>} Json */

useStrings({ nl, en });

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
    this.connection = new Connection();
    /** Messages written, kept until acknowledged and sent again after a reconnect. */
    this.outbox = this.connection.outbox;
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
   * in the outbox. `onDown` gets the connection's state as text ("" while it is up).
   * @param {{onReady: () => Promise<void> | void, onDown: (text: string) => void,
   *          events: Record<string, (data: Json) => void>}} handlers
   */
  connect({ onReady, onDown, events }) {
    this.connection.open(/** @type {string} */ (this.token), {
      up: async () => {
        const ack = await this.call("device.register", /** @type {any} */ (this.keys).registration());
        this.deviceId = String(ack.device_id);
        onDown("");
        await onReady();
      },
      down: () => onDown(t("conn.down")),
      failed: () => {
        if (this.connection.connected) onDown(t("conn.failed"));
      },
      // A refused token (logged out, expired) will not get better by trying again.
      refused: () => onDown(t("conn.refused")),
      events,
    });
  }

  /** An event with its ack (see Connection.call). @param {string} event @param {Json} payload */
  call(event, payload) {
    return this.connection.call(event, payload);
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

// --- the message list ----------------------------------------------------------------------------

/**
 * Put one message into `list`, in seq order, once.
 * @param {HTMLElement} list @param {number} seq
 * @param {{text: string | null, time: string, role: string, own: boolean,
 *          marks: {kind: string, key: string}[]}} message
 */
export function renderMessage(list, seq, { text, time, role, own, marks }) {
  if (list.querySelector(`li[data-seq="${seq}"]`)) return;
  const sender = own ? "sender.you" : `sender.${role}`;
  const li = messageItem(seq, role, `from-${role}${own ? " own" : ""}`, { sender, time, text });
  for (const mark of marks) {
    li.classList.add(mark.kind);
    li.append(label("p", `message-mark ${mark.kind}`, mark.key));
  }
  insertBySeq(list, li);
}

/**
 * Wire the login and unlock forms; resolves once the org key is open.
 * @param {Staff} staff
 */
export async function loginFlow(staff) {
  await logIn((username, password) => staff.login(username, password), `login.wrongRole.${staff.role}`);
  show("unlock");
  return new Promise((resolve) => {
    $("unlock-form").addEventListener("submit", async (event) => {
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
