-- A dispatched or running job without a lease could never be reclaimed by the sweep.
ALTER TABLE jobs ADD CONSTRAINT jobs_active_has_lease
    CHECK (status NOT IN ('dispatched', 'running') OR lease_expires_at IS NOT NULL);
