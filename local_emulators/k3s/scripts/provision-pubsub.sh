#!/bin/sh
# Create the Pub/Sub shape of terraform/modules/pubsub in the emulator, over its REST API:
#   topic        ${PODSCRIBE_PUBSUB_TOPIC}                 (wakes dispatch)
#   topic + sub  ${PODSCRIBE_PUBSUB_TOPIC}-dead-letter     (parks undeliverable wake-ups)
#   push sub     podscribe-dispatch -> ${DISPATCH_PUSH_BASE_URL}/projects/<project>/topics/<topic>
#                with the retry and dead-letter policies of terraform's defaults
#                (ack deadline 120 s, backoff 10-600 s, 10 delivery attempts).
# The path matters: functions-framework reads the topic from it when it turns the push body
# into the same CloudEvent Eventarc delivers in GCP.
#
# Idempotent (409 "already exists" counts as done). Every request is retried with bounded
# backoff (PROVISION_ATTEMPTS, PROVISION_BACKOFF_SECONDS) so the Job outlasts a slow emulator
# start and the NetworkPolicy sync race; the Job's backoffLimit bounds the whole run again.
set -eu

: "${PUBSUB_EMULATOR_HOST:?PUBSUB_EMULATOR_HOST is required (host:port)}"
: "${PODSCRIBE_PROJECT_ID:?PODSCRIBE_PROJECT_ID is required}"
: "${PODSCRIBE_PUBSUB_TOPIC:?PODSCRIBE_PUBSUB_TOPIC is required}"
: "${DISPATCH_PUSH_BASE_URL:?DISPATCH_PUSH_BASE_URL is required (e.g. http://dispatch:8080)}"
attempts="${PROVISION_ATTEMPTS:-12}"
backoff="${PROVISION_BACKOFF_SECONDS:-2}"
max_delivery_attempts="${MAX_DELIVERY_ATTEMPTS:-10}"

project="projects/${PODSCRIBE_PROJECT_ID}"
api="http://${PUBSUB_EMULATOR_HOST}/v1"
topic="${PODSCRIBE_PUBSUB_TOPIC}"
dead_letter="${topic}-dead-letter"
push_endpoint="${DISPATCH_PUSH_BASE_URL%/}/${project}/topics/${topic}"
response="$(mktemp)"
trap 'rm -f "$response"' EXIT

# put PATH BODY: PUT the resource, retrying transport errors and 5xx; 200 and 409 are success.
put() {
    try=1
    while :; do
        code="$(curl --silent --show-error --connect-timeout 5 --max-time 10 --output "$response" \
            --write-out '%{http_code}' --request PUT \
            --header 'Content-Type: application/json' --data "$2" "${api}/$1")" || code=000
        case "$code" in
            200 | 409)
                echo "provision-pubsub: $1 ready (HTTP $code)"
                return 0
                ;;
            4??)
                echo "provision-pubsub: $1 refused (HTTP $code): $(cat "$response")" >&2
                return 1
                ;;
        esac
        if [ "$try" -ge "$attempts" ]; then
            echo "provision-pubsub: gave up on $1 after $attempts attempts (last: $code)" >&2
            return 1
        fi
        sleep $((try * backoff))
        try=$((try + 1))
    done
}

put "${project}/topics/${topic}" '{}'
put "${project}/topics/${dead_letter}" '{}'
put "${project}/subscriptions/${dead_letter}" \
    "{\"topic\": \"${project}/topics/${dead_letter}\", \"ackDeadlineSeconds\": 60}"
put "${project}/subscriptions/podscribe-dispatch" "{
  \"topic\": \"${project}/topics/${topic}\",
  \"ackDeadlineSeconds\": 120,
  \"pushConfig\": {\"pushEndpoint\": \"${push_endpoint}\"},
  \"retryPolicy\": {\"minimumBackoff\": \"10s\", \"maximumBackoff\": \"600s\"},
  \"deadLetterPolicy\": {
    \"deadLetterTopic\": \"${project}/topics/${dead_letter}\",
    \"maxDeliveryAttempts\": ${max_delivery_attempts}
  }
}"
echo "provision-pubsub: done; dispatch is pushed at ${push_endpoint}"
