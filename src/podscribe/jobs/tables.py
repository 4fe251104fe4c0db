"""The job tables as SQLAlchemy Core sees them (the schema itself is the migrations' SQL).

Declared once so every statement of the job operations (:mod:`podscribe.jobs`) is a Core
expression with typed, bound parameters: ids bind as UUIDs, JSON columns as ``jsonb``, and
``RETURNING`` yields the whole row.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

metadata = sa.MetaData()

_TIMESTAMP = sa.DateTime(timezone=True)
# Python None is SQL NULL, not the JSON literal ``null``, as the columns' readers expect.

jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("collection_id", sa.BigInteger, nullable=False),
    sa.Column("episode_id", sa.BigInteger, nullable=False),
    sa.Column("source_url", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_expires_at", _TIMESTAMP),
    sa.Column("heartbeat_at", _TIMESTAMP),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("transcript_objects", JSONB(none_as_null=True)),
    sa.Column("checkpoint_object", sa.Text),
    sa.Column("requested_language", sa.Text),
    sa.Column("requested_model", sa.Text),
    sa.Column("transcript_model", sa.Text, nullable=False),
    sa.Column("transcript_language", sa.Text, nullable=False),
    sa.Column("episode", JSONB(none_as_null=True)),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("language", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("device", sa.Text),
    sa.Column("compute_type", sa.Text),
    sa.Column("launcher", sa.Text),
    sa.Column("launcher_ref", sa.Text),
    sa.Column("created_at", _TIMESTAMP, nullable=False),
    sa.Column("queued_at", _TIMESTAMP, nullable=False),
    sa.Column("dispatched_at", _TIMESTAMP),
    sa.Column("started_at", _TIMESTAMP),
    sa.Column("finished_at", _TIMESTAMP),
    sa.Column("updated_at", _TIMESTAMP, nullable=False),
    sa.Column("speakers_expected", sa.Integer),
    sa.Column("transcript_source", sa.Text),
    sa.Column("provenance", JSONB(none_as_null=True)),
    sa.Column("skip_publisher", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("speaker_labels", ARRAY(sa.Text), nullable=False, server_default="{}"),
)

job_access_table = sa.Table(
    "job_access",
    metadata,
    sa.Column("job_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("key_fingerprint", sa.Text, primary_key=True),
    sa.Column("callback_url", sa.Text),
    sa.Column("source_url", sa.Text, nullable=False),
    sa.Column("created_at", _TIMESTAMP, nullable=False),
    sa.Column("speakers", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("speaker_names", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)

share_links_table = sa.Table(
    "share_links",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("job_id", UUID(as_uuid=True), nullable=False),
    sa.Column("key_fingerprint", sa.Text, nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("token_sha256", sa.LargeBinary, nullable=False),
    sa.Column("created_at", _TIMESTAMP, nullable=False),
)

job_events_table = sa.Table(
    "job_events",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("job_id", UUID(as_uuid=True), nullable=False),
    sa.Column("from_status", sa.Text),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("at", _TIMESTAMP, nullable=False),
)

key_launch_requests_table = sa.Table(
    "key_launch_requests",
    metadata,
    sa.Column("key_fingerprint", sa.Text, nullable=False),
    sa.Column("job_id", UUID(as_uuid=True), nullable=False),
    sa.Column("requested_at", _TIMESTAMP, nullable=False),
)

webhook_deliveries_table = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("job_id", UUID(as_uuid=True), nullable=False),
    sa.Column("key_fingerprint", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", _TIMESTAMP, nullable=False),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", _TIMESTAMP, nullable=False),
    sa.Column("delivered_at", _TIMESTAMP),
)

transcript_segments_table = sa.Table(
    "transcript_segments",
    metadata,
    sa.Column("job_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("start_seconds", sa.Float, nullable=False),
    sa.Column("end_seconds", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    # PostgreSQL's generated column (migration 0007): never written, so never in an INSERT.
    sa.Column("search_vector", TSVECTOR, sa.Computed("to_tsvector('english'::regconfig, text)")),
)

workers_table = sa.Table(
    "workers",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("launcher", sa.Text, nullable=False),
    sa.Column("launcher_ref", sa.Text),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("job_id", UUID(as_uuid=True)),
    sa.Column("started_at", _TIMESTAMP, nullable=False, server_default=sa.func.now()),
    sa.Column("heartbeat_at", _TIMESTAMP, nullable=False, server_default=sa.func.now()),
    sa.Column("idle_since", _TIMESTAMP),
    sa.Column("updated_at", _TIMESTAMP, nullable=False, server_default=sa.func.now()),
)
