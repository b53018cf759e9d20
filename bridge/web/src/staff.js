// What the counsellor's and the officer's consoles share: login, unlocking the org key, the
// device key and the socket, and how a message is shown.
//
// Keys live in this page's memory only: a reload means logging in and unlocking again. The org
// passphrases never leave the browser (the org key is opened here with Argon2id). An org key may
// have several versions (after a rotation), each under a passphrase of its own, maybe the same:
// the page opens every version it can, and asks once more for each one it could not. Server data
// is only ever put into the page as text nodes.

import * as crypto from "./crypto.js";
import { ApiError, apiCall } from "./api.js";
import { $, insertBySeq, label, messageItem, show, status, t, useStrings } from "./page.js";
import { logIn } from "./login.js";
import { Connection } from "./socket.js";
import en from "./i18n/staff.en.json";
import nl from "./i18n/staff.nl.json";

/** @typedef {Record<string, any>} Json */

useStrings({ nl, en });

// --- login, unlock, socket -----------------------------------------------------------------------

/** One logged-in staff member in this page: token, org keys, device key and socket. */
export class Staff {
  /** @param {"counsellor" | "officer"} role */
  constructor(role) {
    this.role = role;
    /** @type {string | null} */
    this.token = null;
    /** @type {Json} */
    this.session = {};
    /** @type {Map<string, Uint8Array>} key id -> an opened version of the org key */
    this.orgKeys = new Map();
    /** @type {Map<string, Json>} key id -> that version as fetched, sealed (fetched once) */
    this.sealedKeys = new Map();
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

  /**
   * Open the versions of the org key `keyIds` (by default every one still locked) here with the
   * passphrase (Argon2id); the versions are fetched sealed the first time. Returns the key ids
   * still locked; a passphrase that opens none of `keyIds` is a DecryptionError.
   * @param {string} passphrase @param {string[]} [keyIds]
   */
  async unlock(passphrase, keyIds) {
    await crypto.ready();
    const org = encodeURIComponent(this.session.org);
    if (this.sealedKeys.size === 0) {
      const { versions } = await this.api(`/api/v1/orgs/${org}/key`);
      for (const { key_id: keyId } of versions) {
        const path = `/api/v1/orgs/${org}/sealed-key?key_id=${encodeURIComponent(keyId)}`;
        this.sealedKeys.set(keyId, await this.api(path));
      }
    }
    const trying = keyIds ?? this.locked();
    // Let the page show that it is busy before Argon2id takes the main thread.
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (const keyId of trying) {
      try {
        this.orgKeys.set(keyId, crypto.openOrgKey(this.sealedKeys.get(keyId) ?? {}, passphrase));
      } catch (err) {
        if (!(err instanceof crypto.DecryptionError)) throw err;
      }
    }
    if (!trying.some((keyId) => this.orgKeys.has(keyId))) {
      throw new crypto.DecryptionError("the passphrase opens none of these keys");
    }
    this.keys ??= crypto.DeviceKeys.generate();
    return this.locked();
  }

  /** The versions of the org key not opened (yet). */
  locked() {
    return [...this.sealedKeys.keys()].filter((keyId) => !this.orgKeys.has(keyId));
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
 * Wire the login and unlock forms; resolves once the org key is open. The first passphrase is
 * tried on every version of the key; for each version it did not open the page asks once more
 * (until the right passphrase, or the version is skipped).
 * @param {Staff} staff
 */
export async function loginFlow(staff) {
  await logIn((username, password) => staff.login(username, password), `login.wrongRole.${staff.role}`);
  show("unlock");
  const button = /** @type {HTMLButtonElement} */ ($("unlock-submit"));
  const input = /** @type {HTMLInputElement} */ ($("unlock-passphrase"));
  /** @type {string[] | null} the versions still to ask for, once the first passphrase is in */
  let asking = null;
  return new Promise((resolve) => {
    const next = () => {
      input.value = "";
      button.disabled = false;
      status("unlock-status", "");
      const keyId = asking?.[0];
      $("unlock-version").hidden = $("unlock-skip").hidden = !keyId;
      if (!keyId) {
        resolve(undefined);
        return;
      }
      $("unlock-version").textContent = t("unlock.another", { key: keyId });
      input.focus();
    };
    $("unlock-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      status("unlock-status", t("unlock.busy"));
      try {
        const locked = await staff.unlock(input.value, asking?.slice(0, 1));
        asking = asking === null ? locked : asking.filter((keyId) => locked.includes(keyId));
        next();
      } catch {
        status("unlock-status", t("unlock.failed"));
        button.disabled = false;
      }
    });
    $("unlock-skip").addEventListener("click", () => {
      asking = (asking ?? []).slice(1);
      next();
    });
  });
}
