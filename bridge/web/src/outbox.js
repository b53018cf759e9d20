// Sends that survive a dropped connection, for every page that writes messages.
//
// Each envelope is kept until the server acknowledges it. After a reconnect (once the page has
// joined its conversation again) every envelope still waiting is sent again, in the order
// written and with the same client_msg_id: the server answers a true resend with the original
// seq and does not deliver it twice. Sends go out one at a time, so seqs follow the order written.

/** @typedef {Record<string, any>} Json */

/**
 * @typedef {{envelope: Json, resolve: (seq: number) => void, reject: (err: Error) => void}} Item
 */

const RATE_LIMIT_PAUSE_MS = 1_000;

/** An error the server answered with (it has a protocol error code): sending again won't help. */
function refused(/** @type {unknown} */ err) {
  return typeof (/** @type {{code?: unknown}} */ (err)?.code) === "string";
}

export class Outbox {
  /**
   * @param {(event: string, payload: Json) => Promise<Json>} call an acked call that rejects
   *   with an error carrying `code` for a refusal, and without one for a lost connection or
   *   a missing answer
   */
  constructor(call) {
    this.call = call;
    /** @type {Map<string, Item>} client_msg_id -> waiting send, in the order written */
    this.waiting = new Map();
    /** Connected and back in the conversation: sends go out now. */
    this.up = false;
    /** @type {Promise<void>} the sends in flight, one after the other */
    this.chain = Promise.resolve();
  }

  /** Envelopes written but not yet acknowledged. */
  get size() {
    return this.waiting.size;
  }

  /**
   * Send `envelope`: resolves with its seq once the server has it (however many reconnects that
   * takes), rejects if the server refuses it.
   * @param {Json} envelope
   * @returns {Promise<number>}
   */
  send(envelope) {
    return new Promise((resolve, reject) => {
      const id = String(envelope.client_msg_id);
      this.waiting.set(id, { envelope, resolve, reject });
      if (this.up) this.enqueue(id);
    });
  }

  /** The connection is gone: what is waiting stays until `resume`. */
  down() {
    this.up = false;
  }

  /** Back in the conversation after a (re)connect: send again everything still waiting. */
  resume() {
    this.up = true;
    for (const id of this.waiting.keys()) this.enqueue(id);
    return this.chain;
  }

  /** @param {string} id */
  enqueue(id) {
    this.chain = this.chain.then(() => this.attempt(id));
  }

  /** @param {string} id */
  async attempt(id) {
    for (;;) {
      const item = this.waiting.get(id);
      if (!item || !this.up) return; // answered already, or down again: the next resume sends it
      try {
        const ack = await this.call("message.send", { envelope: item.envelope });
        this.waiting.delete(id);
        item.resolve(Number(ack.seq));
        return;
      } catch (err) {
        if (refused(err) && /** @type {{code: string}} */ (err).code === "rate_limited") {
          await new Promise((resolve) => setTimeout(resolve, RATE_LIMIT_PAUSE_MS));
        } else if (refused(err)) {
          this.waiting.delete(id);
          item.reject(/** @type {Error} */ (err));
          return;
        } else {
          return; // no answer: it stays, and goes again after the reconnect
        }
      }
    }
  }
}
