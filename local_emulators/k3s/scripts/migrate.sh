#!/bin/sh
# Apply the database migrations before submit, dispatch or sweep start serving.
#
# Two layers of waiting, both bounded:
#   * `python -m podscribe.db migrate` itself waits for PostgreSQL with exponential backoff
#     for up to PODSCRIBE_DB_WAIT_SECONDS, then exits 2 naming the database and the last error.
#   * this loop runs it up to MIGRATE_ATTEMPTS times. A new pod's NetworkPolicy rules are
#     programmed a moment after the pod starts (the "sync race"): until then its packets are
#     dropped, and a connect can hang until its own timeout rather than fail fast, so one
#     attempt's budget may be spent before the path is open. A fresh process gets a fresh
#     connection pool and a fresh budget.
# Exit status: 0 once migrations are applied (idempotent, under an advisory lock, so several
# pods may run this at once); 1 after the last attempt failed.
set -u

attempts="${MIGRATE_ATTEMPTS:-5}"
backoff="${MIGRATE_BACKOFF_SECONDS:-5}"

attempt=1
while [ "$attempt" -le "$attempts" ]; do
    if python -m podscribe.db migrate; then
        exit 0
    fi
    if [ "$attempt" -lt "$attempts" ]; then
        delay=$((attempt * backoff))
        echo "migrate: attempt $attempt of $attempts failed; retrying in ${delay}s" >&2
        sleep "$delay"
    fi
    attempt=$((attempt + 1))
done
echo "migrate: gave up after $attempts attempts" >&2
exit 1
