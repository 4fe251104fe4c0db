// Live jobs: one poll loop per active job (GET /v1/transcriptions/<id> about once a second),
// shared by the library and the reader; it backs off on 429 by the answer's Retry-After and
// stops once the job has ended (succeeded or failed).

import { ApiError, json, jobPath } from "./api.js";

export const ACTIVE = new Set(["queued", "dispatched", "running"]);
const INTERVAL_MS = 1000;
const MAX_BACKOFF_MS = 30000;

const listeners = new Set();
const polls = new Map(); // job id -> {timer, failures}

/** Call fn(job) with every job document fetched; returns the function that stops it. */
export function onJob(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Tell every listener about a job document (fetched here or elsewhere). */
export function publish(job) {
  for (const fn of listeners) {
    fn(job);
  }
  if (ACTIVE.has(job.status)) {
    watch(job.id);
  }
}

/** Poll a job until it ends (no-op when it is already polled). */
export function watch(id) {
  if (polls.has(id)) {
    return;
  }
  const poll = { timer: null, failures: 0 };
  polls.set(id, poll);
  schedule(id, poll, INTERVAL_MS);
}

/** Stop polling a job (deleted, or signed out). */
export function unwatch(id) {
  const poll = polls.get(id);
  if (poll) {
    clearTimeout(poll.timer);
    polls.delete(id);
  }
}

export function unwatchAll() {
  for (const id of [...polls.keys()]) {
    unwatch(id);
  }
}

function schedule(id, poll, delay) {
  poll.timer = setTimeout(() => tick(id, poll), delay);
}

async function tick(id, poll) {
  if (polls.get(id) !== poll) {
    return;
  }
  let job;
  try {
    job = await json(jobPath(id));
  } catch (error) {
    if (polls.get(id) !== poll) {
      return;
    }
    if (error instanceof ApiError && (error.status === 404 || error.status === 401)) {
      unwatch(id);
      return;
    }
    poll.failures += 1;
    const backoff =
      error instanceof ApiError && error.retryAfter !== null
        ? error.retryAfter * 1000
        : Math.min(MAX_BACKOFF_MS, INTERVAL_MS * 2 ** poll.failures);
    schedule(id, poll, backoff);
    return;
  }
  if (polls.get(id) !== poll) {
    return;
  }
  poll.failures = 0;
  if (!ACTIVE.has(job.status)) {
    polls.delete(id);
  }
  for (const fn of listeners) {
    fn(job);
  }
  if (polls.get(id) === poll) {
    schedule(id, poll, INTERVAL_MS);
  }
}
