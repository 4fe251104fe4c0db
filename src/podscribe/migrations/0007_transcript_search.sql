-- Full-text search over transcripts (GET /v1/search): a succeeded job's segments, one row
-- each, written in the transaction that marks the job succeeded (podscribe.jobs.search), so a
-- succeeded job is always searchable; its rows go when its row does.
CREATE TABLE transcript_segments (
    job_id         uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- The segment's number in the transcript, from 0.
    seq            integer NOT NULL CHECK (seq >= 0),
    start_seconds  double precision NOT NULL,
    end_seconds    double precision NOT NULL,
    text           text NOT NULL,
    -- English: stemmed ("transcribe" finds "transcribed"), stop words left out (a phrase still
    -- keeps their places: "ask not what your country" matches the words at those distances).
    -- Prefixes are also matched unstemmed (podscribe.jobs.search), so stemming never hides a
    -- word that starts with what was typed. The configuration is named, so the expression is
    -- immutable whatever default_text_search_config says.
    search_vector  tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED,
    PRIMARY KEY (job_id, seq)
);

CREATE INDEX transcript_segments_search_idx ON transcript_segments USING GIN (search_vector);
