"""TLS through the pinned-address transport: SNI is the URL's host, and it is verified.

A throwaway CA (``trustme``) signs certificates for a local HTTPS fixture server. The
resolver maps ``localhost`` to 127.0.0.1 and the local escape hatch lets ``localhost:port``
through, so the transport connects to a pinned IP while TLS must still match the name.
"""

from __future__ import annotations

import ssl

import pytest
import trustme

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import TlsVerificationError
from podscribe.settings import load_settings
from tests.fakes.resolvers import StaticResolver


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, hostname: str) -> ssl.SSLContext:
    """A server-side context presenting a certificate ``ca`` issued for ``hostname``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(hostname).configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts only ``ca``."""
    return ssl.create_default_context(cadata=ca.cert_pem.bytes().decode("ascii"))


def _fetcher(server: FixtureServer, ca: trustme.CA) -> tuple[SafeFetcher, StaticResolver]:
    resolver = StaticResolver({"localhost": ["127.0.0.1"]})
    settings = load_settings(env="local", ssrf_allow=[f"localhost:{server.port}"])
    return SafeFetcher(settings, resolver=resolver, ssl_context=client_context(ca)), resolver


def test_pinned_connection_sends_sni_and_verifies_the_host_name(ca: trustme.CA) -> None:
    with FixtureServer(ssl_context=server_context(ca, "localhost")) as server:
        server.route("/feed.xml", Reply(body=b"<rss/>", content_type="application/rss+xml"))
        fetcher, resolver = _fetcher(server, ca)
        with fetcher:
            document = fetcher.get_document(server.url("/feed.xml", host="localhost"))
        assert document.content == b"<rss/>"
        assert server.sni_names == ["localhost"]
        assert resolver.questions == [("localhost", server.port)]


def test_a_certificate_for_another_name_is_refused(ca: trustme.CA) -> None:
    with FixtureServer(ssl_context=server_context(ca, "wrong.example")) as server:
        server.route("/feed.xml", Reply(body=b"<rss/>"))
        fetcher, _ = _fetcher(server, ca)
        with fetcher, pytest.raises(TlsVerificationError) as refused:
            fetcher.get_document(server.url("/feed.xml", host="localhost"))
        assert refused.value.code == "tls_verification_failed"
        assert server.sni_names == ["localhost"]
        assert server.requests == []


def test_an_untrusted_ca_is_refused(ca: trustme.CA) -> None:
    other = trustme.CA()
    with FixtureServer(ssl_context=server_context(other, "localhost")) as server:
        fetcher, _ = _fetcher(server, ca)
        with fetcher, pytest.raises(TlsVerificationError):
            fetcher.get_document(server.url("/", host="localhost"))


def test_a_context_that_skips_verification_is_rejected() -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(ValueError, match="verify"):
        SafeFetcher(load_settings(env="test"), ssl_context=lax)
