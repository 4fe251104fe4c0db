"""The submit Cloud Function: ``functions-framework --target submit``.

Thin on purpose: the API lives in :mod:`podscribe.api`. Nothing connects at import time;
settings, database, Pub/Sub, storage and Redis clients are built on the first request.
"""

from __future__ import annotations

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from podscribe.api.app import SubmitApi

_api = SubmitApi()
# Paths functions-framework's own routing refuses get problem documents, not Flask's HTML.
functions_framework.errorhandler(HTTPException)(_api.framework_error)


@functions_framework.http
def submit(request: flask.Request) -> flask.typing.ResponseReturnValue:
    """Route one HTTP request through the submit API."""
    return _api(request)
