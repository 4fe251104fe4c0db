-- One row per episode: the row is the source of truth, Pub/Sub messages only wake it.
CREATE TABLE jobs (
    id                  uuid PRIMARY KEY,
    -- Apple collection id + episode track id: the same episode is one job.
    collection_id       bigint NOT NULL,
    episode_id          bigint NOT NULL,
    source_url          text NOT NULL,
    status              text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'dispatched', 'running', 'succeeded', 'failed')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_expires_at    timestamptz,
    heartbeat_at        timestamptz,
    progress            double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    error_code          text,
    error_message       text,
    -- {"json": "transcripts/<id>/transcript.json", "srt": ..., "vtt": ..., "txt": ...}
    transcript_objects  jsonb,
    checkpoint_object   text,
    -- what the caller asked for
    requested_language  text,
    requested_model     text,
    -- what the resolver found: show, title, audio_url, guid, published_at, feed_url
    episode             jsonb,
    duration_seconds    double precision,
    -- what transcribed it
    language            text,
    model               text,
    device              text,
    compute_type        text,
    launcher            text,
    launcher_ref        text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    queued_at           timestamptz NOT NULL DEFAULT now(),
    dispatched_at       timestamptz,
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_episode_key UNIQUE (collection_id, episode_id),
    CONSTRAINT jobs_failed_has_reason CHECK (status <> 'failed' OR error_code IS NOT NULL),
    CONSTRAINT jobs_succeeded_has_transcript
        CHECK (status <> 'succeeded' OR transcript_objects IS NOT NULL)
);

-- The sweep's two questions: which leases expired, which queued jobs were forgotten.
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE status IN ('dispatched', 'running');
CREATE INDEX jobs_queued_idx ON jobs (queued_at) WHERE status = 'queued';

-- Who may see a job: every API key (by fingerprint, never the key) that submitted it.
CREATE TABLE job_access (
    job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key_fingerprint  text NOT NULL,
    callback_url     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, key_fingerprint)
);

-- Every transition, in order: the job's history.
CREATE TABLE job_events (
    seq          bigserial PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    from_status  text,
    to_status    text NOT NULL,
    attempts     integer NOT NULL,
    detail       text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, seq);
