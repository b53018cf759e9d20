// The consent texts are Markdown files (bridge/domain/consent/texts/); the victim's page shows
// them with this small subset, built as elements holding text only, so nothing in a text can
// become markup or script.

/**
 * The consent text's Markdown as elements: headings, lists (- or 1.) and paragraphs, as text only.
 * @param {string} body
 */
export function renderMarkdown(body) {
  /** @type {HTMLElement[]} */
  const nodes = [];
  /** @type {HTMLElement | null} */
  let list = null;
  /** @type {string[]} */
  let para = [];
  const flush = () => {
    if (para.length) {
      const p = document.createElement("p");
      p.textContent = para.join(" ");
      nodes.push(p);
      para = [];
    }
  };
  for (const raw of body.split("\n")) {
    const line = raw.trim();
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const bullet = /^[-*]\s+(.*)$/.exec(line);
    const numbered = /^\d+[.)]\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      list = null;
      // The page has its own h1: the text's headings start one level down.
      const h = document.createElement(`h${Math.min(6, heading[1].length + 1)}`);
      h.textContent = heading[2];
      nodes.push(h);
    } else if (bullet || numbered) {
      flush();
      const tag = bullet ? "UL" : "OL";
      if (!list || list.tagName !== tag) {
        list = document.createElement(tag.toLowerCase());
        nodes.push(list);
      }
      const li = document.createElement("li");
      li.textContent = (bullet ?? numbered)?.[1] ?? "";
      list.append(li);
    } else if (!line || line.startsWith("<!--")) {
      flush();
      list = null;
    } else if (list && /^\s{2,}/.test(raw) && list.lastElementChild) {
      list.lastElementChild.append(` ${line}`); // a list item continued on the next line
    } else {
      list = null;
      para.push(line);
    }
  }
  flush();
  return nodes;
}
