-- Speaker names and share links (issue 18): what a caller names the voices, and the public
-- URLs players and feeds load a transcript from.

-- The transcript's speaker labels ('S1', 'S2', ... in order of first appearance), written
-- where its segments are indexed for search (the job's success transaction), so the job
-- document lists them and a rename is checked against them without reading storage.
ALTER TABLE jobs ADD COLUMN speaker_labels text[] NOT NULL DEFAULT '{}';

-- A share link: one owner (a key with access to the job), one unguessable token serving every
-- format at /t/<token>.<ext>. Revoking deletes the row, so the token is unknown at once; the
-- owner's access going (DELETE by that key, or the job's row with its last key) takes its
-- links with it. The token is kept so that the owner's job document can show the URLs again
-- (the ready-to-paste <podcast:transcript> lines): it guards nothing a reader of this
-- database could not already read (transcript_segments holds the text). Look-ups go by its
-- SHA-256, so no comparison ever runs over the secret itself.
CREATE TABLE share_links (
    id               uuid PRIMARY KEY,
    job_id           uuid NOT NULL,
    key_fingerprint  text NOT NULL,
    token            text NOT NULL,
    token_sha256     bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (job_id, key_fingerprint)
        REFERENCES job_access (job_id, key_fingerprint) ON DELETE CASCADE
);

CREATE INDEX share_links_owner_idx ON share_links (job_id, key_fingerprint, created_at);
