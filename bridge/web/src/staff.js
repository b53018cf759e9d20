// What the counsellor's and the officer's consoles share: login, unlocking the org key, the
// device key and the socket, and how a message is shown.
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
