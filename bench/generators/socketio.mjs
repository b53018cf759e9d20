// A load generator for the Socket.IO targets of bench/compare.py: the bridge (one node or two)
// and the bare python-socketio relay of bench/load.py. It keeps the generator contract of
// bench/peers/common.py:
//
//   node bench/generators/socketio.mjs CONFIG.json
//
// CONFIG: {target, url, rooms, rate, duration, warmup, payload_bytes, drain?, go_on_stdin?}.
// `drain`: seconds without a delivery or ack after which what has not arrived is lost. Every
// room's three members (victim, counsellor, officer) are connected from this process, over
// websockets as the pages connect, and send in turn to care + investigation, open-loop: message
// k is due at k / rate seconds, to room k mod rooms, whatever the acks do. At the end one JSON
// line goes to stdout (the contract's fields and a few more); nothing else does.
//
// The bridge (target "bridge-..."): each room entry holds what a member needs to come back as
// itself (its token, its device's key pair, the conversation's public keys), made by the Python
// client in the set-up. Each member connects anew, registers its device again (staff), joins
// the conversation, and sends real envelopes: the pages' own Conversation.build (bridge/web/src),
// encrypted under a fresh key sealed to the victim, care and the epoch, signed by the device.
// Building one costs about a millisecond of libsodium here, so all of a run's envelopes are built
// before it starts sending; the victims verify and open the first messages they get.
//
// The relay (target "socketio-relay"): each member joins its rooms (victim and counsellor the care
// room, the officer the investigation room) and sends an envelope of the same size, not signed.
//
// The schedule, the counting and the result are exported (`generate`) for websocket.mjs.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { Conversation } from "../../bridge/web/src/conversation.js";
import * as crypto from "../../bridge/web/src/crypto.js";

/** @typedef {Record<string, any>} Json */

/**
 * A connected room: `make` builds member's next message, `send` sends it and resolves with the
 * ack's outcome (never rejects), `close` disconnects every member.
 * @typedef {{make: (member: number) => {id: string, packet: Json},
 *   send: (member: number, packet: Json) => Promise<{ok: boolean, code?: string}>,
 *   close: () => void}} Room
 */

/**
 * What a room reports back: a delivery of message `id` to `member`, or a failure (a drop).
 * @typedef {{delivered: (id: string, member: number) => void, failed: (what: string) => void,
 *   verified: (ok: boolean) => void}} Hooks
 */

/** Packages installed beside the pages (socket.io-client, ws), resolved from there. */
export const webRequire = createRequire(new URL("../../bridge/web/package.json", import.meta.url));

export const ACK_TIMEOUT_MS = 10_000;
const CONNECT_PARALLEL = 20; // rooms connected at once
const JOINED_TIMEOUT_MS = 60_000; // for a bridge paused by the last run's departures to resume
const DRAIN_LIMIT_MS = 60_000; // the longest drain, however late messages still come
const VERIFY_FIRST = 3; // messages each victim verifies and opens
const MEMBERS = 3;
const AUDIENCE = ["care", "investigation"];
// Bytes the plaintext JSON adds around the text ({"text":"…","sent_at":"<24 characters>"}) and
// the SecretBox MAC: a text of payload_bytes - 64 ASCII characters gives that much ciphertext.
const PLAINTEXT_OVERHEAD = 48 + 16;

/** @param {number} x */
const ms3 = (x) => Math.round(x * 1000) / 1000;

/** @param {number[]} values @param {number} q */
function quantile(values, q) {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  return ms3(sorted[Math.min(sorted.length - 1, Math.floor(((sorted.length - 1) * q) / 100))]);
}

/** Run `fn` over `items`, at most `limit` at once, keeping order. */
async function mapLimit(/** @type {any[]} */ items, /** @type {number} */ limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The first line on stdin: the orchestrator's "go". */
function goSignal() {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process.stdin });
    lines.once("line", () => {
      resolve(undefined);
      lines.close();
    });
    lines.once("close", () => reject(new Error("stdin closed before go")));
  });
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** An envelope's text of the size that makes `payloadBytes` of ciphertext. @param {Json} config */
export function textFor(config) {
  return "x".repeat(Math.max(1, config.payload_bytes - PLAINTEXT_OVERHEAD));
}

/**
 * An unsigned envelope the relays pass on, the size of the bridge's: b64u fields of the sizes
 * of a real one (ciphertext payload_bytes, three sealed keys, a signature).
 * @param {Json} config
 */
export function relayTemplate(config) {
  const random = (/** @type {number} */ n) =>
    crypto.b64uEncode(globalThis.crypto.getRandomValues(new Uint8Array(n)));
  const sealed = () => random(crypto.SEALED_KEY_BYTES);
  return {
    v: 1,
    conversation_id: "",
    client_msg_id: "",
    sender: { role: "", device_id: globalThis.crypto.randomUUID() },
    kind: "message",
    audience: AUDIENCE,
    epoch_id: globalThis.crypto.randomUUID(),
    nonce: random(24),
    ciphertext: random(config.payload_bytes),
    keys: { victim: sealed(), care: sealed(), investigation: sealed() },
    sig: random(64),
  };
}

/**
 * The schedule, the counting and the result line, whatever the transport.
 * @param {Json} config
 * @param {(room: Json, index: number, hooks: Hooks) => Promise<Room>} connectRoom
 */
export async function generate(config, connectRoom) {
  const rate = Number(config.rate);
  const warmupMs = 1000 * Number(config.warmup ?? 0);
  const total = Math.round(rate * (Number(config.warmup ?? 0) + Number(config.duration)));
  const drainMs = 1000 * Number(config.drain ?? 5);
  /** @type {Map<string, number>} message id -> index */
  const byId = new Map();
  const sentAt = new Float64Array(total);
  const masks = new Uint8Array(total); // members that got message k
  const acked = new Uint8Array(total);
  /** @type {number[]} */
  const latencies = [];
  /** @type {number[]} */
  const ackLatencies = [];
  /** @type {number[]} */
  const lags = [];
  /** @type {Record<string, number>} */
  const errorCodes = {};
  const counts = {
    sent: 0,
    acked: 0,
    delivered: 0,
    duplicates: 0,
    errors: 0,
    unknown: 0,
    verified: 0,
    unreadable: 0,
  };
  let closing = false;
  let pending = 0;
  let lastProgress = 0; // when the last delivery or ack came
  const error = (/** @type {string} */ code) => {
    counts.errors += 1;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  };
  /** @type {Hooks} */
  const hooks = {
    delivered(id, member) {
      const now = performance.now();
      const k = byId.get(id);
      if (k === undefined) {
        counts.unknown += 1;
        return;
      }
      const bit = 1 << member;
      if (masks[k] & bit) {
        counts.duplicates += 1;
        return;
      }
      masks[k] |= bit;
      counts.delivered += 1;
      lastProgress = now;
      // Sent after the warm-up (its due time), so counted; sentAt is 0 for one not sent yet.
      if (sentAt[k] && k * (1000 / rate) >= warmupMs) latencies.push(ms3(now - sentAt[k]));
    },
    failed(what) {
      if (!closing) error(what);
    },
    verified(ok) {
      counts[ok ? "verified" : "unreadable"] += 1;
    },
  };

  const began = performance.now();
  /** @type {Room[]} */
  const rooms = await mapLimit(config.rooms, CONNECT_PARALLEL, (room, i) =>
    connectRoom(room, i, hooks),
  );
  const connected = performance.now();
  /** @type {{room: number, member: number, packet: Json}[]} */
  const plan = new Array(total);
  for (let k = 0; k < total; k++) {
    const room = k % rooms.length;
    const member = Math.floor(k / rooms.length) % MEMBERS;
    const { id, packet } = rooms[room].make(member);
    byId.set(id, k);
    plan[k] = { room, member, packet };
  }
  const built = performance.now();
  if (config.go_on_stdin) {
    process.stderr.write(`${JSON.stringify({ ready: rooms.length })}\n`);
    await goSignal();
  }

  const cpuAtGo = process.cpuUsage();
  const interval = 1000 / rate;
  const t0 = performance.now() + 10;
  const sendOne = (/** @type {number} */ k) => {
    const at = performance.now();
    const { room, member, packet } = plan[k];
    sentAt[k] = at;
    lags.push(at - (t0 + k * interval));
    counts.sent += 1;
    pending += 1;
    rooms[room].send(member, packet).then((outcome) => {
      pending -= 1;
      lastProgress = performance.now();
      if (!outcome.ok) return error(`ack: ${outcome.code}`);
      acked[k] = 1;
      counts.acked += 1;
      if (k * interval >= warmupMs) ackLatencies.push(ms3(performance.now() - at));
    });
  };
  let next = 0;
  await new Promise((resolve) => {
    const tick = () => {
      while (next < total && t0 + next * interval <= performance.now()) sendOne(next++);
      if (next >= total) return resolve(undefined);
      setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
    };
    tick();
  });
  const sendEnd = performance.now();
  // Drain: until every ack is in and every acked message reached all three, or time is up.
  const full = (1 << MEMBERS) - 1;
  const missing = () => {
    let n = 0;
    for (let k = 0; k < total; k++) if (acked[k] && masks[k] !== full) n += 1;
    return n;
  };
  // A message still on its way is late, not lost: the drain goes on while deliveries or acks
  // keep coming (each within drainMs of the last), up to DRAIN_LIMIT_MS after the last send.
  while (pending > 0 || missing() > 0) {
    const now = performance.now();
    if (now - Math.max(sendEnd, lastProgress) > drainMs || now - sendEnd > DRAIN_LIMIT_MS) break;
    await sleep(20);
  }
  const lost = missing();
  const cpu = process.cpuUsage(cpuAtGo);
  const lagSorted = lags.length ? lags : [0];
  const result = {
    offered: rate,
    sent: counts.sent,
    acked: counts.acked,
    deliveries_expected: MEMBERS * counts.acked,
    delivered: counts.delivered,
    lost,
    duplicates: counts.duplicates,
    errors: counts.errors,
    latency_ms: latencies,
    ack_latency_ms: ackLatencies,
    // Beyond the contract: what the generator itself did.
    target: config.target,
    rooms: rooms.length,
    sockets: MEMBERS * rooms.length,
    unacked: pending,
    error_codes: errorCodes,
    unknown_deliveries: counts.unknown,
    verified: counts.verified,
    unreadable: counts.unreadable,
    connect_seconds: ms3((connected - began) / 1000),
    build_seconds: ms3((built - connected) / 1000),
    send_seconds: ms3((sendEnd - t0) / 1000),
    // This process's CPU from go to here: it may be gone before the orchestrator reads /proc.
    cpu_seconds: ms3((cpu.user + cpu.system) / 1e6),
    // How late the generator sent against its schedule: past a few ms it, not the server,
    // limits the run.
    send_lag_ms: { p50: quantile(lagSorted, 50), p99: quantile(lagSorted, 99), max: quantile(lagSorted, 100) },
  };
  // Written whole before anything else happens: process.exit would cut a pipe's pending write.
  await new Promise((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, resolve));
  closing = true;
  for (const room of rooms) room.close();
}

// --- Socket.IO ---------------------------------------------------------------------------------

const { io } = webRequire("socket.io-client");

/** @param {string} url @param {Json} auth */
function connect(url, auth) {
  const socket = io(url, { transports: ["websocket"], reconnection: false, auth });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (/** @type {any} */ err) =>
      reject(new Error(`connect refused: ${err?.data?.code ?? err?.message}`)),
    );
  });
}

/** An acked call that must succeed. @param {any} socket @param {string} event @param {any} payload */
async function call(socket, event, payload) {
  const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  if (!ack || ack.ok !== true) throw new Error(`${event} refused: ${JSON.stringify(ack)}`);
  return ack;
}

/** @param {any} socket @param {Json} packet */
async function sendMessage(socket, packet) {
  try {
    const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("message.send", packet);
    return ack?.ok === true ? { ok: true } : { ok: false, code: ack?.error?.code ?? "bad_ack" };
  } catch {
    return { ok: false, code: "timeout" };
  }
}

/** @param {any} socket @param {number} member @param {Hooks} hooks */
function watchDrops(socket, member, hooks) {
  socket.on("disconnect", (/** @type {string} */ reason) => hooks.failed(`drop ${member}: ${reason}`));
}

/**
 * One driegesprek on the bridge, its members back with their own keys and tokens.
 * @param {Json} config @param {Json} room @param {Hooks} hooks
 * @returns {Promise<Room>}
 */
async function bridgeRoom(config, room, hooks) {
  const conv = new Conversation(room.conversation_id);
  const text = textFor(config);
  /** @type {any[]} */
  const sockets = [];
  const senders = [];
  let opened = 0;
  for (const [member, m] of room.members.entries()) {
    const keys = crypto.DeviceKeys.fromPrivate(
      crypto.b64uDecode(m.ed25519_seed),
      crypto.b64uDecode(m.x25519_private),
    );
    senders.push({ role: m.role, deviceId: m.device_id, keys });
    const socket = await connect(m.url ?? config.url, { token: m.token });
    sockets.push(socket);
    watchDrops(socket, member, hooks);
    socket.on("message", (/** @type {Json} */ item) => {
      hooks.delivered(item.envelope?.client_msg_id, member);
      if (member === 0 && opened < VERIFY_FIRST) {
        opened += 1; // the victim opens with her own device key, as her page does
        hooks.verified(conv.open(item, "victim")?.text === text);
      }
    });
    if (member === 0) socket.on("bridge.state", (/** @type {Json} */ e) => conv.applyBridgeState(e));
    if (m.role !== "victim") {
      const ack = await call(socket, "device.register", keys.registration());
      if (ack.device_id !== m.device_id) throw new Error("device.register gave another device");
    }
    const ack = await call(socket, "conversation.join", { conversation_id: conv.id });
    if (member === 0) {
      conv.apply(ack.conversation, null);
      conv.scopeKeys.set("victim", keys.boxPrivate);
    }
  }
  // Every signer known, whether present now or not.
  for (const [member, m] of room.members.entries()) {
    const { ed25519, x25519 } = senders[member].keys;
    conv.participants.set(m.device_id, { role: m.role, device_id: m.device_id, ed25519, x25519 });
  }
  // The last run's sockets went, so the bridge may be paused for the victim or the counsellor
  // until their joins above resume it.
  const deadline = performance.now() + JOINED_TIMEOUT_MS;
  while (conv.bridge?.state !== "joined") {
    if (performance.now() > deadline) throw new Error(`bridge ${conv.bridge?.state}, not joined`);
    await sleep(20);
  }
  return {
    make(member) {
      const envelope = conv.build(senders[member], text, AUDIENCE);
      return { id: String(envelope.client_msg_id), packet: { envelope } };
    },
    send: (member, packet) => sendMessage(sockets[member], packet),
    close: () => {
      for (const socket of sockets) socket.disconnect();
    },
  };
}

/**
 * One room of three members on the bare relay: rooms joined, envelopes of the same size.
 * @param {Json} config @param {Json} room @param {Hooks} hooks @param {Json} template
 * @returns {Promise<Room>}
 */
async function relayRoom(config, room, hooks, template) {
  /** @type {any[]} */
  const sockets = [];
  for (const [member, m] of room.members.entries()) {
    const socket = await connect(config.url, { token: "bench" });
    sockets.push(socket);
    watchDrops(socket, member, hooks);
    socket.on("message", (/** @type {Json} */ item) =>
      hooks.delivered(item.envelope?.client_msg_id, member),
    );
    await call(socket, "join", m.rooms);
  }
  return {
    make(member) {
      const id = globalThis.crypto.randomUUID();
      const sender = { role: room.members[member].role, device_id: template.sender.device_id };
      const envelope = { ...template, conversation_id: room.conversation_id, client_msg_id: id, sender };
      return { id, packet: { envelope } };
    },
    send: (member, packet) => sendMessage(sockets[member], packet),
    close: () => {
      for (const socket of sockets) socket.disconnect();
    },
  };
}

async function main() {
  const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
  await crypto.ready();
  const template = relayTemplate(config);
  const bridge = String(config.target).startsWith("bridge");
  await generate(config, (room, _index, hooks) =>
    bridge ? bridgeRoom(config, room, hooks) : relayRoom(config, room, hooks, template),
  );
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.exit(1);
  });
}
