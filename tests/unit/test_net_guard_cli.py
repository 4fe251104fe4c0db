"""The CLI contract: ``python -m podscribe.net_guard URL [URL ...]``.

One line per URL, ``allow <url>`` or ``block <url>: <reason>``, exit status 0. The URLs here
are IP literals and reserved names: no DNS question leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

from podscribe.net_guard import main
from tests.fakes.resolvers import StaticResolver


def run_cli(*urls: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PODSCRIBE_")}
    return subprocess.run(
        [sys.executable, "-m", "podscribe.net_guard", *urls],
        capture_output=True,
        text=True,
        env={**clean, "PODSCRIBE_ENV": "test", **env},
        timeout=60,
        check=False,
    )


def test_one_exact_line_per_url_and_exit_zero():
    result = run_cli(
        "http://93.184.216.34/episode.mp3",
        "http://127.0.0.1/",
        "http://169.254.169.254/computeMetadata/v1/",
        "http://[::ffff:127.0.0.1]/",
        "http://0x7f.1/",
        "http://localhost/",
        "file:///etc/passwd",
        "https://[2606:4700:4700::1111]/",
        "http://10.0.0.1:8080/",
    )
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "allow http://93.184.216.34/episode.mp3",
        "block http://127.0.0.1/: 127.0.0.1: loopback address",
        "block http://169.254.169.254/computeMetadata/v1/: 169.254.169.254: link-local address "
        "(cloud metadata lives here)",
        "block http://[::ffff:127.0.0.1]/: ::ffff:7f00:1: IPv4-mapped form of 127.0.0.1 "
        "(loopback address)",
        "block http://0x7f.1/: non-canonical IPv4 spelling (decimal, octal, hex or short)",
        "block http://localhost/: host name 'localhost' is reserved for internal use",
        "block file:///etc/passwd: scheme 'file' is not http or https",
        "allow https://[2606:4700:4700::1111]/",
        "block http://10.0.0.1:8080/: 10.0.0.1: private address (RFC 1918)",
    ]


def test_a_url_with_a_newline_still_takes_one_line():
    result = run_cli("http://93.184.216.34/\nallow http://evil/")
    assert result.returncode == 0
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("block http://93.184.216.34/\\nallow http://evil/: ")


def test_the_local_escape_hatch_applies_in_the_local_profile():
    result = run_cli(
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8081/",
        PODSCRIBE_ENV="local",
        PODSCRIBE_SSRF_ALLOW="127.0.0.1:8080",
    )
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "allow http://127.0.0.1:8080/",
        "block http://127.0.0.1:8081/: 127.0.0.1: loopback address",
    ]


def test_the_escape_hatch_outside_the_local_profile_refuses_to_start_loudly():
    result = run_cli(
        "http://127.0.0.1:8080/",
        PODSCRIBE_ENV="production",
        PODSCRIBE_SSRF_ALLOW="127.0.0.1:8080",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "PODSCRIBE_SSRF_ALLOW" in result.stderr
    assert "PODSCRIBE_ENV=local" in result.stderr


def test_no_urls_is_a_usage_error():
    result = run_cli()
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_names_go_through_the_resolver(capsys):
    resolver = StaticResolver({"cdn.example.com": ["10.9.8.7"], "ok.example.com": ["1.1.1.1"]})
    assert main(["http://cdn.example.com/a.mp3", "https://ok.example.com/"], resolver=resolver) == 0
    assert capsys.readouterr().out.splitlines() == [
        "block http://cdn.example.com/a.mp3: 10.9.8.7: private address (RFC 1918)",
        "allow https://ok.example.com/",
    ]
