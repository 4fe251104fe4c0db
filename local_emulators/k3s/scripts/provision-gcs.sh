#!/bin/sh
# Create the transcripts bucket in fake-gcs-server through the Cloud Storage JSON API.
# Idempotent (409 "already exists" counts as done); retried with bounded backoff
# (PROVISION_ATTEMPTS, PROVISION_BACKOFF_SECONDS) so the Job outlasts a slow start and the
# NetworkPolicy sync race; the Job's backoffLimit bounds the whole run again.
set -eu

: "${STORAGE_EMULATOR_HOST:?STORAGE_EMULATOR_HOST is required (http://host:port)}"
: "${PODSCRIBE_PROJECT_ID:?PODSCRIBE_PROJECT_ID is required}"
: "${PODSCRIBE_BUCKET:?PODSCRIBE_BUCKET is required}"
attempts="${PROVISION_ATTEMPTS:-12}"
backoff="${PROVISION_BACKOFF_SECONDS:-2}"

url="${STORAGE_EMULATOR_HOST%/}/storage/v1/b?project=${PODSCRIBE_PROJECT_ID}"
response="$(mktemp)"
trap 'rm -f "$response"' EXIT

try=1
while :; do
    code="$(curl --silent --show-error --connect-timeout 5 --max-time 10 --output "$response" \
        --write-out '%{http_code}' --request POST --header 'Content-Type: application/json' \
        --data "{\"name\": \"${PODSCRIBE_BUCKET}\"}" "$url")" || code=000
    case "$code" in
        200 | 409)
            echo "provision-gcs: bucket ${PODSCRIBE_BUCKET} ready (HTTP $code)"
            exit 0
            ;;
        4??)
            echo "provision-gcs: bucket refused (HTTP $code): $(cat "$response")" >&2
            exit 1
            ;;
    esac
    if [ "$try" -ge "$attempts" ]; then
        echo "provision-gcs: gave up after $attempts attempts (last: $code)" >&2
        exit 1
    fi
    sleep $((try * backoff))
    try=$((try + 1))
done
