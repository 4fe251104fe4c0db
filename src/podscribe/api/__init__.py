"""The submit function's HTTP API (contract 2 of the design).

``SubmitApi`` answers a werkzeug/flask request; ``functions/submit/main.py`` is its
functions-framework target. Modules: ``app`` (routing, resources, error boundary), ``auth``
(Bearer keys, fingerprints), ``validation`` (bodies, queries, client IP), ``documents``
(the job JSON), ``problems`` (RFC 9457 errors), ``openapi`` (the OpenAPI 3.1 document).
"""

from podscribe.api.app import SubmitApi
from podscribe.api.auth import Caller, authenticate, key_fingerprint
from podscribe.api.openapi import openapi_document

__all__ = ["Caller", "SubmitApi", "authenticate", "key_fingerprint", "openapi_document"]
