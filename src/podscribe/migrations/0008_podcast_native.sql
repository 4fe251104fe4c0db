-- Podcast-native transcripts (issue 18): who spoke, the publisher's transcript first.

-- The first submitter's hint of how many speakers there are (diarization estimates the count
-- when NULL); later submitters join the job as it is.
ALTER TABLE jobs ADD COLUMN speakers_expected integer
    CHECK (speakers_expected IS NULL OR speakers_expected BETWEEN 1 AND 10);
-- How the transcript was made: 'model' (transcribed here) or 'publisher' (the feed's own
-- <podcast:transcript>, normalised); NULL until the job succeeds.
ALTER TABLE jobs ADD COLUMN transcript_source text
    CHECK (transcript_source IS NULL OR transcript_source IN ('model', 'publisher'));
-- Where a publisher's transcript came from: URL, declared type, sha256, bytes, the audio's
-- declared length when it was taken.
ALTER TABLE jobs ADD COLUMN provenance jsonb;
-- A caller asked to transcribe even though the feed carries a transcript ("force": true).
ALTER TABLE jobs ADD COLUMN skip_publisher boolean NOT NULL DEFAULT false;

-- Per caller, how they see the transcript: with speaker labels or not ("speakers": false),
-- and the names they gave the labels (PATCH .../speakers): {"S1": "Ann", ...}.
ALTER TABLE job_access ADD COLUMN speakers boolean NOT NULL DEFAULT true;
ALTER TABLE job_access ADD COLUMN speaker_names jsonb NOT NULL DEFAULT '{}'::jsonb;
