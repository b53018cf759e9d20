// The load generator for the raw aiohttp websocket relay of bench/peers/relays.py (target
// "aiohttp-ws"), with the schedule and counting of socketio.mjs (the generator contract of
// bench/peers/common.py):
//
//   node bench/generators/websocket.mjs CONFIG.json
//
// Each member opens a websocket (the `ws` package installed beside the pages) to URL/ws and
// sends {"type": "join", "room": conversation_id}; the relay answers {"type": "joined"}. A message
// is {"type": "send", "id": n, "envelope": {...}}, acked to its sender as {"type": "ack", "id": n,
// "seq": s} and relayed to every member of the room, the sender included, as {"type": "message",
// "seq": s, "envelope": {...}}. The envelope is the relay template of socketio.mjs: the size of
// the bridge's, not signed.

import { readFileSync } from "node:fs";
import { ACK_TIMEOUT_MS, generate, relayTemplate, webRequire } from "./socketio.mjs";

/** @typedef {Record<string, any>} Json */

const WebSocket = webRequire("ws");

/** @param {string} url */
function open(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/** One member's socket: joined to the room, acks matched to sends by id. */
async function member(/** @type {string} */ url, /** @type {string} */ room, onMessage, onDrop) {
  const ws = await open(url);
  /** @type {Map<number, (outcome: {ok: boolean, code?: string}) => void>} */
  const waiting = new Map();
  let nextId = 0;
  let joined = () => {};
  const isJoined = new Promise((resolve) => {
    joined = resolve;
  });
  ws.on("message", (/** @type {Buffer} */ data) => {
    const packet = JSON.parse(data.toString());
    if (packet.type === "message") onMessage(packet);
    else if (packet.type === "ack") {
      waiting.get(packet.id)?.({ ok: true });
      waiting.delete(packet.id);
    } else if (packet.type === "joined") joined(undefined);
  });
  ws.on("close", () => onDrop("closed"));
  ws.send(JSON.stringify({ type: "join", room }));
  await isJoined;
  return {
    ws,
    /** @param {Json} envelope */
    send(envelope) {
      const id = nextId++;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve({ ok: false, code: "timeout" });
        }, ACK_TIMEOUT_MS);
        waiting.set(id, (/** @type {{ok: boolean}} */ outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        });
        ws.send(JSON.stringify({ type: "send", id, envelope }));
      });
    },
  };
}

async function main() {
  const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
  const template = relayTemplate(config);
  const url = `${config.url.replace(/^http/, "ws")}/ws`;
  await generate(config, async (room, _index, hooks) => {
    const members = [];
    for (const index of room.members.keys()) {
      members.push(
        await member(
          url,
          room.conversation_id,
          (/** @type {Json} */ packet) => hooks.delivered(packet.envelope?.client_msg_id, index),
          (/** @type {string} */ why) => hooks.failed(`drop ${index}: ${why}`),
        ),
      );
    }
    return {
      make(index) {
        const id = globalThis.crypto.randomUUID();
        const sender = { role: room.members[index].role, device_id: template.sender.device_id };
        const envelope = { ...template, conversation_id: room.conversation_id, client_msg_id: id, sender };
        return { id, packet: envelope };
      },
      send: (index, envelope) => members[index].send(envelope),
      close: () => {
        for (const m of members) m.ws.close();
      },
    };
  });
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
