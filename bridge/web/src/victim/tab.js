// What the victim's page keeps, and how it forgets it (DESIGN.md principle 9): only this chat's
// token, device id and keys, in this tab's sessionStorage, so a reload in the same tab resumes and
// closing the tab forgets; the quick exit clears even that and replaces the page.

import * as crypto from "../crypto.js";

const STORE_KEY = "chat";

/**
 * @typedef {{conversationId: string, token: string, deviceId: string, keys: crypto.DeviceKeys}}
 *   Kept
 */

/** Keep this chat for a reload in this tab. @param {Kept} chat */
export function keep({ conversationId, token, deviceId, keys }) {
  const { ed25519Seed, x25519Private } = keys.exportPrivate();
  const stored = {
    conversation_id: conversationId,
    token,
    device_id: deviceId,
    ed25519_seed: crypto.b64uEncode(ed25519Seed),
    x25519_private: crypto.b64uEncode(x25519Private),
  };
  sessionStorage.setItem(STORE_KEY, JSON.stringify(stored));
}

/** The chat kept in this tab, if any; a damaged one is forgotten. @returns {Kept | null} */
export function kept() {
  const raw = sessionStorage.getItem(STORE_KEY);
  if (!raw) return null;
  try {
    const stored = JSON.parse(raw);
    return {
      conversationId: String(stored.conversation_id),
      token: String(stored.token),
      deviceId: String(stored.device_id),
      keys: crypto.DeviceKeys.fromPrivate(
        crypto.b64uDecode(stored.ed25519_seed, 32),
        crypto.b64uDecode(stored.x25519_private, 32),
      ),
    };
  } catch {
    forget();
    return null;
  }
}

export function forget() {
  sessionStorage.removeItem(STORE_KEY);
}

/** Leave at once for a neutral page; Back does not return. Answers no question. */
export function quickExit() {
  try {
    sessionStorage.clear();
  } catch {
    // storage may be unavailable; leaving matters more
  }
  const meta = /** @type {HTMLMetaElement | null} */ (
    document.querySelector('meta[name="quick-exit"]')
  );
  const target = meta?.content || "about:blank";
  document.body.replaceChildren(); // nothing left on screen while the next page loads
  location.replace(target);
}
