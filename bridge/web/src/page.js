// Text and the page, as every page handles them: the translations (Dutch first, in B1), the
// staff pages' Dutch/English switch, and small DOM helpers. Server data only ever goes into the
// page as text nodes (`el`, `textContent`), never as HTML.

/** @typedef {Record<string, Record<string, string>>} Strings by language, Dutch required */

/** @type {Strings} */
let strings = { nl: {} };
let lang = "nl";

// --- text ------------------------------------------------------------------------------------------

/** The page's translations; set once, before any text is shown. @param {Strings} tables */
export function useStrings(tables) {
  strings = tables;
}

/** @param {string} key @param {Record<string, string | number>} [values] */
export function t(key, values = {}) {
  const text = strings[lang]?.[key] ?? strings.nl[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** Whether `key` has a text (the Dutch table has every key). @param {string} key */
export function hasText(key) {
  return Object.hasOwn(strings.nl, key);
}

/** The language the page is shown in. */
export function language() {
  return lang;
}

/** The locale for dates and times in the page's language. */
export function locale() {
  return lang === "en" ? "en-GB" : "nl-NL";
}

/**
 * Show the page in `code` (Dutch for a language without translations): every `[data-i18n]`
 * element, the `<title>` included, gets its text; the language switch names the other language.
 * @param {string} code
 */
export function applyLanguage(code) {
  lang = Object.hasOwn(strings, code) ? code : "nl";
  const root = document.documentElement;
  root.lang = lang;
  root.dir = t("dir") === "rtl" ? "rtl" : "ltr";
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(/** @type {string} */ (/** @type {HTMLElement} */ (node).dataset.i18n));
  }
  const button = document.getElementById("lang-switch");
  if (button) button.lang = lang === "nl" ? "en" : "nl";
}

const LANG_KEY = "fier.staff.lang";

/**
 * The staff pages' Dutch/English switch: Dutch by default, the choice kept for this tab.
 * `onChange` redraws what the page built from text itself.
 * @param {() => void} [onChange]
 */
export function setupLanguage(onChange = () => {}) {
  let stored = null;
  try {
    stored = sessionStorage.getItem(LANG_KEY);
  } catch {
    // no storage: Dutch
  }
  applyLanguage(stored ?? "nl");
  document.getElementById("lang-switch")?.addEventListener("click", () => {
    const next = lang === "nl" ? "en" : "nl";
    try {
      sessionStorage.setItem(LANG_KEY, next);
    } catch {
      // the choice then lasts until a reload
    }
    applyLanguage(next);
    onChange();
  });
}

/** Hours and minutes of `iso`, or "" if it is no time. @param {string} iso */
export function clock(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

// --- the page --------------------------------------------------------------------------------------

/** @param {string} id */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Show the view `#view-{name}` alone.
 * @param {string} name @param {boolean} [focus] move focus to the view's heading
 */
export function show(name, focus = true) {
  for (const view of document.querySelectorAll(".view")) {
    /** @type {HTMLElement} */ (view).hidden = view.id !== `view-${name}`;
  }
  const heading = /** @type {HTMLElement | null} */ (document.querySelector(`#view-${name} h1`));
  if (focus) heading?.focus();
}

/** @param {string} id @param {string} text */
export function status(id, text) {
  $(id).textContent = text;
}

/**
 * An element holding `text` as a text node.
 * @param {string} tag @param {string} [className] @param {string} [text]
 */
export function el(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/**
 * An element with our own text, redrawn on a language switch.
 * @param {string} tag @param {string} className @param {string} key
 */
export function label(tag, className, key) {
  const node = el(tag, className, t(key));
  node.dataset.i18n = key;
  return node;
}

// --- the message list ------------------------------------------------------------------------------

/**
 * A message's list item: who sent it and when, then its text (or that it cannot be opened).
 * @param {number} seq @param {string} role @param {string} className
 * @param {{sender: string, time: string, text: string | null}} message `sender` is a text key
 */
export function messageItem(seq, role, className, { sender, time, text }) {
  const li = el("li", `message ${className}`);
  li.dataset.seq = String(seq);
  li.dataset.sender = role;
  const head = el("p", "message-head");
  const when = el("time", "", clock(time));
  /** @type {HTMLTimeElement} */ (when).dateTime = time;
  head.append(label("span", "sender", sender), " ", when);
  const body =
    text === null ? label("p", "message-text", "message.unreadable") : el("p", "message-text", text);
  if (text === null) li.classList.add("unreadable");
  li.append(head, body);
  return li;
}

/** Put `li` into `list` in seq order and scroll it into view. @param {HTMLElement} list
 * @param {HTMLElement} li */
export function insertBySeq(list, li) {
  const seq = Number(li.dataset.seq);
  const after = [...list.children].find(
    (c) => c instanceof HTMLElement && c.dataset.seq && Number(c.dataset.seq) > seq,
  );
  list.insertBefore(li, after ?? null);
  li.scrollIntoView({ block: "nearest" });
}

/** A system line in `list` (states, joins), as text. @param {HTMLElement} list @param {string} text */
export function renderNotice(list, text) {
  if (!text) return;
  const li = el("li", "notice", text);
  list.append(li);
  li.scrollIntoView({ block: "nearest" });
}
