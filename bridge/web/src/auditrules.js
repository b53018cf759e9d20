// The agreed rules on the auditor's page: the server runs bridge/log/rules.py over the whole log
// (GET /api/v1/audit/check, the same rules as `bridge audit check` runs offline on an export) and
// the page lists each breach by its rule, in the page's language, with the entries it concerns.
// The page itself proves the log intact; to trust the rules' outcome without the server, an
// auditor runs `bridge audit check` on an export.

import { $, el, status, t } from "./page.js";

/** @typedef {{size: number, rules: string[], breaches: {rule: string, index: number, entries: number[]}[]}} Check */

/** @type {Check | null} */
let last = null;

/** Fetch the rules' outcome with `api` and show it. @param {(path: string) => Promise<any>} api */
export async function showRules(api) {
  status("rules-status", t("rules.busy"));
  try {
    last = /** @type {Check} */ (await api("/api/v1/audit/check"));
  } catch {
    last = null;
    status("rules-status", t("rules.failed"));
    return;
  }
  renderRules();
}

/** Draw the last outcome. */
function renderRules() {
  const list = $("breaches");
  list.replaceChildren();
  if (last === null) return;
  const box = $("rules-box");
  box.dataset.breaches = String(last.breaches.length);
  if (last.breaches.length === 0) {
    status("rules-status", t("rules.kept", { size: last.size }));
    return;
  }
  status("rules-status", t("rules.broken", { count: last.breaches.length, size: last.size }));
  for (const breach of last.breaches) {
    const item = el("li", "breach", t(`rule.${breach.rule}`));
    item.dataset.rule = breach.rule;
    item.dataset.index = String(breach.index);
    item.append(el("span", "entries", " " + t("rules.entries", { entries: breach.entries.join(", ") })));
    list.append(item);
  }
}
