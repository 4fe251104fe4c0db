"""Each package's public names, pinned: a change to what callers may import is deliberate.

Design contract 7 names what the top level exports; each sub-package's ``__all__`` is its
interface to the rest of podscribe. Every name listed must exist (``from X import *`` works).
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

from podscribe import errors

CONTRACT_7 = {
    "parse_episode_url",
    "resolve_episode",
    "Episode",
    "EpisodeRef",
    "clear_lookup_cache",
    "parse_feed",
    "find_entry",
    "SafeFetcher",
    "check_url",
    "load_settings",
    "get_settings",
    "Settings",
    "PodscribeError",
    "Job",
    "JobStatus",
}

EXPORTS = {
    "podscribe.egress": [
        "DownloadedAudio",
        "FetchedDocument",
        "GuardDecision",
        "Resolver",
        "SafeFetcher",
        "check_url",
    ],
    "podscribe.podcasts": [
        "Episode",
        "EpisodeRef",
        "Feed",
        "FeedEntry",
        "clear_lookup_cache",
        "find_entry",
        "parse_episode_url",
        "parse_feed",
        "resolve_episode",
    ],
    "podscribe.transcription": [],
    "podscribe.jobs": [
        "ACTIVE_STATUSES",
        "TRANSITIONS",
        "AccessRemoval",
        "Claim",
        "Job",
        "JobEvent",
        "JobId",
        "JobPage",
        "JobStatus",
        "ListPosition",
        "SubmitOutcome",
        "SweepReport",
        "callback_urls",
        "claim",
        "claim_for_dispatch",
        "claim_next_queued",
        "count_active",
        "create_or_get_job",
        "fail",
        "get_job",
        "heartbeat",
        "hold_launch_slots",
        "job_history",
        "launched_jobs",
        "list_jobs",
        "lock_job",
        "parse_job_id",
        "record_launch",
        "remove_access",
        "requeue",
        "start_running",
        "succeed",
        "sweep",
        "transition",
        "update_job_fields",
    ],
    "podscribe.api": [],
    "podscribe.jobs.launchers": [
        "LaunchResult",
        "Launcher",
        "LauncherState",
        "LauncherStatus",
        "launcher_for",
    ],
    "podscribe.settings": [
        "ApiSettings",
        "BudgetSettings",
        "CliSettings",
        "DatabaseSettings",
        "Environment",
        "FetchSettings",
        "GROUPS",
        "JobSettings",
        "LaunchSettings",
        "Launcher",
        "LocalProfileSettings",
        "MessagingSettings",
        "ProfileSettings",
        "RateLimitSettings",
        "Settings",
        "SettingsGroup",
        "StorageSettings",
        "TranscriptionSettings",
        "WebhookSettings",
        "WhisperDevice",
        "env_name",
        "get_settings",
        "load_settings",
        "settings_table",
    ],
    "podscribe.net_guard": ["main"],
}


def _error_classes() -> set[str]:
    return {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.PodscribeError)
    }


def test_the_top_level_exports_contract_7_and_every_error_class() -> None:
    import podscribe

    exported = set(podscribe.__all__)
    assert exported >= CONTRACT_7
    assert _error_classes() <= exported
    assert podscribe.errors is errors
    for name in exported:
        assert getattr(podscribe, name) is not None


def test_every_error_class_is_in_the_errors_modules_all() -> None:
    assert _error_classes() <= set(errors.__all__)


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_a_sub_packages_all_is_pinned(module: str) -> None:
    package = importlib.import_module(module)
    assert sorted(package.__all__) == sorted(EXPORTS[module])
    for name in package.__all__:
        assert hasattr(package, name), f"{module}.__all__ names missing {name}"


@pytest.mark.parametrize("package", ["podscribe.transcription", "podscribe.api"])
def test_packages_with_heavy_modules_import_nothing(package: str) -> None:
    """Submit reads formats without faster-whisper; the job sends webhook documents without
    werkzeug: these packages' inits stay empty."""
    source = inspect.getsource(importlib.import_module(package))
    assert "import" not in source.split('"""')[-1]


# What the job image (requirements/job.txt) does not install.
NOT_IN_THE_JOB_IMAGE = ("werkzeug", "flask", "functions_framework", "redis", "kubernetes")


def test_the_job_imports_without_the_web_stack() -> None:
    """``python -m vertex_job`` and the webhooks it sends load with the web stack absent."""
    blocker = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {NOT_IN_THE_JOB_IMAGE!r}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import vertex_job.__main__, podscribe.jobs.worker, podscribe.jobs.webhooks\n"
        "import podscribe\n"
    )
    subprocess.run([sys.executable, "-c", blocker], check=True, timeout=120)
