"""The dispatch Cloud Function: ``functions-framework --target dispatch`` (or ``sweep``).

Thin on purpose: the handlers live in :mod:`podscribe.jobs.dispatch_function`. Nothing
connects at import time; the database, the launcher and the publisher are built on the first
event.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from podscribe.jobs.dispatch_function import handle_dispatch, handle_sweep


@functions_framework.cloud_event
def dispatch(event: CloudEvent) -> None:
    """Launch the job a Pub/Sub wake-up names, at most once (a failed launch raises: retry)."""
    handle_dispatch(event)


@functions_framework.cloud_event
def sweep(event: CloudEvent) -> None:
    """Repair stalled and lost jobs, on Cloud Scheduler's tick."""
    handle_sweep(event)
