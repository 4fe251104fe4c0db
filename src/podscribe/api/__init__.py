"""The submit function's HTTP API (contract 2 of the design).

``podscribe.api.app.SubmitApi`` answers a werkzeug/flask request; ``functions/submit/main.py``
is its functions-framework target. Modules: ``app`` (dispatch, resources, error boundary),
``routes`` (the one route table), ``models`` (every document as a pydantic model), ``admission``
(rate limit, then the key), ``auth`` (Bearer keys, fingerprints), ``validation`` (bodies,
queries, client IP), ``documents`` (a job row as its model), ``transcripts`` (the downloads),
``problems`` (RFC 9457 errors), ``origin`` (links), ``openapi`` (the OpenAPI 3.1 document,
generated).

Nothing is imported here: ``podscribe.api.models`` (the webhook event the transcription job
sends) must import without werkzeug, which the job image does not install.
"""

__all__: list[str] = []
