// The victim of a driegesprek in Node: socket.io-client as the browser pages use it, and the
// victim page's own modules (bridge/web/src: its Conversation, its consent grant, its crypto), so
// that what is checked is the pages' code, not a copy. tests/integration/test_node_clients.py
// runs it and drives it one line at a time:
//
//   node tests/node/victim.mjs BASE_URL [--polling-only]
//
// Without --polling-only the socket has socket.io-client's default options (long-polling first,
// then upgraded to a websocket); with it, `transports: ["polling"]`.
//
// stdin: one command a line, `{"id": n, "do": NAME, ...arguments}`, answered in order on stdout
// as `{"id": n, "ok": true, ...}` or `{"id": n, "ok": false, "error": CODE}`. Every event the
// victim gets is a stdout line `{"event": NAME, "data": {...}}` as it comes; a `message` is given
// as read by the victim, `{seq, role, kind, audience, text}` (`text` null unless the signature
// verified and the envelope opened). `engine.upgrade` says the transport was upgraded. Tokens and
// private keys are never written out. The program ends when stdin ends.

import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { Conversation } from "../../bridge/web/src/conversation.js";
import * as crypto from "../../bridge/web/src/crypto.js";
import { grantPayload } from "../../bridge/web/src/victim/consent.js";

/** @typedef {Record<string, any>} Json */

// socket.io-client is installed beside the pages, not here: resolve it from there.
const { io } = createRequire(new URL("../../bridge/web/package.json", import.meta.url))(
  "socket.io-client",
);

const ACK_TIMEOUT_MS = 10_000;
const [base, ...flags] = process.argv.slice(2);
const pollingOnly = flags.includes("--polling-only");

/** A refusal by the bridge, with the protocol's error code. */
class Refused extends Error {
  /** @param {string} code */
  constructor(code) {
    super(code);
    this.code = code;
  }
}

/** @param {Json} line */
function write(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** @param {string} path @param {Json} [body] */
async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  const init = body ? { method: "POST", headers, body: JSON.stringify(body) } : {};
  const response = await fetch(new URL(path, base), { ...init, cache: "no-store" });
  const data = await response.json();
  if (!response.ok) throw new Refused(data?.error?.code ?? `http_${response.status}`);
  return { status: response.status, data };
}

/**
 * This victim once the chat is started: her device and keys, the conversation as the page keeps
 * it, the socket, the transport it opened with (an upgrade may follow before it connects), and
 * the last consent question.
 * @type {{keys: crypto.DeviceKeys, deviceId: string, conv: Conversation,
 *   socket: import("socket.io-client").Socket, firstTransport: string | null,
 *   prompt: Json | null} | null}
 */
let chat = null;

function started() {
  if (!chat) throw new Error("no chat started");
  return chat;
}

/** @param {string} event @param {Json} payload the raw ack */
async function emit(event, payload) {
  return started().socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
}

/** @param {string} event @param {Json} payload the ack of an accepted event */
async function call(event, payload) {
  const ack = await emit(event, payload);
  if (!ack || ack.ok !== true) throw new Refused(ack?.error?.code ?? "internal");
  return ack;
}

/** A relayed message, verified and opened as the victim's page does. @param {Json} item */
function onMessage(item) {
  const { conv } = started();
  if (item.conversation_id !== conv.id || conv.seen.has(item.seq)) return;
  const opened = conv.open(item, "victim");
  if (!opened) return; // its signer is not known yet: shown once the participant joins
  const { envelope, role, text } = opened;
  write({
    event: "message",
    data: { seq: item.seq, role, kind: envelope.kind, audience: envelope.audience, text },
  });
}

/** @type {Record<string, (data: Json) => void>} what the page keeps of each event */
const APPLY = {
  "bridge.state": (event) => started().conv.applyBridgeState(event),
  "consent.prompt": (event) => {
    started().prompt = event;
  },
  participant: (event) => started().conv.applyParticipant(event),
};

/** @param {import("socket.io-client").Socket} socket */
function listen(socket) {
  socket.onAny((name, data) => {
    if (name === "message") return onMessage(data);
    APPLY[name]?.(data);
    write({ event: name, data });
    if (name === "participant" && data.event === "joined") {
      for (const item of [...started().conv.pending.values()]) onMessage(item);
    }
  });
  socket.io.on("open", () => {
    started().firstTransport ??= socket.io.engine.transport.name;
    socket.io.engine.on("upgrade", (transport) => {
      write({ event: "engine.upgrade", data: { transport: transport.name } });
    });
  });
}

/** @param {import("socket.io-client").Socket} socket */
function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(undefined));
    socket.once("connect_error", (err) => reject(new Refused(err?.data?.code ?? "connect_error")));
  });
}

/** The commands, by name. @type {Record<string, (args: Json) => Promise<Json>>} */
const COMMANDS = {
  /** Start a chat as the victim's page does: keys, `POST /api/v1/conversations`, connect, join. */
  async start({ lang }) {
    const fier = (await api("/api/v1/orgs/fier/key")).data;
    const keys = crypto.DeviceKeys.generate();
    const care = crypto.ScopeKey.generate();
    const created = await api("/api/v1/conversations", {
      lang,
      device: { ed25519: keys.ed25519, x25519: keys.x25519 },
      care_scope: care.asPayload(fier.x25519, fier.key_id),
    });
    const { conversation_id: id, victim_token: token, device_id: deviceId } = created.data;
    const conv = new Conversation(id);
    conv.scopeKeys.set("victim", keys.boxPrivate); // the victim opens with her own device key
    const options = pollingOnly ? { transports: ["polling"] } : {};
    const socket = io(base, { auth: { token }, ...options });
    chat = { keys, deviceId, conv, socket, firstTransport: null, prompt: null };
    listen(socket);
    await connected(socket);
    const ack = await call("conversation.join", { conversation_id: id });
    conv.apply(ack.conversation, null);
    return {
      status: created.status,
      conversation_id: id,
      device_id: deviceId,
      first_transport: chat.firstTransport,
    };
  },

  /** Consent to the last question, as the page's "yes": a grant signed by this device. */
  async grant({ choices }) {
    const current = started();
    if (!current.prompt) throw new Error("no consent question");
    const avim = (await api("/api/v1/orgs/avim/key")).data;
    const { payload, scope } = grantPayload(current.prompt, choices, avim, current.keys);
    const ack = await call("consent.grant", payload);
    const { conv } = current;
    conv.epoch = { epoch_id: ack.epoch_id, public: scope.public };
    conv.bridge = { ...(conv.bridge ?? {}), epoch: conv.epoch };
    return { epoch_id: ack.epoch_id, receipt: ack.receipt, investigation_public: scope.public };
  },

  /** Write a message: to everyone while the police part is joined, unless `care_only`. */
  async send({ text, care_only: careOnly }) {
    const { conv, deviceId, keys } = started();
    const joined = conv.bridge?.state === "joined" && conv.bridge.epoch;
    const audience = joined && !careOnly ? ["care", "investigation"] : ["care"];
    const envelope = conv.build({ role: "victim", deviceId, keys }, text, audience);
    return { seq: (await call("message.send", { envelope })).seq };
  },

  /** A signed care envelope, built but not sent (for a payload made wrong on purpose). */
  async envelope({ text }) {
    const { conv, deviceId, keys } = started();
    return { envelope: conv.build({ role: "victim", deviceId, keys }, text, ["care"]) };
  },

  async withdraw() {
    await call("consent.withdraw", { conversation_id: started().conv.id });
    return {};
  },

  /** Any event with any payload; the answer is its raw ack. */
  async call({ event, payload }) {
    return { ack: await emit(event, payload) };
  },

  /** The Engine.IO transport the connection uses now. */
  async transport() {
    return { transport: started().socket.io.engine.transport.name };
  },
};

/** @param {string} line */
async function run(line) {
  const { id, do: name, ...args } = JSON.parse(line);
  try {
    const command = COMMANDS[name];
    if (!command) throw new Error(`unknown command ${name}`);
    write({ id, ok: true, ...(await command(args)) });
  } catch (err) {
    const code = err instanceof Refused ? err.code : String(/** @type {Error} */ (err)?.message);
    write({ id, ok: false, error: code });
  }
}

/** Leave as a closed page does: the server is told, the victim has left. */
async function leave() {
  if (!chat) return;
  const { transport } = chat.socket.io.engine;
  chat.socket.disconnect();
  // Over long-polling the close packet goes out in a POST of its own: wait until it is sent.
  if (transport.name === "polling") {
    await new Promise((resolve) => transport.once("drain", resolve));
  }
}

await crypto.ready();
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim()) await run(line);
}
await leave();
// engine.io's Python server answers a long-poll still open only when the poll times out, even
// after the close packet; nothing is left to wait for.
process.exit(0);
