"""The k3s front end's nginx.conf, as the kustomization renders it: Debian's ``nginx -t``
accepts it, its headers are submit's (``podscribe.api.headers``), and a real nginx running it
in front of a stand-in upstream sends each header once, on proxied answers and its own errors.

Under ``CI=true`` a missing nginx fails (``tests.services.missing_service``): install
``nginx-light`` (scripts/ensure-system.sh does).
"""

from __future__ import annotations

import http.client
import http.server
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from podscribe.api.headers import security_headers
from podscribe.settings import load_settings
from tests.services import free_port, missing_service

REPO = Path(__file__).resolve().parents[2]
K3S = REPO / "local_emulators" / "k3s"
ADD_HEADER = re.compile(r"^\s*add_header\s+(\S+)\s+(\"[^\"]*\"|'[^']*')\s+always;", re.M)
DAEMON_OFF = ("-g", "daemon off;")
HIDE_HEADER = re.compile(r"^\s*proxy_hide_header\s+(\S+);", re.M)


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()),
        None,
    )
    if found is None:
        missing_service("nginx (Debian's nginx-light) runs `nginx -t` on the front end's config")
    return found


@pytest.fixture(scope="module")
def rendered_config() -> str:
    return render_config()


def render_config() -> str:
    """nginx.conf out of the ConfigMap ``kubectl kustomize`` renders."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing_service("kubectl (client only) renders the kustomization")
    result = subprocess.run(
        [kubectl, "kustomize", str(K3S)], capture_output=True, text=True, check=True, timeout=60
    )
    [configmap] = [
        document
        for document in yaml.safe_load_all(result.stdout)
        if document
        and document["kind"] == "ConfigMap"
        and document["metadata"]["name"].startswith("podscribe-frontend-")
    ]
    config: str = configmap["data"]["nginx.conf"]
    assert config == (K3S / "frontend" / "nginx.conf").read_text(encoding="utf-8")
    return config


def local_config(
    config: str, root: Path, *, upstream: str = "127.0.0.1:8080", port: int = 8080
) -> Path:
    """``config`` runnable here: the upstream on loopback (no DNS), every written path under
    ``root``, listening on ``port``; as root, workers stay root (they write under ``root``)."""
    (root / "cache").mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    local = (
        config.replace("server submit:8080;", f"server {upstream};")
        .replace(" /tmp/", f" {root / 'tmp'}/")
        .replace("/var/cache/nginx", str(root / "cache"))
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
    )
    directives = [line.split("#", 1)[0] for line in local.splitlines()]
    paths = [token for line in directives for token in line.split() if token.startswith("/")]
    assert "server submit:8080;" not in local
    pod_paths = ("/tmp/", "/var/")  # noqa: S108 - the pod's writable paths, moved under root
    outside = [p for p in paths if p.startswith(pod_paths) and not p.startswith(f"{root}/")]
    assert not outside, outside
    if os.geteuid() == 0:
        local = f"user root root;\n{local}"
    path = root / "nginx.conf"
    path.write_text(local, encoding="utf-8")
    return path


def nginx_test(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nginx_binary(), "-t", "-e", "stderr", "-p", str(path.parent), "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_nginx_accepts_the_rendered_config(rendered_config: str, tmp_path: Path) -> None:
    result = nginx_test(local_config(rendered_config, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_would_catch_a_mistake(rendered_config: str, tmp_path: Path) -> None:
    broken = rendered_config.replace("proxy_cache static;", "proxy_cache static")
    result = nginx_test(local_config(broken, tmp_path))
    assert result.returncode != 0
    assert "emerg" in result.stderr


def test_the_headers_are_submits_and_replace_its_copies(rendered_config: str) -> None:
    config = yaml.safe_load((K3S / "config.yaml").read_text(encoding="utf-8").split("---")[0])
    # submit's settings in k3s: the local profile, no loopback audio stand-ins.
    assert config["data"]["PODSCRIBE_ENV"] == "local"
    assert "PODSCRIBE_SSRF_ALLOW" not in config["data"]
    expected = security_headers(load_settings(env="local"))
    added = {name: value[1:-1] for name, value in ADD_HEADER.findall(rendered_config)}
    assert added == expected
    assert set(HIDE_HEADER.findall(rendered_config)) == set(expected)
    # Every add_header is at server level: one in a location would drop the others there.
    assert rendered_config.count("add_header") == len(expected)


def test_the_front_end_proxies_everything_to_submit_on_8080(rendered_config: str) -> None:
    assert re.search(r"^\s*listen 8080;", rendered_config, re.M)
    assert re.findall(r"location (\S+) \{\s*proxy_pass http://submit;", rendered_config) == [
        "/v1/",
        "/t/",
        "/",
    ]
    assert "proxy_no_cache $http_authorization;" in rendered_config
    assert re.search(r"^pid /tmp/", rendered_config, re.M)


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Answers like submit, with a header copy of its own nginx must replace."""

    def do_GET(self) -> None:
        body = b"page"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", "default-src *")
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def get(
    port: int,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    """One request to nginx on ``port`` (waiting for it to listen); the body is read."""
    deadline = time.monotonic() + 10
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            response.read()
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return response
        finally:
            connection.close()


@contextmanager
def running_nginx(config: Path) -> Iterator[None]:
    process = subprocess.Popen(
        [nginx_binary(), "-e", "stderr", "-p", str(config.parent), "-c", str(config), *DAEMON_OFF],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_running_nginx_sends_each_header_once_even_on_its_own_errors(
    rendered_config: str, tmp_path: Path, upstream: int
) -> None:
    expected = security_headers(load_settings(env="local"))
    port, broken_port, gone = free_port(), free_port(), free_port()
    config = local_config(
        rendered_config, tmp_path / "up", upstream=f"127.0.0.1:{upstream}", port=port
    )
    # Nothing listens on `gone`: that nginx answers 502 itself.
    broken = local_config(
        rendered_config, tmp_path / "down", upstream=f"127.0.0.1:{gone}", port=broken_port
    )
    with running_nginx(config), running_nginx(broken):
        answers = {
            "/": get(port, "/"),
            "/v1/transcriptions": get(port, "/v1/transcriptions"),
            "502": get(broken_port, "/v1/transcriptions"),
        }
        assert {where: answer.status for where, answer in answers.items()} == {
            "/": 200,
            "/v1/transcriptions": 200,
            "502": 502,
        }
        for where, answer in answers.items():
            for name, value in expected.items():
                assert answer.headers.get_all(name) == [value], (where, name)
