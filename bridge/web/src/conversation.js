// What a page knows of one conversation, whoever reads it (victim, counsellor, officer): its
// participants and their keys, the bridge and its epoch, the scope keys to open with; verifying
// and opening relayed messages, building signed envelopes, fetching history.

import * as crypto from "./crypto.js";

/** @typedef {Record<string, any>} Json */

/**
 * Who writes: the role, the registered device and its keys.
 * @typedef {{role: string, deviceId: string | null, keys: crypto.DeviceKeys | null}} Sender
 */

/** An acked call: `Connection.call`, or `Staff.call`. @typedef {{call: (event: string,
 * payload: Json) => Promise<Json>}} Caller */

/** One conversation: signers, keys to seal to and to open with. */
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
    /** @type {Map<string, Uint8Array>} "victim", "care" or an epoch id -> the key to open with */
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
   * Apply a `conversation.join` answer or an `invite.accept` ack; open the scope keys it carries
   * with the versions of the org key they name (`key_id`), where those are open (the victim has
   * none: it opens with its own device key).
   * @param {Json} data @param {Map<string, Uint8Array> | null} orgKeys key id -> org key
   */
  apply(data, orgKeys) {
    if (typeof data.state === "string") this.state = data.state;
    const care = data.care_scope ?? {};
    if (care.public) this.carePublic = care.public;
    this.#open("care", care, orgKeys);
    if ("bridge" in data) this.bridge = data.bridge ? { ...data.bridge } : null;
    if (this.bridge && !this.bridge.epoch && data.epoch) this.bridge.epoch = data.epoch;
    const epoch = data.epoch ?? this.bridge?.epoch ?? null;
    if (epoch) {
      this.epoch = { epoch_id: epoch.epoch_id, public: epoch.public };
      this.#open(epoch.epoch_id, epoch, orgKeys);
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

  /**
   * Open a sealed scope key into `slot` with the org key version it names, if that is open.
   * @param {string} slot @param {Json} scope @param {Map<string, Uint8Array> | null} orgKeys
   */
  #open(slot, scope, orgKeys) {
    const orgKey = orgKeys?.get(scope.key_id);
    if (orgKey && scope.sealed_private && !this.scopeKeys.has(slot)) {
      this.scopeKeys.set(slot, crypto.openScopeKey(scope.sealed_private, orgKey));
    }
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
   * @param {Json} item @param {string} keyName "victim", "care" or "investigation"
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
      const slot = keyName === "investigation" ? String(envelope.epoch_id ?? "") : keyName;
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
   * A signed envelope from `sender`'s device.
   * @param {Sender} sender @param {string} text @param {string[]} audience @param {string} [kind]
   */
  build(sender, text, audience, kind = "message") {
    /** @type {Record<string, string>} */
    const recipients = {
      victim: String(this.victimDevice?.x25519),
      care: String(this.carePublic),
    };
    const investigation = audience.includes("investigation");
    if (investigation) recipients.investigation = String(this.epoch?.public);
    const keys = /** @type {crypto.DeviceKeys} */ (sender.keys);
    return crypto.buildEnvelope({
      conversationId: this.id,
      clientMsgId: globalThis.crypto.randomUUID(),
      senderRole: sender.role,
      deviceId: String(sender.deviceId),
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
    /** @type {Caller} */ caller,
    /** @type {number} */ after,
    /** @type {(item: Json) => void} */ onItem,
  ) {
    let cursor = after;
    for (;;) {
      const ack = await caller.call("history.fetch", {
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
