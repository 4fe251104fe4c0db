// The web app's entry point: sign-in and sign-out, the Transcribe form, and the hash router
// (#/ is the library, #/t/<job id> the reader, #/t/<job id>?t=<seconds> the reader at a
// moment). Other hashes (the skip link's #main) leave the view as it is.

import { ApiError, clearKey, getKey, json, setKey } from "./api.js";
import { announce, clearError, showError } from "./dom.js";
import { unwatchAll } from "./jobs.js";
import { initLibrary, prepend, reload, resetLibrary } from "./library.js";
import { closeReader, initReader, openReader, readerJobId } from "./reader.js";
import { initSearch, resetSearch } from "./search.js";

const ROUTE = /^#\/t\/([0-9A-Za-z-]+)(?:\?t=(\d+(?:\.\d+)?))?$/;

const $ = (id) => document.getElementById(id);

function signedIn() {
  return Boolean(getKey());
}

function showSignedIn(yes) {
  $("signin").hidden = yes;
  $("signout").hidden = !yes;
  $("home").hidden = !yes;
  if (!yes) {
    $("reader").hidden = true;
  }
}

async function signIn(event) {
  event.preventDefault();
  clearError();
  const input = $("api-key");
  const key = input.value.trim();
  if (!key) {
    showError(new Error("Enter your API key."));
    input.focus();
    return;
  }
  setKey(key);
  try {
    await reload(); // the first page of the library is the check that the key works
  } catch (error) {
    clearKey();
    showError(error);
    input.focus();
    return;
  }
  input.value = "";
  showSignedIn(true);
  announce("Signed in.");
  await route();
  $("episode-url").focus();
}

function signOut() {
  clearKey();
  unwatchAll();
  closeReader();
  resetLibrary();
  resetSearch();
  clearError();
  showSignedIn(false);
  if (window.location.hash) {
    history.replaceState(null, "", window.location.pathname);
  }
  announce("Signed out.");
  $("api-key").focus();
}

async function transcribe(event) {
  event.preventDefault();
  clearError();
  const input = $("episode-url");
  const url = input.value.trim();
  if (!url) {
    showError(new Error("Paste an Apple Podcasts episode link."));
    input.focus();
    return;
  }
  const button = $("transcribe-button");
  button.disabled = true;
  try {
    const job = await json("/v1/transcriptions", { method: "POST", body: { url } });
    prepend(job);
    input.value = "";
    announce("Transcription started: it is at the top of your transcripts.");
  } finally {
    button.disabled = false;
  }
}

/** Show the view the address names. */
async function route() {
  if (!signedIn()) {
    return;
  }
  const hash = window.location.hash;
  const match = ROUTE.exec(hash);
  if (match) {
    $("home").hidden = true;
    $("reader").hidden = false;
    const at = match[2] !== undefined ? Number(match[2]) : null;
    const fresh = readerJobId() !== match[1];
    await openReader(match[1], at);
    if (fresh) {
      $("reader-title").focus();
    }
  } else if (hash === "" || hash === "#" || hash === "#/") {
    if (readerJobId()) {
      closeReader();
    }
    $("reader").hidden = true;
    $("home").hidden = false;
  }
}

function handle(promise) {
  promise.catch((error) => {
    if (error instanceof ApiError && error.status === 401 && signedIn()) {
      signOut();
    }
    showError(error);
  });
}

function start() {
  initLibrary((id) => {
    if (readerJobId() === id) {
      window.location.hash = "#/";
    }
  });
  initReader();
  initSearch();
  $("signin-form").addEventListener("submit", (event) => handle(signIn(event)));
  $("signout").addEventListener("click", signOut);
  $("transcribe-form").addEventListener("submit", (event) => handle(transcribe(event)));
  $("skip-link").addEventListener("click", (event) => {
    // Focus the main region without changing the address (the hash is the router's).
    event.preventDefault();
    $("main").focus();
  });
  window.addEventListener("hashchange", () => handle(route()));
  showSignedIn(signedIn());
  if (signedIn()) {
    handle(reload().then(route));
  } else {
    $("api-key").focus();
  }
}

start();
