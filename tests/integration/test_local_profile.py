"""The local profile end to end: `up`, a real episode through HTTP to `succeeded`, the CLI,
then `down`, and nothing it started survives."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
from pg8000.native import identifier

from local_emulators.fixtures import EPISODE
from local_emulators.processes import group_alive, port_open, start_process, stop_group, wait_until
from local_emulators.profile import (
    ProfileState,
    _api_key,
    _database,
    _redis,
    _wiring,
    state_path,
    webhook_secret_path,
)
from local_emulators.starter import PartStarter
from podscribe.client import PodscribeClient
from podscribe.settings import Settings, load_settings
from tests.services import (
    REDIS_URL,
    admin_connection,
    free_port,
    missing_service,
    throwaway_database,
)

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = "ask not what your country can do for you"


def _profile_environment(state_dir: Path, database_url: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PODSCRIBE_", "WHISPER_", "PUBSUB_", "STORAGE_EMULATOR"))
    }
    environment |= {
        "PODSCRIBE_LOCAL_STATE_DIR": str(state_dir),
        "PODSCRIBE_DATABASE_URL": database_url,
        "PODSCRIBE_REDIS_URL": REDIS_URL,
        "PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS": "5",
        "PODSCRIBE_PROJECT_ID": "podscribe-local-test",
    }
    for name in ("SUBMIT", "DISPATCH", "SWEEP", "PUBSUB", "GCS", "FIXTURES", "POSTGRES", "REDIS"):
        environment[f"PODSCRIBE_LOCAL_{name}_PORT"] = str(free_port())
    return environment


def _run(
    environment: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_emulators", *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def _state(settings: Settings) -> ProfileState:
    """A profile's state before anything started."""
    return ProfileState(
        submit_url="http://127.0.0.1:1",
        api_key="local-key",
        database_url="",
        redis_url=None,
        project_id=settings.project_id,
        with_fixtures=False,
    )


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[dict[str, str]]:
    with throwaway_database() as database_url:
        environment = _profile_environment(tmp_path / "state", database_url)
        yield environment
        _run(environment, "down")


@pytest.mark.slow
def test_up_transcribe_cli_down_leaves_nothing_running(
    profile: dict[str, str], tmp_path: Path
) -> None:
    started = _run(profile, "up", "--with-fixtures")
    assert started.returncode == 0, started.stdout + started.stderr
    submit_url = f"http://127.0.0.1:{profile['PODSCRIBE_LOCAL_SUBMIT_PORT']}"
    assert f"submit URL: {submit_url}" in started.stdout
    api_key = next(
        line.split()[-1] for line in started.stdout.splitlines() if line.startswith("API key:")
    )
    assert f"signed with the secret in {tmp_path / 'state' / 'webhook-secret'}" in started.stdout
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    # It holds the API key and the database URL: the owner's alone.
    assert stat.S_IMODE((tmp_path / "state" / "state.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    names = {record["name"] for record in state["processes"]}
    assert {
        "pubsub-emulator",
        "fake-gcs-server",
        "submit",
        "dispatch",
        "sweep",
        "sweep-timer",
        "fixtures",
    } <= names

    again = _run(profile, "up", "--with-fixtures")
    assert again.returncode == 0 and "already up" in again.stdout
    assert json.loads((tmp_path / "state" / "state.json").read_text()) == state

    with PodscribeClient(submit_url, api_key) as client:
        job = client.submit(EPISODE.apple_url)
        assert job["status"] == "queued"
        seen: list[float] = []
        done = client.wait(
            job["id"],
            timeout=180,
            interval=0.5,
            on_update=lambda update: seen.append(float(update["progress"])),
        )
        assert done["status"] == "succeeded", done
        assert seen == sorted(seen)
        text = client.transcript(job["id"], "txt").lower()
    assert EXPECTED in text.replace(",", "")

    cli_env = profile | {"PODSCRIBE_API_URL": submit_url, "PODSCRIBE_API_KEY": api_key}
    cli = [str(Path(sys.executable).with_name("podscribe"))]
    transcribed = subprocess.run(
        [*cli, "transcribe", EPISODE.apple_url, "--wait", "--format", "srt"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert transcribed.returncode == 0, transcribed.stderr
    captions = list(srt.parse(transcribed.stdout))
    assert captions and "country" in " ".join(c.content for c in captions).lower()
    missing = subprocess.run(
        [*cli, "status", "00000000-0000-0000-0000-000000000000"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 3
    assert "job_not_found" in missing.stderr

    status = _run(profile, "status")
    assert status.returncode == 0 and "DOWN" not in status.stdout

    stopped = _run(profile, "down")
    assert stopped.returncode == 0, stopped.stderr
    for record in state["processes"]:
        assert not group_alive(record["pid"]), f"{record['name']} survived `down`"
    assert _processes_mentioning(str(tmp_path / "state")) == []
    assert not (tmp_path / "state" / "state.json").exists()


def test_a_taken_port_is_a_clear_error(profile: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(profile["PODSCRIBE_LOCAL_SUBMIT_PORT"])))
        holder.listen()
        result = _run(profile, "up")
    assert result.returncode == 2
    assert "PODSCRIBE_LOCAL_SUBMIT_PORT" in result.stderr
    assert "taken" in result.stderr


def test_each_state_folder_gets_a_database_of_its_own(tmp_path: Path) -> None:
    # Rows and transcripts must come from the same place: a folder's fake-gcs data goes with
    # the database made for that folder, never with another checkout's.
    settings = load_settings(env="local", database_url=None)
    first, second = tmp_path / "one", tmp_path / "two"
    urls = [
        _database(settings, folder, PartStarter(settings, _state(settings), folder), io.StringIO())
        for folder in (first, second, first)
    ]
    admin = admin_connection()
    try:
        assert urls[0] == urls[2]
        assert urls[0] != urls[1]
        for url in set(urls):
            name = url.rsplit("/", 1)[1]
            assert name.startswith("podscribe_local_")
            assert admin.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name)
    finally:
        for url in set(urls):
            admin.run(f"DROP DATABASE IF EXISTS {identifier(url.rsplit('/', 1)[1])} WITH (FORCE)")
        admin.close()


def test_webhooks_are_signed_with_a_secret_kept_in_the_state_folder(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    settings = load_settings(env="local", local_state_dir=folder)
    state = _state(settings)
    made = _wiring(settings, state, folder)["PODSCRIBE_WEBHOOK_SECRET"]
    kept = webhook_secret_path(settings)
    assert len(made) >= 32 and kept.read_text() == made
    assert kept.stat().st_mode & 0o077 == 0  # the owner's alone
    assert _wiring(settings, state, folder)["PODSCRIBE_WEBHOOK_SECRET"] == made  # kept, reused
    # A secret the caller configured is theirs to pass on: none is made.
    configured = load_settings(env="local", local_state_dir=folder, webhook_secret="x" * 40)
    assert "PODSCRIBE_WEBHOOK_SECRET" not in _wiring(configured, state, folder)


def test_every_state_file_is_owner_only_even_when_an_older_version_left_it_open(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    old = folder / "state.json"
    old.write_text("{}")
    old.chmod(0o644)  # what earlier versions wrote
    settings = load_settings(env="local", local_state_dir=folder, api_keys=[], database_url=None)
    state = _state(settings)
    state.database_url = "postgresql://postgres:db-secret@127.0.0.1:5432/x"
    state.save(state_path(settings))
    _api_key(settings, folder)
    _wiring(settings, state, folder)
    try:
        _database(settings, folder, PartStarter(settings, state, folder), io.StringIO())
    finally:
        admin = admin_connection()
        name = f"podscribe_local_{(folder / 'instance-id').read_text().strip()}"
        admin.run(f"DROP DATABASE IF EXISTS {identifier(name)} WITH (FORCE)")
        admin.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = {entry.name: stat.S_IMODE(entry.stat().st_mode) for entry in folder.iterdir()}
    assert set(files) >= {"state.json", "api-key", "webhook-secret", "instance-id"}
    assert set(files.values()) == {0o600}, files
    assert ProfileState.load(state_path(settings)) == state


def test_a_redis_password_is_never_printed(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        missing_service("redis-server (the Debian package redis-server)")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass"]
    started = start_process("redis", [*argv, "pw-s3cret"], log_path=tmp_path / "redis.log")
    try:
        wait_until("redis", lambda: port_open("127.0.0.1", port), timeout=20, started=started)
        url = f"redis://:pw-s3cret@127.0.0.1:{port}/0"
        settings = load_settings(env="local", local_state_dir=tmp_path, redis_url=url)
        out = io.StringIO()
        assert _redis(settings, PartStarter(settings, _state(settings), tmp_path), out) == url
    finally:
        stop_group(started.pid)
    printed = out.getvalue()
    assert f"127.0.0.1:{port}" in printed
    assert "pw-s3cret" not in printed
