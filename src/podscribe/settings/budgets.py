"""What one caller, and the whole deployment, may spend on GPUs.

Each limit is checked where the money would be spent: a key's limits when its submission
would create a job or queue one again (:mod:`podscribe.jobs.budgets`), the deployment's cap
when dispatch is about to launch (:mod:`podscribe.jobs.dispatcher`).
"""

from __future__ import annotations

from pydantic import Field

from podscribe.settings.base import SettingsGroup, variable

__all__ = ["BudgetSettings"]


class BudgetSettings(SettingsGroup):
    """GPU budgets: per API key, per deployment, and how long a hopeless episode is refused."""

    key_max_active_jobs: int = Field(
        10,
        ge=1,
        validation_alias=variable("PODSCRIBE_KEY_MAX_ACTIVE_JOBS"),
        description="Queued, dispatched or running jobs one API key may have at once; a "
        "submission that would start one more is `429 too_many_active_jobs`.",
    )
    key_launches_per_hour: int = Field(
        30,
        ge=0,
        validation_alias=variable("PODSCRIBE_KEY_LAUNCHES_PER_HOUR"),
        description="Jobs one API key may start (create, or queue again) per rolling hour; "
        "past it `429 launch_budget_exhausted` with `Retry-After`. 0: the key may only read and "
        "join jobs others started.",
    )
    max_concurrent_jobs: int = Field(
        4,
        ge=1,
        validation_alias=variable("PODSCRIBE_MAX_CONCURRENT_JOBS"),
        description="Jobs dispatched or running at once across the deployment (every "
        "launcher); dispatch waits for a slot without spending an attempt.",
    )
    failed_retry_after_seconds: int = Field(
        21_600,
        ge=0,
        validation_alias=variable("PODSCRIBE_FAILED_RETRY_AFTER_SECONDS"),
        description="How long an episode that failed for a reason of its own (not found, "
        "refused, too long, not audio) is answered with that failure instead of being tried "
        "again; transient failures are retried at once.",
    )
