// The library ("Your transcripts"): the caller's jobs newest first, a page at a time, filtered
// by status; each with its status, a live progress bar, a link to the reader and Delete.

import { json, jobPath, request } from "./api.js";
import { announce, clearError, el, jobTitle, showError } from "./dom.js";
import { ACTIVE, onJob, publish, unwatch } from "./jobs.js";

const PAGE_SIZE = 20;
const STATUS_TEXT = {
  queued: "Queued",
  dispatched: "Starting",
  running: "Transcribing",
  succeeded: "Done",
  failed: "Failed",
};

let list;
let moreButton;
let filter;
let emptyNote;
let nextCursor = null;
let loadToken = 0;
let onDeleted = () => {};

/** Wire the library's controls; `deleted(id)` is told when a job is deleted. */
export function initLibrary(deleted) {
  list = document.getElementById("library-list");
  moreButton = document.getElementById("library-more");
  filter = document.getElementById("library-status");
  emptyNote = document.getElementById("library-empty");
  onDeleted = deleted;
  filter.addEventListener("change", () => reload().catch(showError));
  moreButton.addEventListener("click", () => loadPage().catch(showError));
  onJob(update);
}

/** Forget what is shown (sign out). */
export function resetLibrary() {
  loadToken += 1;
  list.textContent = "";
  nextCursor = null;
  moreButton.hidden = true;
  emptyNote.hidden = true;
}

/** Load the first page again (sign-in, filter change). */
export async function reload() {
  resetLibrary();
  await loadPage();
}

async function loadPage() {
  const token = loadToken;
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (filter.value) {
    query.set("status", filter.value);
  }
  if (nextCursor) {
    query.set("cursor", nextCursor);
  }
  moreButton.disabled = true;
  try {
    const page = await json(`/v1/transcriptions?${query}`);
    if (token !== loadToken) {
      return; // signed out or filtered again meanwhile
    }
    for (const job of page.items) {
      if (!itemOf(job.id)) {
        list.append(render(job));
      }
      publish(job);
    }
    nextCursor = page.next_cursor;
    moreButton.hidden = !nextCursor;
    emptyNote.hidden = list.childElementCount > 0;
  } finally {
    moreButton.disabled = false;
  }
}

/** Put a job (just submitted) at the top of the library. */
export function prepend(job) {
  const existing = itemOf(job.id);
  if (existing) {
    existing.remove();
  }
  if (!filter.value || filter.value === job.status) {
    list.prepend(existing || render(job));
  }
  emptyNote.hidden = list.childElementCount > 0;
  publish(job);
}

function itemOf(id) {
  return list.querySelector(`li[data-job-id="${CSS.escape(id)}"]`);
}

function render(job) {
  const titleLink = el("a", { href: `#/t/${encodeURIComponent(job.id)}`, className: "job-title" });
  const show = el("p", { className: "job-show" });
  const status = el("p", { className: "job-status" });
  const fill = el("div", { className: "progress-fill" });
  const bar = el(
    "div",
    {
      role: "progressbar",
      className: "progress",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": 0,
    },
    fill,
  );
  const remove = el("button", { type: "button", className: "secondary danger", text: "Delete" });
  remove.addEventListener("click", () => deleteJob(job.id).catch(showError));
  const item = el(
    "li",
    { className: "job", "data-job-id": job.id },
    el("h3", {}, titleLink),
    show,
    status,
    bar,
    el("div", { className: "job-actions" }, remove),
  );
  fillItem(item, job);
  return item;
}

function fillItem(item, job) {
  const title = jobTitle(job);
  const [heading, show, status, bar] = [
    item.querySelector(".job-title"),
    item.querySelector(".job-show"),
    item.querySelector(".job-status"),
    item.querySelector(".progress"),
  ];
  heading.textContent = title;
  show.textContent = (job.episode && job.episode.show) || "";
  show.hidden = !show.textContent;
  const percent = Math.round(Math.min(1, Math.max(0, Number(job.progress) || 0)) * 100);
  const words = STATUS_TEXT[job.status] || job.status;
  status.textContent =
    job.status === "failed" && job.error ? `${words}: ${job.error.message}` : words;
  status.dataset.status = job.status;
  bar.setAttribute("aria-valuenow", String(percent));
  bar.setAttribute("aria-valuetext", `${percent}% (${words})`);
  bar.setAttribute("aria-label", `Progress of ${title}`);
  bar.dataset.status = job.status;
  // CSSOM, not a style attribute: allowed by the page's CSP (style-src 'self').
  bar.firstElementChild.style.width = `${percent}%`;
  item.querySelector("button").setAttribute("aria-label", `Delete ${title}`);
  item.classList.toggle("active", ACTIVE.has(job.status));
}

function update(job) {
  const item = itemOf(job.id);
  if (item) {
    fillItem(item, job);
  }
}

async function deleteJob(id) {
  const item = itemOf(id);
  const title = item ? item.querySelector(".job-title").textContent : id;
  if (!window.confirm(`Delete "${title}" from your transcripts?`)) {
    return;
  }
  clearError();
  await request(jobPath(id), { method: "DELETE" });
  unwatch(id);
  if (item) {
    item.remove();
  }
  emptyNote.hidden = list.childElementCount > 0;
  announce(`Deleted "${title}".`);
  onDeleted(id);
}
