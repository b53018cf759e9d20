// The Socket.IO connection every chat page keeps to the bridge: connect with a token, come back
// by itself after a drop, call an event and wait for its ack, and an outbox that sends again what
// was written while the connection was gone.

import { io } from "socket.io-client";
import { ApiError } from "./api.js";
import { Outbox } from "./outbox.js";
import { status, t } from "./page.js";

/** @typedef {Record<string, any>} Json */

const ACK_TIMEOUT_MS = 15_000;
// After the server closed the socket itself (a restart, or this page reading too slowly), try
// again after a pause of this much, with jitter so that many pages do not come back at once.
const SERVER_CLOSED_RETRY_MS = 500;

/**
 * @typedef {object} Handlers
 * @property {() => Promise<void>} up on every (re)connect, before the outbox sends again: join
 *   again and fetch what was missed
 * @property {() => void} down the connection is gone (socket.io-client tries again by itself)
 * @property {() => void} failed `up` failed
 * @property {() => void} refused the token is refused: trying again will not help
 * @property {Record<string, (data: Json) => void>} events the server's events, by name
 */

export class Connection {
  constructor() {
    /** @type {import("socket.io-client").Socket | null} */
    this.socket = null;
    /** Messages written, kept until acknowledged and sent again after a reconnect. */
    this.outbox = new Outbox((event, payload) => this.call(event, payload));
  }

  get connected() {
    return Boolean(this.socket?.connected);
  }

  /**
   * Connect with `token`. A dropped connection is tried again by socket.io-client itself; a
   * socket the server closed, by this page after a pause; a refused token, not at all.
   * @param {string} token @param {Handlers} handlers
   */
  open(token, { up, down, failed, refused, events }) {
    // Polling first, upgraded after a probe: a blocked or hanging websocket never stalls the chat.
    const socket = io({ auth: { token } });
    this.socket = socket;
    socket.on("connect", async () => {
      try {
        await up();
        await this.outbox.resume();
      } catch {
        failed();
      }
    });
    socket.on("disconnect", (reason) => {
      this.outbox.down();
      down();
      if (reason === "io server disconnect") {
        setTimeout(() => socket.connect(), SERVER_CLOSED_RETRY_MS * (1 + Math.random()));
      }
    });
    socket.on("connect_error", (err) => {
      if (/** @type {any} */ (err)?.data?.code === "unauthenticated") refused();
      else down();
    });
    for (const [name, handler] of Object.entries(events)) socket.on(name, handler);
  }

  /** Close the connection for good. */
  close() {
    this.socket?.disconnect();
    this.socket = null;
  }

  /**
   * Emit with an ack: the ack of an accepted event, else an ApiError with its code. While the
   * socket is down this fails at once with a plain Error (nothing was refused).
   * @param {string} event @param {Json} payload
   */
  async call(event, payload) {
    // socket.io-client would buffer it and send it on reconnect, before the page joined again.
    if (!this.socket?.connected) throw new Error("not connected");
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (!ack || ack.ok !== true) throw new ApiError(ack?.error?.code ?? "internal");
    return ack;
  }
}

/**
 * Send `envelope`, made of `text` written in `input`, through `outbox`. Written is as good as
 * sent: the box empties at once and the outbox sends it again after a reconnect; `whileDown`
 * says so in `#chat-status` while the connection is down. A refusal puts the text back.
 * @param {Outbox} outbox @param {Json} envelope @param {HTMLTextAreaElement} input
 * @param {string} text @param {() => void} whileDown
 */
export async function sendWritten(outbox, envelope, input, text, whileDown) {
  const sent = outbox.send(envelope);
  input.value = "";
  if (outbox.up) status("chat-status", "");
  else whileDown();
  try {
    await sent;
    status("chat-status", "");
  } catch {
    status("chat-status", t("compose.failed"));
    if (!input.value) input.value = text;
  }
}
