// A load generator for Matrix Synapse, target (e) of bench/compare.py. It keeps the generator
// contract of bench/peers/common.py, and counts as socketio.mjs counts:
//
//   node bench/generators/matrix.mjs CONFIG.json
//
// CONFIG: {target: "synapse", url, rooms, rate, duration, warmup, payload_bytes, drain?,
// go_on_stdin?}; rooms are what bench/peers/synapse.py's setup_rooms returns:
// [{room_id, members: [{user_id, access_token}, x3]}].
//
// Every room's three members live in this process, so a delivery's latency is read on one clock:
// the time a member's /sync returns the event minus the time its sender sent it. Each member
// stores a filter (its room's m.room.message timeline only: no state, ephemeral events, account
// data or presence), makes one first /sync for its position, then long-polls /sync (since,
// timeout 30 s) one request after the other. Sending is open-loop: message k is due at k / rate
// seconds, to room k mod rooms, from that room's members in turn, as
// PUT /rooms/{room}/send/m.room.message/{txnId} with an m.text body of payload_bytes characters
// and a bench_id the /sync side matches. Every message is three deliveries: its sender's own
// /sync returns it too. sent, acked, delivered and lost count every message of the run;
// latencies only those due after the warm-up. At the end one JSON line goes to stdout (the
// contract's fields and a few more); progress goes to stderr.
//
// node:http with a keep-alive agent rather than fetch(): fewer layers per request, as this
// process must cost little CPU beside the server.

import { readFileSync } from "node:fs";
import http from "node:http";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";

const MEMBERS = 3;
const SYNC_TIMEOUT_MS = 30_000;
const PREPARE_PARALLEL = 16; // members whose filter and first sync are made at once
// Large enough that a busy room never comes back "limited" (with a gap) between two syncs.
const TIMELINE_LIMIT = 500;

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const base = new URL(config.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
/** Requests in flight, destroyed at the end (the pending long-polls). */
const inFlight = new Set();
let closing = false;

const ms3 = (/** @type {number} */ x) => Math.round(x * 1000) / 1000;
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {number[]} values @param {number} q */
function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return ms3(sorted[Math.min(sorted.length - 1, Math.round(((sorted.length - 1) * q) / 100))]);
}

/**
 * One request; resolves with the status and the parsed JSON (null if not JSON), rejects on a
 * network error.
 * @returns {Promise<{status: number, json: any}>}
 */
function call(method, path, token, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = { Authorization: `Bearer ${token}` };
    if (data !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = Buffer.byteLength(data);
    }
    const req = http.request(
      { host: base.hostname, port: base.port, method, path, headers, agent },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => {
          inFlight.delete(req);
          let json = null;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            // Not JSON: the caller goes by the status.
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on("error", (error) => {
          inFlight.delete(req);
          reject(error);
        });
      },
    );
    inFlight.add(req);
    req.on("error", (error) => {
      inFlight.delete(req);
      reject(error);
    });
    req.end(data);
  });
}

function goSignal() {
  return new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once("line", () => {
      lines.close();
      resolve(undefined);
    });
  });
}

async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function main() {
  const rate = Number(config.rate);
  const warmupMs = 1000 * Number(config.warmup ?? 0);
  const total = Math.round(rate * (Number(config.warmup ?? 0) + Number(config.duration)));
  const drainMs = 1000 * Number(config.drain ?? 5);
  const payload = "x".repeat(Number(config.payload_bytes ?? 256));
  // Transaction ids and bench ids of earlier runs in the same rooms never match this run's.
  const run = Math.random().toString(36).slice(2, 8);

  /** @type {Map<string, number>} bench id -> k */
  const byId = new Map();
  const sentAt = new Float64Array(total);
  const masks = new Uint8Array(total); // members that got message k
  const acked = new Uint8Array(total);
  const latencies = [];
  const ackLatencies = [];
  const lags = [];
  /** @type {Record<string, number>} */
  const errorCodes = {};
  const counts = { sent: 0, acked: 0, delivered: 0, duplicates: 0, errors: 0, unknown: 0 };
  let syncs = 0; // /sync answers that carried events
  let gaps = 0; // "limited" timelines: events skipped, which shows as lost
  let pending = 0;
  const error = (/** @type {string} */ code) => {
    if (closing) return; // the requests destroyed at the end
    counts.errors += 1;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
    if (counts.errors <= 10) process.stderr.write(`matrix: ${code}\n`);
  };

  const rooms = config.rooms.map((room) => ({
    id: room.room_id,
    path: `/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.room.message/`,
    members: room.members.map((member, index) => ({
      index,
      userId: member.user_id,
      token: member.access_token,
      filterId: "",
      since: "",
      txn: 0,
    })),
  }));
  const members = rooms.flatMap((room) => room.members.map((member) => ({ room, member })));

  const began = performance.now();
  await mapLimit(members, PREPARE_PARALLEL, async ({ room, member }) => {
    const filter = {
      account_data: { types: [] },
      presence: { types: [] },
      room: {
        rooms: [room.id],
        timeline: { limit: TIMELINE_LIMIT, types: ["m.room.message"] },
        state: { types: [] },
        ephemeral: { types: [] },
        account_data: { types: [] },
      },
    };
    const made = await call(
      "POST",
      `/_matrix/client/v3/user/${encodeURIComponent(member.userId)}/filter`,
      member.token,
      filter,
    );
    if (made.status !== 200) throw new Error(`filter of ${member.userId}: HTTP ${made.status}`);
    member.filterId = made.json.filter_id;
    // The first sync only fetches the position to go on from: no history.
    const first = { ...filter, room: { ...filter.room, timeline: { limit: 1, types: [] } } };
    const query = `filter=${encodeURIComponent(JSON.stringify(first))}&set_presence=offline`;
    const answer = await call("GET", `/_matrix/client/v3/sync?${query}`, member.token);
    if (answer.status !== 200) throw new Error(`first sync of ${member.userId}: HTTP ${answer.status}`);
    member.since = answer.json.next_batch;
  });

  const syncLoop = async ({ room, member }) => {
    const bit = 1 << member.index;
    while (!closing) {
      let answer;
      try {
        answer = await call(
          "GET",
          `/_matrix/client/v3/sync?filter=${member.filterId}&since=${encodeURIComponent(member.since)}` +
            `&timeout=${SYNC_TIMEOUT_MS}&set_presence=offline`,
          member.token,
        );
      } catch (err) {
        if (closing) return;
        error(`sync: ${err.code ?? err.message}`);
        await sleep(100);
        continue;
      }
      const now = performance.now();
      if (answer.status !== 200 || answer.json === null) {
        error(`sync: HTTP ${answer.status}`);
        await sleep(100);
        continue;
      }
      member.since = answer.json.next_batch;
      const timeline = answer.json.rooms?.join?.[room.id]?.timeline;
      if (!timeline) continue;
      syncs += 1;
      if (timeline.limited) gaps += 1;
      for (const event of timeline.events ?? []) {
        const k = byId.get(event.content?.bench_id);
        if (k === undefined) {
          counts.unknown += 1;
          continue;
        }
        if (masks[k] & bit) {
          counts.duplicates += 1;
          continue;
        }
        masks[k] |= bit;
        counts.delivered += 1;
        if (k * (1000 / rate) >= warmupMs) latencies.push(ms3(now - sentAt[k]));
      }
    }
  };
  const loops = members.map(syncLoop);
  const connected = performance.now();
  process.stderr.write(`matrix: ${rooms.length} rooms, ${members.length} members syncing\n`);
  if (config.go_on_stdin) {
    process.stderr.write(`${JSON.stringify({ ready: rooms.length })}\n`);
    await goSignal();
  }

  const cpu0 = process.cpuUsage();
  const interval = 1000 / rate;
  const t0 = performance.now() + 10;
  const turns = new Uint8Array(rooms.length);
  const sendOne = (/** @type {number} */ k) => {
    const room = rooms[k % rooms.length];
    const member = room.members[turns[k % rooms.length]];
    turns[k % rooms.length] = (turns[k % rooms.length] + 1) % MEMBERS;
    const id = `${run}.${k}`;
    byId.set(id, k);
    member.txn += 1;
    const at = performance.now();
    sentAt[k] = at;
    lags.push(at - (t0 + k * interval));
    counts.sent += 1;
    pending += 1;
    call("PUT", `${room.path}${run}.${member.txn}`, member.token, {
      msgtype: "m.text",
      body: payload,
      bench_id: id,
    }).then(
      (answer) => {
        pending -= 1;
        if (answer.status !== 200) return error(`send: HTTP ${answer.status} ${answer.json?.errcode ?? ""}`);
        acked[k] = 1;
        counts.acked += 1;
        if (k * interval >= warmupMs) ackLatencies.push(ms3(performance.now() - at));
      },
      (err) => {
        pending -= 1;
        error(`send: ${err.code ?? err.message}`);
      },
    );
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
  // Drain: until every answer is in and every acked message reached all three, or time is up.
  const full = (1 << MEMBERS) - 1;
  const missing = () => {
    let n = 0;
    for (let k = 0; k < total; k++) if (acked[k] && masks[k] !== full) n += 1;
    return n;
  };
  while (performance.now() - sendEnd < drainMs && (pending > 0 || missing() > 0)) {
    await sleep(20);
  }
  const lagSorted = lags.length ? lags : [0];
  const cpu = process.cpuUsage(cpu0);
  const result = {
    offered: rate,
    sent: counts.sent,
    acked: counts.acked,
    deliveries_expected: MEMBERS * counts.acked,
    delivered: counts.delivered,
    lost: missing(),
    duplicates: counts.duplicates,
    errors: counts.errors,
    latency_ms: latencies,
    ack_latency_ms: ackLatencies,
    // Beyond the contract: what the generator itself did.
    target: config.target,
    rooms: rooms.length,
    sockets: members.length, // one pending /sync long-poll each
    unacked: pending,
    error_codes: errorCodes,
    unknown_deliveries: counts.unknown,
    syncs_with_events: syncs,
    limited_timelines: gaps,
    connect_seconds: ms3((connected - began) / 1000),
    send_seconds: ms3((sendEnd - t0) / 1000),
    // This process's own CPU over the sending and the drain (it may exit before it is read).
    cpu_seconds: ms3((cpu.user + cpu.system) / 1e6),
    // How late the generator sent against its schedule: past a few ms it, not the server,
    // limits the run.
    send_lag_ms: {
      p50: quantile(lagSorted, 50),
      p99: quantile(lagSorted, 99),
      max: quantile(lagSorted, 100),
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  closing = true;
  for (const req of inFlight) req.destroy();
  agent.destroy();
  await Promise.allSettled(loops);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`matrix: failed: ${err.stack ?? err}\n`);
    process.exit(1);
  },
);
