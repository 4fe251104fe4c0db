"""The submit API on the S3 backend: the real entry point serves transcripts streamed from
moto's S3 server and deletes them there, as ``test_list_delete.py`` and
``test_submit_api.py`` show it doing on Cloud Storage.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine

from podscribe.settings import get_settings
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore
from tests.integration.test_list_delete import auth, make_client, submit, succeed_with_objects
from tests.storage_support import s3_environment


@pytest.fixture
def client(environment: dict[str, str], s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The submit function with every part as usual but its storage on S3."""
    return make_client(monkeypatch, **s3_environment(s3_server), PODSCRIBE_BUCKET="api-on-s3")


def test_transcripts_are_served_from_s3_and_deleted_there(client: Any, engine: Engine) -> None:
    settings = get_settings()
    assert settings.storage_backend == "s3"
    store = TranscriptStore(settings)
    store.ensure_bucket()
    job_id = submit(client, 1000)
    names = succeed_with_objects(engine, store, job_id)

    for fmt, content_type in TRANSCRIPT_FORMATS.items():
        response = client.get(
            f"/v1/transcriptions/{job_id}/transcript?format={fmt}", headers=auth()
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.is_streamed
        assert response.mimetype == content_type
        assert response.get_data(as_text=True) == f"{fmt} text"

    assert client.delete(f"/v1/transcriptions/{job_id}", headers=auth()).status_code == 204
    assert not any(store.exists(name) for name in names)
