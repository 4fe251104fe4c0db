"""``podscribe list`` and ``podscribe delete`` against the real submit process.

The submit function runs under ``functions-framework`` on 127.0.0.1 (as the local profile
runs it) with real PostgreSQL, Redis, the Pub/Sub emulator and fake-gcs-server; the CLI and
its client talk to it over HTTP like any caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podscribe.cli import EXIT_OK, EXIT_REFUSED, main
from podscribe.client import ApiError, PodscribeClient
from podscribe.settings import get_settings
from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import (
    API_KEY,
    OTHER_KEY,
    SUBMIT_SOURCE,
    create_topic_and_subscription,
    episode_url,
    functions_framework_process,
    limited_submit_environment,
)


@pytest.fixture
def api_url(
    tmp_path: Path, database_url: str, pubsub_emulator: str, gcs_emulator: str
) -> Iterator[str]:
    topic, _ = create_topic_and_subscription(TEST_PROJECT)
    env = limited_submit_environment(
        database_url=database_url,
        project=TEST_PROJECT,
        topic=topic,
        pubsub_host=pubsub_emulator,
        storage_url=gcs_emulator,
    )
    with functions_framework_process(SUBMIT_SOURCE, "submit", env, tmp_path / "submit.log") as fn:
        yield fn.url


@pytest.fixture
def cli_env(api_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PODSCRIBE_API_URL", api_url)
    monkeypatch.setenv("PODSCRIBE_API_KEY", API_KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _submit(api_url: str, count: int, key: str = API_KEY, first: int = 1000) -> list[str]:
    with PodscribeClient(api_url, key) as client:
        return [client.submit(episode_url(1535809341, first + n))["id"] for n in range(count)]


def _listed_ids(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_list_prints_a_page_then_every_page_with_all(
    api_url: str, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _submit(api_url, 5)
    _submit(api_url, 2, key=OTHER_KEY, first=3000)
    assert main(["list", "--limit", "2"]) == EXIT_OK
    first = capsys.readouterr()
    assert _listed_ids(first.out) == [ids[4], ids[3]]
    assert "queued" in first.out.splitlines()[0]
    assert "more: --cursor " in first.err
    cursor = first.err.split("--cursor ")[1].split()[0]
    assert main(["list", "--limit", "2", "--cursor", cursor]) == EXIT_OK
    assert _listed_ids(capsys.readouterr().out) == [ids[2], ids[1]]
    assert main(["list", "--limit", "2", "--all"]) == EXIT_OK
    everything = capsys.readouterr()
    assert _listed_ids(everything.out) == list(reversed(ids))
    assert "more:" not in everything.err
    assert main(["list", "--status", "succeeded"]) == EXIT_OK
    assert capsys.readouterr().out == ""


def test_list_with_a_bad_limit_is_refused(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "--limit", "0"]) == EXIT_REFUSED
    assert "invalid_request" in capsys.readouterr().err


def test_delete_gives_up_the_job_for_this_key_only(
    api_url: str, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (job_id,) = _submit(api_url, 1)
    _submit(api_url, 1, key=OTHER_KEY)
    assert main(["delete", job_id]) == EXIT_OK
    assert f"deleted {job_id}" in capsys.readouterr().err
    assert main(["list", "--all"]) == EXIT_OK
    assert capsys.readouterr().out == ""
    assert main(["delete", job_id]) == EXIT_REFUSED
    assert "job_not_found" in capsys.readouterr().err
    with PodscribeClient(api_url, OTHER_KEY) as other:
        assert other.get(job_id)["id"] == job_id
        assert [job["id"] for job in other.iter_jobs()] == [job_id]
        other.delete(job_id)
        with pytest.raises(ApiError) as raised:
            other.get(job_id)
    assert (raised.value.status, raised.value.code) == (404, "job_not_found")
