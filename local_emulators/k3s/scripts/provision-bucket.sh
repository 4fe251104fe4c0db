#!/bin/sh
# Create the transcripts bucket in MinIO (the stand-in for terraform/modules/storage), through
# the application's own storage layer: TranscriptStore.ensure_bucket under
# PODSCRIBE_STORAGE_BACKEND=s3, with the same endpoint, region and keys submit and the job use.
#
# MinIO may not answer yet (pod starting, volume attaching) and a new pod's NetworkPolicy
# rules are programmed a moment after it starts, so each try is retried with exponential
# backoff: PROVISION_BACKOFF_SECONDS, doubled after every failed try up to
# PROVISION_MAX_DELAY_SECONDS, for at most PROVISION_ATTEMPTS tries. A try is one request
# (the store's own retries are off here: this loop is the one backoff). An answer that can
# never succeed (bad keys, an invalid bucket name, a broken configuration) fails at once.
# Idempotent: an existing bucket, and what is in it, is kept. The Job's backoffLimit bounds
# the reruns of the whole pod.
# Exit status: 0 once the bucket exists; 1 after the last try; 2 on a permanent refusal.
set -u

: "${PODSCRIBE_S3_ENDPOINT_URL:?PODSCRIBE_S3_ENDPOINT_URL is required (http://host:port)}"
: "${PODSCRIBE_BUCKET:?PODSCRIBE_BUCKET is required}"
attempts="${PROVISION_ATTEMPTS:-10}"
delay="${PROVISION_BACKOFF_SECONDS:-1}"
max_delay="${PROVISION_MAX_DELAY_SECONDS:-30}"

# Exit 0: the bucket exists; 1: worth another try (unreachable, throttled, 5xx); 2: refused.
ensure_bucket='
import sys

from podscribe.errors import StorageError
from podscribe.settings import get_settings
from podscribe.storage import TranscriptStore, backend_for

try:
    settings = get_settings()
except Exception as error:  # the configuration can never work: no retry
    print(f"configuration refused: {error}", file=sys.stderr)
    sys.exit(2)
backend = backend_for(settings)
try:
    TranscriptStore(settings, backend=backend, attempts=1).ensure_bucket()
except StorageError as error:
    cause = error.__cause__
    transient = cause is not None and backend.is_transient(cause)
    print(f"{error}", file=sys.stderr)
    sys.exit(1 if transient else 2)
'

try=1
while :; do
    python -c "$ensure_bucket"
    status=$?
    case "$status" in
        0)
            echo "provision-bucket: bucket ${PODSCRIBE_BUCKET} ready at" \
                "${PODSCRIBE_S3_ENDPOINT_URL} (try $try)"
            exit 0
            ;;
        1) ;;
        *)
            echo "provision-bucket: refused; not retrying" >&2
            exit 2
            ;;
    esac
    if [ "$try" -ge "$attempts" ]; then
        echo "provision-bucket: gave up after $attempts tries" >&2
        exit 1
    fi
    echo "provision-bucket: try $try of $attempts failed; retrying in ${delay}s" >&2
    sleep "$delay"
    delay=$((delay * 2))
    if [ "$delay" -gt "$max_delay" ]; then
        delay="$max_delay"
    fi
    try=$((try + 1))
done
