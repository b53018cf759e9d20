// The question about the police on the victim's page (DESIGN.md "Consent"): the consent text and
// who would join, as the counsellor asked it; and the grant the victim's device signs.

import * as crypto from "../crypto.js";
import { renderMarkdown } from "../markdown.js";
import { $, clock, el, language, t } from "../page.js";

/** @typedef {Record<string, any>} Json */

/** Fill the consent view from a `consent.prompt` event; both choices start off. @param {Json} event */
export function showQuestion(event) {
  const items = [t("consent.whoOfficer"), t("consent.whoCounsellor")];
  const prefs = event.preferences ?? {};
  if (prefs.officer_gender === "female") items.push(t("consent.prefFemale"));
  if (prefs.officer_gender === "male") items.push(t("consent.prefMale"));
  if (prefs.same_officer) items.push(t("consent.prefSame"));
  $("consent-who").replaceChildren(...items.map((text) => el("li", "", text)));
  const article = $("consent-text");
  article.lang = String(event.text?.lang ?? language());
  article.replaceChildren(...renderMarkdown(String(event.text?.body ?? "")));
  /** @type {HTMLInputElement} */ ($("choice-needs-note")).checked = false;
  /** @type {HTMLInputElement} */ ($("choice-case-file")).checked = false;
  $("consent-expires").textContent = event.expires_at
    ? t("consent.expires", { time: clock(event.expires_at) })
    : "";
}

/**
 * The `consent.grant` payload for `prompt` with `choices`: a fresh investigation scope key, its
 * private half sealed to AVIM's newest key `avim` (`{key_id, x25519}` of
 * `/api/v1/orgs/avim/key`), and the grant signed by this device (the victim holds the door:
 * DESIGN.md "End-to-end encryption").
 * @param {Json} prompt @param {Record<string, boolean>} choices @param {Json} avim
 * @param {crypto.DeviceKeys} keys
 */
export function grantPayload(prompt, choices, avim, keys) {
  const text = { version: prompt.text.version, lang: prompt.text.lang, sha256: prompt.text.sha256 };
  const scope = crypto.ScopeKey.generate();
  const grant = crypto.signedGrant({
    requestId: prompt.request_id,
    text,
    choices,
    investigationPublic: scope.public,
  });
  const payload = {
    request_id: prompt.request_id,
    text,
    choices,
    investigation_scope: scope.asPayload(avim.x25519, avim.key_id),
    sig: keys.sign(grant),
  };
  return { payload, scope };
}
