#!/bin/sh
# One sweep tick: POST a Pub/Sub push-shaped body to the sweep target, exactly what the
# podscribe-sweep push subscription delivers in GCP after Cloud Scheduler publishes
# {"reason": "sweep"}. functions-framework turns it into the same CloudEvent (the topic comes
# from the path /projects/<project>/topics/podscribe-sweep; messageId is required by it).
set -eu

: "${SWEEP_URL:?SWEEP_URL is required (e.g. http://sweep:8080)}"
: "${PODSCRIBE_PROJECT_ID:?PODSCRIBE_PROJECT_ID is required}"
retry_delay="${SWEEP_RETRY_DELAY_SECONDS:-5}"

project="projects/${PODSCRIBE_PROJECT_ID}"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# base64 of {"reason":"sweep"}, the Cloud Scheduler payload in terraform/modules/pubsub.
data="eyJyZWFzb24iOiJzd2VlcCJ9"
body="{\"message\": {\"data\": \"${data}\", \"messageId\": \"sweep-$(date -u +%s)\",
  \"publishTime\": \"${now}\", \"attributes\": {}},
  \"subscription\": \"${project}/subscriptions/podscribe-sweep\"}"

# A short connect timeout turns packets dropped during the NetworkPolicy sync race into a
# quick retry instead of a long hang.
curl --fail --silent --show-error --connect-timeout 10 --max-time 120 \
    --retry 3 --retry-delay "$retry_delay" --retry-connrefused \
    --header 'Content-Type: application/json' --data "$body" \
    "${SWEEP_URL%/}/${project}/topics/podscribe-sweep"
echo "sweep-trigger: tick delivered at ${now}"
