// DOM helpers: every element is built with createElement and textContent, so no server
// string is ever parsed as HTML.

/**
 * Make an element.
 *
 * @param {string} tag - the tag name.
 * @param {Object<string, string|number|boolean>} [attributes] - attributes ("text" sets the
 *   text content; false or null leaves an attribute out).
 * @param {...(Node|string)} children - appended in order (strings as text nodes).
 */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) {
      continue;
    }
    if (name === "text") {
      element.textContent = String(value);
    } else if (name === "className") {
      element.className = String(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  element.append(...children);
  return element;
}

/** "1:02:03" / "2:03" for a time in seconds. */
export function formatTime(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

const alertRegion = () => document.getElementById("alert");
const statusRegion = () => document.getElementById("status");

/** Show an error (an ApiError or any Error) in the page's role="alert" region. */
export function showError(error) {
  const message = error && error.summary ? error.summary : String((error && error.message) || error);
  const region = alertRegion();
  region.textContent = "";
  region.append(el("p", { text: message }));
}

export function clearError() {
  const region = alertRegion();
  region.textContent = "";
}

/** A polite announcement (role="status"). */
export function announce(message) {
  statusRegion().textContent = message;
}

/** Only http(s) URLs are used as media sources or link targets. */
export function safeHttpUrl(value) {
  try {
    const url = new URL(String(value), window.location.href);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** The job's display title: the episode's title once resolved, its link before. */
export function jobTitle(job) {
  return (job.episode && job.episode.title) || job.source_url || job.id;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
