"""Pointing a test's settings (or a child process's environment) at either storage backend."""

from __future__ import annotations

import os
from typing import Any

import pytest

BACKENDS = ("gcs", "s3")

# moto accepts any credentials; these only have to be present (and not a real account's).
_S3_TEST_CREDENTIALS = {"aws_access_key_id": "podscribe-test", "aws_secret_access_key": "test"}


def s3_overrides(endpoint_url: str) -> dict[str, Any]:
    """Settings overrides for the S3 backend on moto's server at ``endpoint_url``."""
    return {"storage_backend": "s3", "s3_endpoint_url": endpoint_url, **_S3_TEST_CREDENTIALS}


def s3_environment(endpoint_url: str) -> dict[str, str]:
    """The same as environment variables, for a child process (``python -m vertex_job``)."""
    return {
        "PODSCRIBE_STORAGE_BACKEND": "s3",
        "PODSCRIBE_S3_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": _S3_TEST_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": _S3_TEST_CREDENTIALS["aws_secret_access_key"],
    }


def backend_overrides(request: pytest.FixtureRequest, backend: str) -> dict[str, Any]:
    """Start (once per session) the server ``backend`` needs and return its overrides."""
    if backend == "s3":
        return s3_overrides(request.getfixturevalue("s3_server"))
    request.getfixturevalue("gcs_emulator")  # sets STORAGE_EMULATOR_HOST for Google's client
    assert os.environ.get("STORAGE_EMULATOR_HOST")
    return {"storage_backend": "gcs"}
