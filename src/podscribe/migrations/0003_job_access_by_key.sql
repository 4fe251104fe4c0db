-- A key's jobs, newest first: the keyset the list endpoint pages by (access time, then id).
CREATE INDEX job_access_key_recent_idx
    ON job_access (key_fingerprint, created_at DESC, job_id DESC);
