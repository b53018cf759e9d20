// The auditor's page: log in, see the key the log began with (to compare with the one got out of
// band, or paste that one), follow the log's changes of key from it, verify the signed checkpoint
// and recompute the tree head from every entry in this browser, list the entries with filters,
// and verify one entry's inclusion proof.
//
// Merkle hashing and proofs are ../merkle.js (RFC 9162 2.1), following the key ../logkeys.js. The
// log holds no content; server data is only ever put into the page as text nodes.

import "./staff.css";
import "./audit.css";
import { ApiError, apiCall } from "../api.js";
import * as crypto from "../crypto.js";
import { logIn } from "../login.js";
import { showRules } from "../auditrules.js";
import * as view from "../auditview.js";
import * as logkeys from "../logkeys.js";
import * as merkle from "../merkle.js";
import { $, el, hasText, locale, setupLanguage, show, status, t, useStrings } from "../page.js";
import en from "../i18n/audit.en.json";
import nl from "../i18n/audit.nl.json";

/** @typedef {Record<string, any>} Json */

const PAGE = 1000;

/** @param {unknown} iso */
function when(iso) {
  const date = new Date(String(iso));
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(locale(), { dateStyle: "short", timeStyle: "medium" });
}

// --- the server ----------------------------------------------------------------------------------

/** @type {string | null} */
let token = null;

/** @param {string} path @param {Json} [body] */
function api(path, body) {
  return apiCall(path, token, body);
}

/** SHA-256(0x00 || JCS(entry)). @param {Json} entry */
const leafHash = (entry) => merkle.leafHash(crypto.jcs(entry));

/** @param {unknown} text */
function hash(text) {
  return crypto.b64uDecode(String(text), 32);
}

// --- the log -------------------------------------------------------------------------------------

/** @type {{checkpoint: Json, root: Uint8Array} | null} a checkpoint whose signature verified */
let verified = null;
/** @type {{index: number, entry: Json}[]} */
let entries = [];
let running = false;

/** The keys the server says the log was signed with; the first is the one to compare. */
async function showLogKeys() {
  const history = await api("/api/v1/audit/log-keys");
  const first = history.keys?.[0] ?? {};
  $("key-origin").textContent = String(history.origin ?? "");
  $("key-id").textContent = String(first.key_id ?? "");
  $("key-ed25519").textContent = String(first.ed25519 ?? "");
  const served = /** @type {Json[]} */ (history.keys ?? []);
  return { origin: String(history.origin ?? ""), served };
}

/** Every entry below `size`, page by page. @param {number} size */
async function fetchEntries(size) {
  /** @type {{index: number, entry: Json}[]} */
  const all = [];
  while (all.length < size) {
    const count = Math.min(PAGE, size - all.length);
    const page = await api(`/api/v1/audit/entries?start=${all.length}&count=${count}`);
    const items = /** @type {Json[]} */ (page.entries ?? []);
    if (items.length === 0) break;
    for (const item of items) all.push({ index: item.index, entry: item.entry });
    status("verify-status", t("verify.progress", { done: all.length, size }));
  }
  return all.slice(0, size);
}

/** The signed checkpoints, oldest first, up to the first that covers entry `index`.
 * @param {number} index */
async function fetchCheckpoints(index) {
  /** @type {Json[]} */
  const all = [];
  for (;;) {
    const page = await api(`/api/v1/audit/checkpoints?start=${all.length}&count=${PAGE}`);
    const items = /** @type {Json[]} */ (page.checkpoints ?? []);
    all.push(...items);
    if (items.length < PAGE || items.some((c) => Number(c?.size) > index)) return all;
  }
}

/**
 * The log's keys from `key` on and the first problem with a change of key (../logkeys.js); null
 * if `key` is no Ed25519 key.
 * @param {string} key @param {string} origin @param {Uint8Array[]} leaves
 */
async function keysFrom(key, origin, leaves) {
  let first;
  try {
    first = { ed25519: key, key_id: logkeys.keyId(origin, key) };
  } catch (err) {
    if (!(err instanceof crypto.CryptoError)) throw err;
    return null;
  }
  const rotations = entries.filter(({ entry }) => entry?.kind === logkeys.ROTATED);
  const last = rotations.length ? rotations[rotations.length - 1].index : -1;
  const checkpoints = last < 0 ? [] : await fetchCheckpoints(last);
  return logkeys.followKeys({ origin, first, entries, leaves, checkpoints });
}

/**
 * Follow the log's keys from the trusted `key` and check the latest checkpoint under the key they
 * lead to, and no other; what is wrong goes into `reasons`. `signed`: the checkpoint's signature
 * verified; `ok`: also by the key in force, reached without a problem, and the server names no
 * key the log was not handed over to.
 * @param {Json} checkpoint @param {Uint8Array[]} leaves @param {string[]} reasons
 * @param {{key: string, pasted: boolean, origin: string, served: Json[]}} trust
 */
async function checkKeys(checkpoint, leaves, reasons, { key, pasted, origin, served }) {
  const chain = await keysFrom(key, origin, leaves);
  if (chain === null) {
    reasons.push(t(pasted ? "reason.badKey" : "reason.badSig"));
    return { keys: [], signed: false, ok: false };
  }
  if (chain.problem) reasons.push(t(chain.problem.key, chain.problem.values));
  const inForce = chain.keys[chain.keys.length - 1];
  let signed = false;
  try {
    crypto.verifyObject(checkpoint, checkpoint.sig, inForce.ed25519);
    signed = true;
  } catch (err) {
    if (!(err instanceof crypto.CryptoError)) throw err;
    reasons.push(t("reason.badSig"));
  }
  const named = checkpoint.key_id === inForce.key_id;
  if (!named) {
    reasons.push(t("reason.keyId", { key: String(checkpoint.key_id), current: inForce.key_id }));
  }
  // After a problem in the hand-overs the later keys are unchecked rather than unknown.
  /** @param {Json} s */
  const known = (s) => chain.keys.some((k) => k.key_id === s.key_id && k.ed25519 === s.ed25519);
  const unknown = chain.problem ? [] : served.filter((s) => !known(s));
  for (const s of unknown) reasons.push(t("reason.serverKey", { key: String(s.key_id) }));
  const ok = signed && named && chain.problem === null && unknown.length === 0;
  return { keys: chain.keys, signed, ok };
}

async function verifyLog() {
  if (running) return;
  running = true;
  const button = /** @type {HTMLButtonElement} */ ($("verify-log"));
  button.disabled = true;
  status("verify-status", t("verify.busy"));
  verified = null;
  try {
    const { origin, served } = await showLogKeys();
    const pasted = /** @type {HTMLInputElement} */ ($("trusted-key")).value.trim();
    const key = pasted || String(served[0]?.ed25519 ?? "");
    const checkpoint = await api("/api/v1/audit/checkpoint");
    /** @type {string[]} */
    const reasons = [];

    const size = Number(checkpoint.size);
    entries = await fetchEntries(size);
    const consecutive = entries.length === size && entries.every((e, i) => e.index === i);
    if (!consecutive) reasons.push(t("reason.entries", { last: size - 1 }));
    const leaves = entries.map(({ entry }) => leafHash(entry));
    const own = merkle.root(leaves);
    let root = new Uint8Array(0);
    try {
      root = hash(checkpoint.root);
    } catch {
      // a root that is no hash matches nothing
    }
    const rootOk = merkle.sameHash(own, root);
    if (!rootOk) reasons.push(t("reason.rootMismatch"));

    const trust = { key, pasted: Boolean(pasted), origin, served };
    const keys = await checkKeys(checkpoint, leaves, reasons, trust);
    if (keys.signed) verified = { checkpoint, root };
    const intact = keys.ok && rootOk && consecutive;
    renderVerdict(checkpoint, own, intact, reasons, Boolean(pasted));
    renderKeys(keys.keys);
    renderKinds();
    regions = view.regionsByConversation(entries);
    view.renderRegions(regions);
    renderEntries();
    status("verify-status", "");
    await showRules(api);
  } catch {
    status("verify-status", t("verify.failed"));
  } finally {
    running = false;
    button.disabled = false;
  }
}

/**
 * @param {Json} checkpoint @param {Uint8Array} own @param {boolean} intact
 * @param {string[]} reasons @param {boolean} pasted
 */
function renderVerdict(checkpoint, own, intact, reasons, pasted) {
  const box = $("verdict-box");
  box.hidden = false;
  box.classList.toggle("intact", intact);
  box.classList.toggle("not-intact", !intact);
  box.dataset.intact = intact ? "true" : "false";
  $("verdict").textContent = t(intact ? "verdict.intact" : "verdict.notIntact");
  $("verdict-reasons").replaceChildren(...reasons.map((r) => el("li", "", r)));
  $("key-used").textContent = t(pasted ? "verdict.keyPasted" : "verdict.keyServer");
  $("cp-size").textContent = String(checkpoint.size ?? "");
  $("cp-root").textContent = String(checkpoint.root ?? "");
  $("own-root").textContent = crypto.b64uEncode(own);
  const time = el("time", "", when(checkpoint.time));
  /** @type {HTMLTimeElement} */ (time).dateTime = String(checkpoint.time ?? "");
  $("cp-time").replaceChildren(time);
}

/** The keys the log was checked with, each with the hand-over that brought it in.
 * @param {logkeys.ChainKey[]} keys */
function renderKeys(keys) {
  const items = keys.map(({ key_id, ed25519, rotation }) => {
    const text = rotation
      ? t("keys.handedOver", { id: key_id, index: rotation.index, size: rotation.size })
      : t("keys.first", { id: key_id });
    const item = el("li", "", text);
    item.dataset.keyId = key_id;
    item.append(el("span", "mono key", ed25519));
    return item;
  });
  $("key-chain").replaceChildren(...items);
}

/** After a language switch: the verdict and its reasons again, in the new language. */
function redraw() {
  if (entries.length && !running) void verifyLog();
}

// --- the entries ---------------------------------------------------------------------------------

function renderKinds() {
  const select = /** @type {HTMLSelectElement} */ ($("filter-kind"));
  const chosen = select.value;
  const kinds = [...new Set(entries.map((e) => String(e.entry?.kind ?? "")))].sort();
  const all = el("option", "", t("filter.allKinds"));
  /** @type {HTMLOptionElement} */ (all).value = "";
  const options = kinds.map((kind) => {
    const option = /** @type {HTMLOptionElement} */ (el("option", "", kind));
    option.value = kind;
    return option;
  });
  select.replaceChildren(all, ...options);
  select.value = kinds.includes(chosen) ? chosen : "";
}

/** @type {Map<string, Set<string>>} */
let regions = new Map();
let rows = view.ROWS;

/** The entries the filters let through, the first `rows` of them drawn. */
function renderEntries() {
  const filters = view.readFilters();
  const shown = view.filtered(entries, filters, regions);
  $("entries-body").replaceChildren(...shown.slice(0, rows).map(renderEntry));
  status("entries-count", t("entries.count", { shown: shown.length, total: entries.length }));
  $("entries-more").hidden = shown.length <= rows;
  view.renderTimeline(entries, filters.conversation);
}

/** Filters changed: from the first rows again. */
function refilter() {
  rows = view.ROWS;
  renderEntries();
}

/** @param {{index: number, entry: Json}} item */
function renderEntry({ index, entry }) {
  const row = el("tr", "entry");
  row.dataset.index = String(index);
  row.dataset.kind = String(entry?.kind ?? "");
  const time = el("time", "", when(entry?.at));
  /** @type {HTMLTimeElement} */ (time).dateTime = String(entry?.at ?? "");
  const role = entry?.actor?.role ? String(entry.actor.role) : "";
  const cells = [
    el("td", "index mono", String(index)),
    el("td", "time"),
    el("td", "kind mono", String(entry?.kind ?? "")),
    el("td", "conversation mono", String(entry?.conversation ?? "")),
    el("td", "actor", role && hasText(`role.${role}`) ? t(`role.${role}`) : role),
    el("td", "inclusion"),
  ];
  cells[1].append(time);
  const button = /** @type {HTMLButtonElement} */ (el("button", "button small", t("inclusion.verify")));
  button.type = "button";
  const result = el("span", "inclusion-result");
  result.setAttribute("role", "status");
  button.addEventListener("click", () => verifyInclusion(index, entry, button, result));
  cells[5].append(button, " ", result);
  row.append(...cells);
  return row;
}

/**
 * @param {number} index @param {Json} entry @param {HTMLButtonElement} button
 * @param {HTMLElement} result
 */
async function verifyInclusion(index, entry, button, result) {
  result.className = "inclusion-result";
  delete result.dataset.ok;
  if (!verified) {
    result.textContent = t("inclusion.noCheckpoint");
    result.classList.add("bad");
    result.dataset.ok = "false";
    return;
  }
  const { checkpoint, root } = verified;
  button.disabled = true;
  result.textContent = t("inclusion.busy");
  try {
    const size = Number(checkpoint.size);
    const proof = await api(`/api/v1/audit/proof/inclusion?index=${index}&size=${size}`);
    const own = leafHash(entry);
    let ok = false;
    let reason = "inclusion.badLeaf";
    if (proof.index === index && proof.size === size && merkle.sameHash(own, hash(proof.leaf_hash))) {
      reason = "inclusion.badProof";
      const path = /** @type {unknown[]} */ (proof.path ?? []).map(hash);
      try {
        merkle.verifyInclusion(index, size, own, path, root);
        ok = true;
      } catch (err) {
        if (!(err instanceof merkle.VerificationError)) throw err;
      }
    }
    result.textContent = ok ? t("inclusion.ok") : t(reason);
    result.classList.add(ok ? "good" : "bad");
    result.dataset.ok = ok ? "true" : "false";
  } catch (err) {
    const bad = err instanceof crypto.CryptoError;
    result.textContent = t(bad ? "inclusion.badProof" : "inclusion.failed");
    result.classList.add("bad");
    result.dataset.ok = "false";
  } finally {
    button.disabled = false;
  }
}

// --- start -----------------------------------------------------------------------------------------

async function main() {
  useStrings({ nl, en });
  setupLanguage(redraw);
  $("trust-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void verifyLog();
  });
  $("filter-form").addEventListener("submit", (event) => event.preventDefault());
  $("filter-conversation").addEventListener("input", refilter);
  for (const id of ["filter-kind", "filter-region", "filter-from", "filter-to"]) {
    $(id).addEventListener("change", refilter);
  }
  $("entries-more").addEventListener("click", () => {
    rows += view.ROWS;
    renderEntries();
  });
  await crypto.ready();
  document.body.dataset.ready = "";
  await logIn(async (username, password) => {
    const session = await api("/api/v1/session", { username, password });
    if (session.role !== "auditor") throw new ApiError("wrong_role");
    token = session.token;
  }, "login.wrongRole");
  show("audit");
  await verifyLog();
}

main();
