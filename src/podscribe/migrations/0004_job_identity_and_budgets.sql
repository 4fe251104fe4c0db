-- A job is the episode *and* what shapes its transcript: the model that runs and the language
-- asked for ('' = detected). Key A's options no longer bind key B: other options, other job.
ALTER TABLE jobs ADD COLUMN transcript_model text;
ALTER TABLE jobs ADD COLUMN transcript_language text;
UPDATE jobs SET transcript_model = coalesce(requested_model, model, ''),
                transcript_language = coalesce(requested_language, '');
ALTER TABLE jobs ALTER COLUMN transcript_model SET NOT NULL;
ALTER TABLE jobs ALTER COLUMN transcript_language SET NOT NULL;
ALTER TABLE jobs DROP CONSTRAINT jobs_episode_key;
ALTER TABLE jobs ADD CONSTRAINT jobs_identity_key
    UNIQUE (collection_id, episode_id, transcript_model, transcript_language);

-- Each key sees the link it sent (tracking parameters are its own business).
ALTER TABLE job_access ADD COLUMN source_url text;
UPDATE job_access SET source_url = jobs.source_url FROM jobs WHERE jobs.id = job_access.job_id;
ALTER TABLE job_access ALTER COLUMN source_url SET NOT NULL;

-- What a key's submissions set in motion: one row per job a submission created or queued
-- again (each will need a launch). Not cascaded from jobs: deleting a job does not refund
-- its launch. The sweep purges rows older than the hour the budget counts.
CREATE TABLE key_launch_requests (
    key_fingerprint  text NOT NULL,
    job_id           uuid NOT NULL,
    requested_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX key_launch_requests_key_idx ON key_launch_requests (key_fingerprint, requested_at);
CREATE INDEX key_launch_requests_age_idx ON key_launch_requests (requested_at);

-- The deployment-wide launch cap counts active jobs: keep that count an index scan.
CREATE INDEX jobs_active_idx ON jobs (status) WHERE status IN ('dispatched', 'running');
