-- The webhook outbox: one row per event and key, written in the transaction that ends the job,
-- so a delivery outlives the process that ended it; the sweep retries what is still pending.
CREATE TABLE webhook_deliveries (
    -- The Standard Webhooks `webhook-id`: stable across the retries of one delivery.
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id            uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key_fingerprint   text NOT NULL,
    url               text NOT NULL,
    event_type        text NOT NULL
        CHECK (event_type IN ('transcription.succeeded', 'transcription.failed')),
    status            text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'abandoned')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    -- The receiver's last HTTP status, and a podscribe error code (never a URL: it may be a
    -- credential).
    last_status       integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    CONSTRAINT webhook_deliveries_event_key UNIQUE (job_id, key_fingerprint, event_type),
    CONSTRAINT webhook_deliveries_delivered_has_time
        CHECK (status <> 'delivered' OR delivered_at IS NOT NULL)
);

-- The sweep's question: which pending deliveries are due.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
