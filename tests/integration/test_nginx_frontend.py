"""The k3s front end for real: Debian's nginx running the rendered nginx.conf in front of a
real submit process. Every answer carries each security header once (nginx's copy, submit's
hidden), the API is never cached, and with Traefik's X-Forwarded-For passed on, submit's
per-address limit of CSP reports counts the caller, not the proxy (two trusted hops, as in
k3s)."""

from __future__ import annotations

import json
from pathlib import Path

from podscribe.api.headers import security_headers
from podscribe.settings import load_settings
from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import (
    API_KEY,
    SUBMIT_SOURCE,
    functions_framework_process,
    limited_submit_environment,
)
from tests.services import free_port
from tests.unit.test_nginx_config import get, local_config, render_config, running_nginx

REPORT = json.dumps({"csp-report": {"document-uri": "http://podscribe.localhost/"}}).encode()


def test_through_nginx_each_header_once_and_the_caller_is_limited(
    database_url: str, tmp_path: Path
) -> None:
    env = limited_submit_environment(
        database_url=database_url,
        project=TEST_PROJECT,
        topic="unused",
        PODSCRIBE_ENV="local",
        PODSCRIBE_TRUSTED_PROXY_HOPS="2",
        PODSCRIBE_RATE_LIMIT_CSP_REPORTS_PER_IP="3",
    )
    expected = security_headers(load_settings(env="local"))
    with functions_framework_process(
        SUBMIT_SOURCE, "submit", env, tmp_path / "submit.log"
    ) as submit:
        port = free_port()
        upstream = submit.url.removeprefix("http://")
        config = local_config(render_config(), tmp_path / "nginx", upstream=upstream, port=port)
        with running_nginx(config):
            auth = {"Authorization": f"Bearer {API_KEY}"}
            answers = {
                "/healthz": get(port, "/healthz"),
                "/v1/transcriptions": get(port, "/v1/transcriptions", headers=auth),
                "404": get(port, "/v1/no-such-thing"),
            }
            assert [answer.status for answer in answers.values()] == [200, 200, 404]
            for where, answer in answers.items():
                for name, value in expected.items():
                    assert answer.headers.get_all(name) == [value], (where, name)
            assert answers["/v1/transcriptions"].headers["Cache-Control"] == "no-store"

            def report(caller: str) -> int:
                headers = {"Content-Type": "application/csp-report", "X-Forwarded-For": caller}
                answer = get(port, "/v1/csp-reports", method="POST", body=REPORT, headers=headers)
                return answer.status

            # Traefik's entry names the caller; nginx appends Traefik's (here: loopback).
            assert [report("203.0.113.7") for _ in range(4)] == [204, 204, 204, 429]
            assert report("198.51.100.9") == 204
