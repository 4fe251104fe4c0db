// Search across every transcript of the key (GET /v1/search?q=): each hit names its episode,
// the moment and a snippet, and opens the reader there. The snippet is HTML-escaped text with
// <mark>…</mark> around the matches; it is never parsed as HTML: the marks are split out and
// rebuilt as <mark> elements, everything else becomes text nodes.

import { json } from "./api.js";
import { clearError, el, formatTime, showError } from "./dom.js";

const PAGE_SIZE = 20;
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&#x27;": "'" };

let refs;
let query = "";
let nextCursor = null;

export function initSearch() {
  refs = {
    form: document.getElementById("search-form"),
    input: document.getElementById("search-q"),
    results: document.getElementById("search-results"),
    summary: document.getElementById("search-summary"),
    more: document.getElementById("search-more"),
  };
  refs.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = refs.input.value.trim();
    if (!q) {
      showError(new Error("Type what to search for."));
      return;
    }
    query = q;
    nextCursor = null;
    refs.results.textContent = "";
    search().catch(showError);
  });
  refs.more.addEventListener("click", () => search().catch(showError));
}

export function resetSearch() {
  query = "";
  nextCursor = null;
  refs.results.textContent = "";
  refs.summary.textContent = "";
  refs.more.hidden = true;
}

async function search() {
  clearError();
  const params = new URLSearchParams({ q: query, limit: String(PAGE_SIZE) });
  if (nextCursor) {
    params.set("cursor", nextCursor);
  }
  refs.more.disabled = true;
  try {
    const page = await json(`/v1/search?${params}`);
    for (const hit of page.items) {
      refs.results.append(renderHit(hit));
    }
    nextCursor = page.next_cursor || null;
    refs.more.hidden = !nextCursor;
    const count = refs.results.childElementCount;
    refs.summary.textContent = count
      ? `${count}${nextCursor ? "+" : ""} moment${count === 1 ? "" : "s"} found for “${query}”.`
      : `Nothing found for “${query}”.`;
  } finally {
    refs.more.disabled = false;
  }
}

function renderHit(hit) {
  const start = Number(hit.start) || 0;
  const link = el("a", {
    href: `#/t/${encodeURIComponent(hit.id)}?t=${start.toFixed(1)}`,
    className: "hit-link",
    text: String(hit.title || hit.id),
  });
  const meta = el("p", { className: "hit-meta" });
  meta.textContent = [hit.show, `at ${formatTime(start)}`].filter(Boolean).join(" · ");
  return el("li", { className: "hit" }, el("h3", {}, link), meta, snippetOf(String(hit.snippet || "")));
}

/** The snippet as DOM: text nodes and <mark> elements only. */
export function snippetOf(snippet) {
  const paragraph = el("p", { className: "snippet" });
  let marked = false;
  for (const part of snippet.split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") {
      marked = true;
    } else if (part === "</mark>") {
      marked = false;
    } else if (part) {
      const text = unescape(part);
      paragraph.append(marked ? el("mark", { text }) : document.createTextNode(text));
    }
  }
  return paragraph;
}

function unescape(text) {
  return text.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (entity) => ENTITIES[entity]);
}
