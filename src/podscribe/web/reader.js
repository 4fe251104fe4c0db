// The reader: the episode's title and show, an <audio> player on the episode's own audio, the
// transcript as segments (a timestamp button each) and words (clickable when the transcript
// has word timings); clicking seeks; the current segment and word follow the audio; downloads
// in every format (fetched with the key, saved through a Blob URL); a link to this moment;
// a share link (public URLs for a feed's <podcast:transcript> lines) of a succeeded job.
//
// Its address is #/t/<job id>, or #/t/<job id>?t=<seconds> to open at a moment.

import { ApiError, jobPath, json, request } from "./api.js";
import { announce, el, formatTime, jobTitle, safeHttpUrl, showError } from "./dom.js";
import { ACTIVE, onJob, publish } from "./jobs.js";

const FORMATS = [
  ["txt", "TXT"],
  ["srt", "SRT"],
  ["vtt", "WebVTT"],
  ["json", "JSON"],
  ["html", "HTML"],
];

let current = null; // {id, job, segments: [{start, end, node, words: [{start, end, node}]}]}
let openToken = 0;
let partialBusy = false;
let partialFetchedAt = 0;
// A long episode's partial transcript is large: fetched at most this often while it grows.
const PARTIAL_EVERY_MS = 5000;
let refs;

export function initReader() {
  refs = {
    section: document.getElementById("reader"),
    title: document.getElementById("reader-title"),
    show: document.getElementById("reader-show"),
    state: document.getElementById("reader-state"),
    audio: document.getElementById("reader-audio"),
    transcript: document.getElementById("reader-transcript"),
    downloads: document.getElementById("reader-downloads"),
    copy: document.getElementById("reader-copy"),
    copied: document.getElementById("reader-link"),
    share: document.getElementById("reader-share"),
    shareLines: document.getElementById("reader-share-lines"),
  };
  refs.transcript.addEventListener("click", onTranscriptClick);
  refs.audio.addEventListener("timeupdate", highlight);
  refs.audio.addEventListener("seeked", highlight);
  refs.copy.addEventListener("click", () => copyMoment().catch(showError));
  refs.share.addEventListener("click", () => shareTranscript().catch(showError));
  for (const [format, name] of FORMATS) {
    const link = el("a", { href: "#", className: "download", "data-format": format, text: name });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      download(format).catch(showError);
    });
    refs.downloads.append(el("li", {}, link));
  }
  onJob(onJobUpdate);
}

/** The moment link of a job: the page's address with the reader route. */
export function momentUrl(id, seconds) {
  const base = `${window.location.origin}${window.location.pathname}`;
  return `${base}#/t/${encodeURIComponent(id)}?t=${Number(seconds).toFixed(1)}`;
}

/** Open (or re-seek) the reader on a job; `at` is a time in seconds or null. */
export async function openReader(id, at) {
  if (current && current.id === id) {
    if (at !== null) {
      seek(at);
    }
    return;
  }
  closeReader();
  const token = ++openToken;
  current = { id, job: null, segments: [], complete: false, pendingSeek: at };
  refs.title.textContent = "Loading…";
  refs.show.textContent = "";
  refs.state.textContent = "";
  const job = await json(jobPath(id));
  if (token !== openToken) {
    return;
  }
  showJob(job);
  publish(job); // polls it while it is active
  if (job.status === "succeeded") {
    await loadTranscript(token, false);
  } else if (job.links && job.links.partial_transcript) {
    await loadTranscript(token, true);
  }
}

/** Leave the reader: stop the audio and forget the job. */
export function closeReader() {
  openToken += 1;
  current = null;
  refs.audio.pause();
  refs.audio.removeAttribute("src");
  refs.audio.load();
  refs.transcript.textContent = "";
  refs.copied.hidden = true;
  refs.shareLines.hidden = true;
}

export const readerJobId = () => (current ? current.id : null);

function showJob(job) {
  current.job = job;
  refs.title.textContent = jobTitle(job);
  refs.show.textContent = (job.episode && job.episode.show) || "";
  const audioUrl = job.episode ? safeHttpUrl(job.episode.audio_url) : null;
  if (audioUrl && refs.audio.getAttribute("src") !== audioUrl) {
    refs.audio.setAttribute("src", audioUrl);
    refs.audio.addEventListener("loadedmetadata", applyPendingSeek, { once: true });
  }
  const percent = Math.round((Number(job.progress) || 0) * 100);
  const stateText = {
    queued: "Queued.",
    dispatched: "Starting…",
    running: `Transcribing: ${percent}% done. The transcript grows below as it is written.`,
    succeeded: "",
    failed: `This transcription failed: ${(job.error && job.error.message) || "unknown error"}.`,
  };
  refs.state.textContent = job.status in stateText ? stateText[job.status] : job.status;
  refs.downloads.hidden = job.status !== "succeeded";
  refs.share.hidden = job.status !== "succeeded";
}

function onJobUpdate(job) {
  if (!current || current.id !== job.id || !current.job) {
    return;
  }
  const was = current.job.status;
  showJob(job);
  const token = openToken;
  if (job.status === "succeeded" && !current.complete) {
    loadTranscript(token, false).catch(showError);
  } else if (
    ACTIVE.has(job.status) &&
    job.links &&
    job.links.partial_transcript &&
    !partialBusy &&
    Date.now() - partialFetchedAt >= PARTIAL_EVERY_MS
  ) {
    loadTranscript(token, true).catch((error) => {
      // The job may have ended between the two requests; the next poll tells.
      if (!(error instanceof ApiError && error.status === 409)) {
        showError(error);
      }
    });
  } else if (was !== job.status && job.status === "failed") {
    announce("The transcription failed.");
  }
}

async function loadTranscript(token, partial) {
  partialBusy = partial;
  if (partial) {
    partialFetchedAt = Date.now();
  }
  try {
    const query = partial ? "format=json&partial=true" : "format=json";
    const document_ = await json(`${jobPath(current.id)}/transcript?${query}`);
    if (token !== openToken || !current) {
      return;
    }
    if (!partial) {
      current.complete = true;
    } else if (current.complete) {
      return;
    }
    renderTranscript(document_);
  } finally {
    partialBusy = false;
  }
}

function renderTranscript(document_) {
  const segments = Array.isArray(document_.segments) ? document_.segments : [];
  const items = [];
  const rendered = [];
  let speaker = null; // the speaker of the segment before: a name shows where it changes
  for (const segment of segments) {
    const start = Number(segment.start) || 0;
    const end = Number(segment.end) || start;
    const time = el("button", {
      type: "button",
      className: "timestamp",
      "data-start": start,
      "aria-label": `Play from ${formatTime(start)}`,
      text: formatTime(start),
    });
    const text = el("p", { className: "segment-text" });
    const words = [];
    if (Array.isArray(segment.words) && segment.words.length) {
      for (const [index, word] of segment.words.entries()) {
        if (index) {
          text.append(" "); // one space between words (their own leading spaces are trimmed)
        }
        const node = el("span", {
          className: "word",
          "data-start": Number(word.start) || start,
          text: String(word.word).trim(),
        });
        text.append(node);
        words.push({ start: Number(word.start) || start, end: Number(word.end) || end, node });
      }
    } else {
      text.textContent = String(segment.text || "");
    }
    // The server names the speaker as this key sees it (its names, or the label; none when
    // the key turned speakers off).
    const name = typeof segment.speaker_name === "string" ? segment.speaker_name : null;
    const parts = [time];
    if (name && name !== speaker) {
      parts.push(el("cite", { className: "speaker", text: name }));
    }
    speaker = name;
    const node = el("li", { className: "segment", "data-start": start }, ...parts, text);
    items.push(node);
    rendered.push({ start, end, node, words });
  }
  current.segments = rendered;
  refs.transcript.replaceChildren(...items);
  if (!items.length) {
    refs.transcript.append(el("li", { className: "note", text: "No speech yet." }));
  }
  highlight();
  applyPendingSeek();
}

function onTranscriptClick(event) {
  const target = event.target.closest("[data-start]");
  if (!target || !refs.transcript.contains(target)) {
    return;
  }
  seek(Number(target.dataset.start));
}

function seek(seconds) {
  if (!current) {
    return;
  }
  if (refs.audio.readyState < 1) {
    current.pendingSeek = seconds; // applied once the metadata is in
    return;
  }
  refs.audio.currentTime = seconds;
  highlight();
}

function applyPendingSeek() {
  if (current && current.pendingSeek !== null && refs.audio.readyState >= 1) {
    const at = current.pendingSeek;
    current.pendingSeek = null;
    refs.audio.currentTime = at;
    highlight();
    const segment = findAt(current.segments, at);
    if (segment) {
      segment.node.scrollIntoView({ block: "center" });
    }
  }
}

/** The last item starting at or before t (items sorted by start). */
function findAt(items, t) {
  let low = 0;
  let high = items.length - 1;
  let found = null;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (items[middle].start <= t + 0.001) {
      found = items[middle];
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

function highlight() {
  if (!current) {
    return;
  }
  const t = current.pendingSeek !== null && current.pendingSeek !== undefined
    ? current.pendingSeek
    : refs.audio.currentTime;
  const segment = findAt(current.segments, t);
  for (const old of refs.transcript.querySelectorAll("[aria-current]")) {
    if (old !== (segment && segment.node)) {
      old.removeAttribute("aria-current");
    }
  }
  for (const old of refs.transcript.querySelectorAll(".word.current")) {
    old.classList.remove("current");
  }
  if (!segment) {
    return;
  }
  segment.node.setAttribute("aria-current", "true");
  const word = findAt(segment.words, t);
  if (word && t <= word.end + 0.25) {
    word.node.classList.add("current");
  }
}

async function download(format) {
  if (!current) {
    return;
  }
  const response = await request(`${jobPath(current.id)}/transcript?format=${format}`);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const slug = jobTitle(current.job).replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "") || "transcript";
  const link = el("a", { href: url, download: `${slug.slice(0, 80)}.${format}`, className: "visually-hidden" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  announce(`Downloaded the ${format.toUpperCase()} transcript.`);
}

async function shareTranscript() {
  if (!current) {
    return;
  }
  const link = await json(`${jobPath(current.id)}/links`, { method: "POST" });
  refs.shareLines.value = link.podcast_transcript;
  refs.shareLines.hidden = false;
  refs.shareLines.select();
  announce("Share link made: paste the lines shown into the episode's item in your feed.");
}

async function copyMoment() {
  if (!current) {
    return;
  }
  const url = momentUrl(current.id, refs.audio.currentTime || 0);
  refs.copied.value = url;
  refs.copied.hidden = false;
  try {
    await navigator.clipboard.writeText(url);
    announce("Link to this moment copied.");
  } catch {
    // No clipboard permission (or none at all): the link is shown, selected, to copy by hand.
    refs.copied.select();
    announce("Copy the link shown below the button.");
  }
}
