"""TLS through the pinned-address transport: SNI is the URL's host, and it is verified.

A throwaway CA (``cryptography``) signs certificates for a local HTTPS fixture server. The
resolver maps ``localhost`` to 127.0.0.1 and the local escape hatch lets ``localhost:port``
through, so the transport connects to a pinned IP while TLS must still match the name.
"""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import TlsVerificationError
from podscribe.settings import load_settings
from tests.fakes.fixture_servers import FixtureServer, Reply
from tests.fakes.resolvers import StaticResolver


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class ThrowawayCA:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("podscribe test CA"))
            .issuer_name(_name("podscribe test CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def server_context(self, hostname: str, directory: Path) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hostname))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{hostname}.pem", directory / f"{hostname}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem())


@pytest.fixture(scope="module")
def ca() -> ThrowawayCA:
    return ThrowawayCA()


def _fetcher(server: FixtureServer, ca: ThrowawayCA) -> tuple[SafeFetcher, StaticResolver]:
    resolver = StaticResolver({"localhost": ["127.0.0.1"]})
    settings = load_settings(env="local", ssrf_allow=[f"localhost:{server.port}"])
    return SafeFetcher(settings, resolver=resolver, ssl_context=ca.client_context()), resolver


def test_pinned_connection_sends_sni_and_verifies_the_host_name(ca, tmp_path):
    with FixtureServer(ssl_context=ca.server_context("localhost", tmp_path)) as server:
        server.route("/feed.xml", Reply(body=b"<rss/>", content_type="application/rss+xml"))
        fetcher, resolver = _fetcher(server, ca)
        with fetcher:
            document = fetcher.get_document(server.url("/feed.xml", host="localhost"))
        assert document.content == b"<rss/>"
        assert server.sni_names == ["localhost"]
        assert resolver.questions == [("localhost", server.port)]


def test_a_certificate_for_another_name_is_refused(ca, tmp_path):
    with FixtureServer(ssl_context=ca.server_context("wrong.example", tmp_path)) as server:
        server.route("/feed.xml", Reply(body=b"<rss/>"))
        fetcher, _ = _fetcher(server, ca)
        with fetcher, pytest.raises(TlsVerificationError) as refused:
            fetcher.get_document(server.url("/feed.xml", host="localhost"))
        assert refused.value.code == "tls_verification_failed"
        assert server.sni_names == ["localhost"]
        assert server.requests == []


def test_an_untrusted_ca_is_refused(ca, tmp_path):
    other = ThrowawayCA()
    with FixtureServer(ssl_context=other.server_context("localhost", tmp_path)) as server:
        fetcher, _ = _fetcher(server, ca)
        with fetcher, pytest.raises(TlsVerificationError):
            fetcher.get_document(server.url("/", host="localhost"))


def test_a_context_that_skips_verification_is_rejected():
    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(ValueError, match="verify"):
        SafeFetcher(load_settings(env="test"), ssl_context=lax)
