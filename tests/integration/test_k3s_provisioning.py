"""The k3s helpers' scripts against the real servers they provision.

- provision-bucket.sh, the bucket Job, is started before any S3 server answers: it backs off,
  and once moto's S3 server (MinIO's wire protocol; MinIO's server cannot be installed here)
  comes up on the port it was given, it creates the bucket, once: a rerun finds it and keeps
  what was stored in it;
- migrate.sh migrates a real, empty PostgreSQL database.
Each is run twice: the Jobs may be rerun, so the scripts must be idempotent.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import boto3

from local_emulators.emulators import start_moto_s3
from local_emulators.processes import StartupError, stop_group
from podscribe.db import applied_migrations, create_db_engine, load_migrations
from podscribe.settings import load_settings
from podscribe.storage import TranscriptStore
from tests.services import free_port, missing_service, throwaway_database
from tests.unit.test_k3s_scripts import BUCKET_ENV, SCRIPTS, SH, VENV_BIN, run_script


def test_the_bucket_job_waits_for_a_late_s3_server_then_creates_the_bucket_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"k3s-{uuid.uuid4().hex[:8]}"
    env = BUCKET_ENV | {
        "PODSCRIBE_S3_ENDPOINT_URL": endpoint,
        "PODSCRIBE_BUCKET": bucket,
        "PROVISION_ATTEMPTS": "10",
        "PROVISION_BACKOFF_SECONDS": "1",
        "PROVISION_MAX_DELAY_SECONDS": "4",
    }
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    job = subprocess.Popen(
        [SH, str(SCRIPTS / "provision-bucket.sh")],
        env={"PATH": path} | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = None
    try:
        assert job.stderr is not None
        early: list[str] = []
        while not early or "retrying in" not in early[-1]:  # it has tried and backed off
            line = job.stderr.readline()
            assert line, "".join(early)
            early.append(line)
        try:
            started = start_moto_s3(port, tmp_path / "moto.log")
        except (OSError, StartupError) as error:
            missing_service(f"moto S3 server (moto[server], the dev extra): {error}")
        stdout, stderr = job.communicate(timeout=120)
        stderr = "".join(early) + stderr
        assert job.returncode == 0, stderr
        assert "Could not connect to the endpoint URL" in stderr
        assert "try 1 of 10 failed; retrying in 1s" in stderr
        assert f"bucket {bucket} ready at {endpoint}" in stdout
        assert "(try 1)" not in stdout  # it succeeded on a later try, after waiting

        settings = load_settings(
            env="local",
            storage_backend="s3",
            s3_endpoint_url=endpoint,
            bucket=bucket,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        store = TranscriptStore(settings)
        store.put("transcripts/kept/transcript.txt", "kept", "text/plain")

        rerun = run_script("provision-bucket.sh", env)
        assert rerun.returncode == 0, rerun.stderr
        assert "(try 1)" in rerun.stdout
        assert store.get("transcripts/kept/transcript.txt") == b"kept"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        names = [entry["Name"] for entry in s3.list_buckets()["Buckets"]]
        assert names.count(bucket) == 1
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
        if started is not None:
            stop_group(started.pid)


def test_the_migrations_wrapper_migrates_an_empty_database() -> None:
    with throwaway_database() as url:
        for _ in range(2):
            result = run_script(
                "migrate.sh", {"PODSCRIBE_DATABASE_URL": url, "PODSCRIBE_DB_WAIT_SECONDS": "10"}
            )
            assert result.returncode == 0, result.stderr
        engine = create_db_engine(load_settings(database_url=url))
        try:
            assert applied_migrations(engine) == [m.name for m in load_migrations()]
        finally:
            engine.dispose()
