-- Warm workers (issue 19): a job process that finished its episode stays up for the next one,
-- so the GPU's provisioning and the model load are paid once for many episodes. Each process
-- keeps one row here; the jobs it runs still hold their own leases and heartbeats.
--
--   busy      running a job (job_id), or between two jobs
--   idle      waiting: dispatch may hand it a job, or it claims a queued one itself
--   assigned  dispatch handed it job_id (already dispatched with this worker's launch)
--   exited    gone (it said so, or the sweep found its heartbeat stale)
--
-- Only the worker moves busy -> idle and idle -> exited; only dispatch moves idle -> assigned.
-- Both lock the row first, so a job handed to a worker is never stranded by the worker's exit.
CREATE TABLE workers (
    id            uuid PRIMARY KEY,
    launcher      text NOT NULL,
    launcher_ref  text,
    state         text NOT NULL CHECK (state IN ('busy', 'idle', 'assigned', 'exited')),
    job_id        uuid,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    idle_since    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'assigned' OR job_id IS NOT NULL),
    CHECK (state <> 'idle' OR idle_since IS NOT NULL)
);

-- Dispatch's look-up of an idle worker with a fresh heartbeat, and the capacity count of the
-- live ones: both only ever read rows that have not exited.
CREATE INDEX workers_live_idx ON workers (state, heartbeat_at) WHERE state <> 'exited';
