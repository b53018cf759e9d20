// What the auditor's page shows of the entries it verified: the filters (conversation, kind, time,
// region), the rows a page at a time, and one conversation's consent timeline in plain words.
// Everything here reads entries the page already holds; the log holds no content, and server data
// only ever goes into the page as text.

import { $, el, locale, t } from "./page.js";

/** @typedef {Record<string, any>} Json */
/** @typedef {{index: number, entry: Json}} Item */

/** Rows drawn at first, and added by each "show more". */
export const ROWS = 200;

/** Kinds a conversation's consent timeline is made of, in the words of `timeline.<kind>`. */
const TIMELINE = new Set([
  "conversation.started",
  "consent.requested",
  "consent.granted",
  "consent.declined",
  "consent.expired",
  "consent.withdrawn",
  "invite.created",
  "invite.accepted",
  "invite.expired",
  "officer.joined",
  "officer.left",
  "officer.removed",
  "bridge.paused",
  "bridge.resumed",
  "bridge.ended",
  "history.shared",
  "transcript.read",
  "transcript.exported",
  "conversation.closed",
]);

/** The region each conversation's bridge requests named (a conversation may name several). */
export function regionsByConversation(/** @type {Item[]} */ items) {
  /** @type {Map<string, Set<string>>} */
  const found = new Map();
  for (const { entry } of items) {
    const region = entry?.preferences?.region;
    if (typeof region !== "string" || typeof entry?.conversation !== "string") continue;
    const set = found.get(entry.conversation) ?? new Set();
    set.add(region);
    found.set(entry.conversation, set);
  }
  return found;
}

/** The filters as the form holds them. */
export function readFilters() {
  const value = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id)).value.trim();
  const time = (/** @type {string} */ id) => (value(id) ? new Date(value(id)).getTime() : NaN);
  return {
    conversation: value("filter-conversation"),
    kind: value("filter-kind"),
    region: value("filter-region"),
    from: time("filter-from"),
    to: time("filter-to"),
  };
}

/**
 * The entries the filters let through, in log order.
 * @param {Item[]} items @param {ReturnType<typeof readFilters>} f
 * @param {Map<string, Set<string>>} regions
 */
export function filtered(items, f, regions) {
  return items.filter(({ entry }) => {
    const at = new Date(String(entry?.at)).getTime();
    const conversation = String(entry?.conversation ?? "");
    return (
      (!f.conversation || conversation === f.conversation) &&
      (!f.kind || entry?.kind === f.kind) &&
      (!f.region || Boolean(regions.get(conversation)?.has(f.region))) &&
      (Number.isNaN(f.from) || at >= f.from) &&
      (Number.isNaN(f.to) || at <= f.to)
    );
  });
}

/** The region filter's choices. @param {Map<string, Set<string>>} regions */
export function renderRegions(regions) {
  const select = /** @type {HTMLSelectElement} */ ($("filter-region"));
  const chosen = select.value;
  const names = [...new Set([...regions.values()].flatMap((set) => [...set]))].sort();
  const all = /** @type {HTMLOptionElement} */ (el("option", "", t("filter.allRegions")));
  all.value = "";
  const options = names.map((name) => {
    const option = /** @type {HTMLOptionElement} */ (el("option", "", name));
    option.value = name;
    return option;
  });
  select.replaceChildren(all, ...options);
  select.value = names.includes(chosen) ? chosen : "";
}

/**
 * One conversation's consent timeline, shown when the conversation filter names one.
 * @param {Item[]} items @param {string} conversation
 */
export function renderTimeline(items, conversation) {
  const box = $("timeline-box");
  const steps = conversation
    ? items.filter(({ entry }) => entry?.conversation === conversation && TIMELINE.has(entry.kind))
    : [];
  box.hidden = steps.length === 0;
  $("timeline").replaceChildren(...steps.map(step));
}

/** @param {Item} item */
function step({ index, entry }) {
  const item = el("li", "step");
  item.dataset.index = String(index);
  item.dataset.kind = String(entry.kind);
  const time = el("time", "", new Date(String(entry.at)).toLocaleString(locale()));
  /** @type {HTMLTimeElement} */ (time).dateTime = String(entry.at);
  item.append(time, " ", el("span", "", t(`timeline.${entry.kind}`, words(entry))));
  return item;
}

/** The values a timeline line names, in words. @param {Json} entry */
function words(entry) {
  const yesNo = (/** @type {unknown} */ v) => t(v ? "word.yes" : "word.no");
  const choices = entry.grant?.choices ?? {};
  const text = entry.text ?? entry.grant?.text ?? {};
  return {
    purpose: entry.purpose ? t(`purpose.${entry.purpose}`) : "",
    text: String(text.version ?? ""),
    needs: yesNo(choices.share_needs_note),
    retain: yesNo(choices.retain_for_case_file),
    reason: String(entry.reason ?? ""),
    scope: entry.scope ? t(`scope.${entry.scope}`) : "",
    first: String(entry.first_seq ?? ""),
    last: String(entry.last_seq ?? ""),
    seqs: Array.isArray(entry.seqs) ? entry.seqs.join(", ") : "",
  };
}
