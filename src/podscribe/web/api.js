// The API client of the web app: the key lives in sessionStorage only (never in a URL, nor
// in storage that outlives the tab), every request carries it as a Bearer token, and every error answer
// (application/problem+json) becomes an ApiError the page can show as it is.

const KEY_NAME = "podscribe.apiKey";

/** An error answer of the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, title, detail, code, retryAfter) {
    super(detail || title);
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** The one line shown in the page's alert region. */
  get summary() {
    const code = this.code ? ` (${this.code})` : "";
    if (this.detail && this.title && this.detail !== this.title) {
      return `${this.title}: ${this.detail}${code}`;
    }
    return `${this.detail || this.title}${code}`;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_NAME);
}

function newIdempotencyKey() {
  // crypto.randomUUID exists in secure contexts (https, and http on loopback).
  return globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : null;
}

async function problemOf(response) {
  const retry = Number.parseFloat(response.headers.get("Retry-After") || "");
  const retryAfter = Number.isFinite(retry) ? retry : null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      const body = await response.json();
      return new ApiError(
        response.status,
        String(body.title || response.statusText || "Error"),
        String(body.detail || ""),
        body.code ? String(body.code) : null,
        retryAfter,
      );
    } catch {
      // Not JSON after all: fall through to the status line.
    }
  }
  return new ApiError(response.status, `${response.status} ${response.statusText}`, "", null, retryAfter);
}

/**
 * Send one request to the API.
 *
 * @param {string} path - the path and query, e.g. "/v1/transcriptions?limit=20".
 * @param {{method?: string, body?: object, signal?: AbortSignal}} options
 * @returns {Promise<Response>} the answer, when it is a 2xx one.
 * @throws {ApiError} the problem document of any other answer, or status 0 offline.
 */
export async function request(path, { method = "GET", body, signal } = {}) {
  const key = getKey();
  if (!key) {
    throw new ApiError(401, "Not signed in", "Sign in with your API key first.", "unauthorized", null);
  }
  const headers = { Authorization: `Bearer ${key}`, Accept: "application/json, */*" };
  const init = { method, headers, signal, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    const idempotencyKey = method === "POST" ? newIdempotencyKey() : null;
    if (idempotencyKey) {
      headers["Idempotency-Key"] = idempotencyKey;
    }
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error && error.name === "AbortError") {
      throw error;
    }
    throw new ApiError(0, "Network error", "The server could not be reached.", null, null);
  }
  if (!response.ok) {
    throw await problemOf(response);
  }
  return response;
}

/** GET (or another method) and parse the JSON answer. */
export async function json(path, options) {
  const response = await request(path, options);
  return response.status === 204 ? null : response.json();
}

export const jobPath = (id) => `/v1/transcriptions/${encodeURIComponent(id)}`;
