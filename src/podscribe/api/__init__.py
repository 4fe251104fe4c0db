"""The submit function's HTTP API (contract 2 of the design).

``SubmitApi`` answers a werkzeug/flask request; ``functions/submit/main.py`` is its
functions-framework target. Modules: ``app`` (dispatch, resources, error boundary), ``routes``
(the one route table), ``models`` (every document as a pydantic model), ``auth`` (Bearer keys,
fingerprints), ``validation`` (bodies, queries, client IP), ``documents`` (a job row as its
model), ``problems`` (RFC 9457 errors), ``openapi`` (the OpenAPI 3.1 document, generated).

The names below load on first use, so ``podscribe.api.models`` (the webhook event, which the
transcription job sends) imports without werkzeug, which the job image does not install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podscribe.api.app import SubmitApi
    from podscribe.api.auth import Caller, authenticate, key_fingerprint
    from podscribe.api.openapi import openapi_document

__all__ = ["Caller", "SubmitApi", "authenticate", "key_fingerprint", "openapi_document"]

_HOMES = {
    "SubmitApi": "podscribe.api.app",
    "Caller": "podscribe.api.auth",
    "authenticate": "podscribe.api.auth",
    "key_fingerprint": "podscribe.api.auth",
    "openapi_document": "podscribe.api.openapi",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'podscribe.api' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
