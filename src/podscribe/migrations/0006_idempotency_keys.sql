-- Idempotency-Key on POST /v1/transcriptions: the first answer to a key, replayed for repeats.
-- A row is reserved (status NULL) before the request is processed and completed with its
-- answer in the transaction that makes the job, so a crash leaves no answer without a job.
CREATE TABLE idempotency_keys (
    -- The caller (podscribe.api.auth.key_fingerprint) and the header's value: keys of two
    -- API keys never meet.
    key_fingerprint   text NOT NULL,
    idempotency_key   text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and canonical JSON body: a key reused for another request is
    -- refused (422), not answered with the first one's job.
    request_hash      text NOT NULL,
    -- NULL while the first request is in flight; then the answer's status, body and Location.
    status            integer CHECK (status IS NULL OR status BETWEEN 200 AND 299),
    body              jsonb,
    location          text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_fingerprint, idempotency_key),
    CONSTRAINT idempotency_keys_answer_complete CHECK (status IS NULL OR body IS NOT NULL)
);

-- The sweep's purge of expired entries (PODSCRIBE_IDEMPOTENCY_TTL_HOURS).
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
