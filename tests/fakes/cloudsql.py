"""A local Cloud SQL for the real Cloud SQL Python Connector, faked at the wire.

Google has no Cloud SQL emulator, so this module plays the two parts of Cloud SQL the
connector talks to, both on 127.0.0.1:

* the SQL Admin API (``sqladmin_api_endpoint``): ``GET .../instances/<i>/connectSettings``
  answers the instance's addresses, region, version and server CA certificate;
  ``POST .../instances/<i>:generateEphemeralCert`` signs the connector's public key into a
  short-lived client certificate. Every request is recorded, bearer token included, and a
  token the fake did not hand out is refused with 401 like the real API would.
* the instance's server-side proxy on port 3307 (fixed by the connector): it terminates the
  connector's mutual TLS, refuses a client certificate that the instance CA did not sign,
  and pipes the plain PostgreSQL protocol to a real PostgreSQL server.

A throwaway CA (made with ``trustme``) signs both the server certificate and the
ephemeral client certificates, as the instance CA does for a real instance.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import ssl
import threading
from collections.abc import Collection, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.auth.credentials import Credentials

CONNECTOR_SERVER_PORT = 3307  # google.cloud.sql.connector.connector.SERVER_PROXY_PORT
API_PREFIX = "/sql/v1beta4"
IAM_LOGIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.login"

_CONNECT_SETTINGS = re.compile(
    rf"^{API_PREFIX}/projects/([^/]+)/instances/([^/:]+)/connectSettings$"
)
_EPHEMERAL_CERT = re.compile(
    rf"^{API_PREFIX}/projects/([^/]+)/instances/([^/:]+):generateEphemeralCert$"
)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ProxyPortBusyError(OSError):
    """Port 3307 on 127.0.0.1 is taken, and the connector dials no other port."""


@dataclass(frozen=True)
class AdminApiRequest:
    """One request the fake Admin API received.

    Attributes:
        method: HTTP method.
        path: URL path.
        authorization: the ``Authorization`` header, as sent.
        user_agent: the ``User-Agent`` header.
        body: the decoded JSON body (POST), else None.
        status: the status the fake answered with.
    """

    method: str
    path: str
    authorization: str | None
    user_agent: str | None
    body: dict[str, Any] | None
    status: int


@dataclass(frozen=True)
class ProxiedConnection:
    """A connection the proxy let through after verifying its client certificate.

    Attributes:
        client_serial: serial number of the client certificate presented.
        client_common_name: its subject common name.
        tls_version: the negotiated protocol, e.g. ``TLSv1.3``.
    """

    client_serial: int
    client_common_name: str
    tls_version: str


class ThrowawayCa:
    """A certificate authority that lives as long as the test: the instance's server CA.

    ``trustme`` makes the CA and the proxy's server certificate. The ephemeral client
    certificates are the one thing it cannot make: Cloud SQL signs the *connector's* public
    key, and trustme only issues certificates for keys of its own, so those are built with
    ``cryptography`` and signed with this CA's key.
    """

    def __init__(self, instance_id: str) -> None:
        self._ca = trustme.CA(
            organization_name="Google Cloud SQL Server CA (fake)",
            organization_unit_name=instance_id,
        )
        self.certificate = x509.load_pem_x509_certificate(self._ca.cert_pem.bytes())
        self._key = serialization.load_pem_private_key(self._ca.private_key_pem.bytes(), None)

    @property
    def pem(self) -> str:
        """The CA certificate in PEM, as ``serverCaCert.cert`` carries it."""
        return self._ca.cert_pem.bytes().decode("ascii")

    def issue_server_cert(self, instance_id: str, address: str) -> trustme.LeafCert:
        """The instance proxy's server certificate, for its IP address."""
        return self._ca.issue_cert(address, common_name=instance_id)

    def trust(self, context: ssl.SSLContext) -> None:
        """Make ``context`` trust certificates this CA signed (and only those it is told of)."""
        self._ca.configure_trust(context)

    def sign_client_key(self, public_key_pem: str, subject: str) -> x509.Certificate:
        """An ephemeral client certificate for a public key, valid for an hour.

        Raises:
            ValueError: the PEM is not a public key.
            TypeError: it is a public key of a kind certificates here do not carry.
        """
        public_key = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise TypeError("Cloud SQL signs RSA or EC keys only")
        if not isinstance(self._key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TypeError("trustme made a CA key of an unexpected type")
        now = _utcnow()
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )


class LocalTokenCredentials(Credentials):
    """google-auth credentials that mint their tokens locally instead of at a token endpoint.

    The connector refreshes credentials (down-scoped to the IAM login scope) before asking
    for an IAM-auth ephemeral certificate; a real token endpoint is not on loopback, so this
    one answers itself. ``refreshes`` is shared with the shallow copies the connector makes.
    """

    def __init__(self, token: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.token = token
        self.expiry = _naive_utc_in(datetime.timedelta(hours=1))
        self._scopes: list[str] | None = None
        self.refreshes: list[tuple[str, ...]] = []

    @staticmethod
    def token_for(scopes: Collection[str]) -> str:
        """The token a refresh for these scopes yields."""
        return "minted-for:" + ",".join(sorted(scopes))

    def refresh(self, request: Any) -> None:
        scopes = tuple(self._scopes or ())
        self.refreshes.append(scopes)
        self.token = self.token_for(scopes)
        self.expiry = _naive_utc_in(datetime.timedelta(hours=1))


def _naive_utc_in(delta: datetime.timedelta) -> datetime.datetime:
    # google-auth keeps expiries as naive UTC datetimes.
    return (_utcnow() + delta).replace(tzinfo=None)


@dataclass
class FakeCloudSql:
    """The fake Admin API and the instance proxy, served from one background event loop.

    Args:
        project: the instance's project.
        region: its region (the connector checks it against the connection name).
        instance: its name.
        accepted_tokens: bearer tokens the Admin API accepts; any other gets 401.
        ip_types: the address types ``connectSettings`` lists (``PRIMARY``, ``PRIVATE``),
            each 127.0.0.1, so a connector asking for another type fails instead of leaving
            loopback.
        database_version: the ``databaseVersion`` answered, e.g. ``POSTGRES_15``.
        upstream: the real PostgreSQL the proxy pipes to.
        proxy_port: where the proxy listens; the connector only dials 3307.
    """

    project: str
    region: str
    instance: str
    accepted_tokens: Collection[str]
    ip_types: Collection[str] = ("PRIMARY", "PRIVATE")
    database_version: str = "POSTGRES_15"
    upstream: tuple[str, int] = ("127.0.0.1", 5432)
    proxy_port: int = CONNECTOR_SERVER_PORT
    address: str = "127.0.0.1"
    _requests: list[AdminApiRequest] = field(default_factory=list, init=False)
    _proxied: list[ProxiedConnection] = field(default_factory=list, init=False)
    _refused: list[str] = field(default_factory=list, init=False)
    _issued_serials: set[int] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _runner: web.AppRunner | None = field(default=None, init=False)
    _proxy_server: asyncio.Server | None = field(default=None, init=False)
    _proxy_tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _api_port: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.instance_id = f"{self.project}:{self.instance}"
        self.ca = ThrowawayCa(self.instance_id)
        self._server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server_tls.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as Cloud SQL requires
        self.ca.trust(self._server_tls)
        self.ca.issue_server_cert(self.instance_id, self.address).configure_cert(self._server_tls)

    # --- what tests look at ----------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The base URL to give the connector as ``sqladmin_api_endpoint``."""
        return f"http://{self.address}:{self._api_port}"

    @property
    def requests(self) -> list[AdminApiRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def proxied(self) -> list[ProxiedConnection]:
        with self._lock:
            return list(self._proxied)

    @property
    def refused(self) -> list[str]:
        """Why the proxy dropped connections: failed TLS handshakes, an unreachable upstream."""
        with self._lock:
            return list(self._refused)

    @property
    def issued_serials(self) -> set[int]:
        """Serial numbers of the ephemeral client certificates the Admin API signed."""
        with self._lock:
            return set(self._issued_serials)

    # --- life cycle --------------------------------------------------------------------------
    def start(self) -> FakeCloudSql:
        """Start both servers; returns once they listen.

        Raises:
            ProxyPortBusyError: the proxy port is taken.
        """
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-cloudsql", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every connection and both servers, stop the loop and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            with suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeCloudSql:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start(self) -> None:
        try:
            self._proxy_server = await asyncio.start_server(
                self._serve_proxy_client, self.address, self.proxy_port
            )
        except OSError as error:
            raise ProxyPortBusyError(
                error.errno,
                f"cannot listen on {self.address}:{self.proxy_port} for the fake Cloud SQL "
                f"proxy (the connector always dials port {CONNECTOR_SERVER_PORT}; is another "
                f"test or a Cloud SQL Auth Proxy using it?): {error.strerror}",
            ) from error
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve_admin_api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, 0)
        await site.start()
        self._api_port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._proxy_server is not None:
            self._proxy_server.close()
        for task in list(self._proxy_tasks):
            task.cancel()
        if self._proxy_tasks:
            await asyncio.gather(*self._proxy_tasks, return_exceptions=True)
        if self._proxy_server is not None:
            await self._proxy_server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the Admin API ----------------------------------------------------------------------
    async def _serve_admin_api(self, request: web.Request) -> web.Response:
        body: dict[str, Any] | None = None
        if request.can_read_body:
            with suppress(ValueError):
                body = await request.json()
        status, payload = self._answer(request.method, request.path, request.headers, body)
        with self._lock:
            self._requests.append(
                AdminApiRequest(
                    method=request.method,
                    path=request.path,
                    authorization=request.headers.get("Authorization"),
                    user_agent=request.headers.get("User-Agent"),
                    body=body,
                    status=status,
                )
            )
        return web.json_response(payload, status=status)

    def _answer(
        self, method: str, path: str, headers: Any, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        authorization = headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        if not authorization.startswith("Bearer ") or token not in self.accepted_tokens:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if method == "GET" and (match := _CONNECT_SETTINGS.match(path)):
            if match.groups() != (self.project, self.instance):
                return _error(404, "NOT_FOUND", "The Cloud SQL instance does not exist.")
            return 200, self._connect_settings()
        if method == "POST" and (match := _EPHEMERAL_CERT.match(path)):
            if match.groups() != (self.project, self.instance):
                return _error(404, "NOT_FOUND", "The Cloud SQL instance does not exist.")
            return self._ephemeral_cert(body or {})
        return _error(404, "NOT_FOUND", f"no such method: {method} {path}")

    def _connect_settings(self) -> dict[str, Any]:
        return {
            "kind": "sql#connectSettings",
            "serverCaCert": {
                "kind": "sql#sslCert",
                "certSerialNumber": str(self.ca.certificate.serial_number),
                "cert": self.ca.pem,
                "commonName": "Google Cloud SQL Server CA (fake)",
                "instance": self.instance,
                "expirationTime": self.ca.certificate.not_valid_after_utc.isoformat(),
            },
            "ipAddresses": [
                {"type": ip_type, "ipAddress": self.address} for ip_type in self.ip_types
            ],
            "region": self.region,
            "databaseVersion": self.database_version,
            "backendType": "SECOND_GEN",
            "pscEnabled": False,
            "serverCaMode": "GOOGLE_MANAGED_INTERNAL_CA",
        }

    def _ephemeral_cert(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        public_key = body.get("public_key")
        if not isinstance(public_key, str):
            return _error(400, "INVALID_ARGUMENT", "public_key is required.")
        access_token = body.get("access_token")
        if access_token is not None and access_token not in self.accepted_tokens:
            return _error(401, "UNAUTHENTICATED", "access_token is not a valid login token.")
        try:
            certificate = self.ca.sign_client_key(public_key, "cloudsql-ephemeral-client")
        except ValueError as error:
            return _error(400, "INVALID_ARGUMENT", f"public_key: {error}")
        with self._lock:
            self._issued_serials.add(certificate.serial_number)
        return 200, {
            "ephemeralCert": {
                "kind": "sql#sslCert",
                "certSerialNumber": str(certificate.serial_number),
                "cert": certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                "instance": self.instance,
                "expirationTime": certificate.not_valid_after_utc.isoformat(),
            }
        }

    # --- the instance proxy ------------------------------------------------------------------
    async def _serve_proxy_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._proxy_tasks.add(task)
        try:
            await self._proxy(reader, writer)
        finally:
            self._proxy_tasks.discard(task)
            writer.transport.abort()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(self._server_tls, ssl_handshake_timeout=5)
        except (ssl.SSLError, OSError, TimeoutError) as error:
            with self._lock:
                self._refused.append(f"{type(error).__name__}: {error}")
            return
        tls = writer.get_extra_info("ssl_object")
        certificate = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        with self._lock:
            self._proxied.append(
                ProxiedConnection(
                    client_serial=certificate.serial_number,
                    client_common_name=str(common_names[0].value) if common_names else "",
                    tls_version=str(tls.version()),
                )
            )
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError as error:
            with self._lock:
                self._refused.append(f"upstream {self.upstream}: {error}")
            return
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.transport.abort()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy bytes until either side ends, then end the other side too."""
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        sink.transport.abort()


def _error(status: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    """A Google API error body, which the connector turns into its exception's reason."""
    return status, {"error": {"code": status, "message": message, "status": reason}}


def authorized_user_file(folder: Path, token: str) -> Path:
    """An ``authorized_user`` ADC file holding a still-valid access token.

    google-auth uses the token as it is and never calls its (non-loopback) token endpoint
    while the expiry is hours away.
    """
    path = folder / "application_default_credentials.json"
    expiry = _naive_utc_in(datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "podscribe-test.apps.googleusercontent.com",
                "client_secret": "not-a-secret",
                "refresh_token": "never-used",
                "token": token,
                "expiry": expiry,
            }
        ),
        encoding="utf-8",
    )
    return path


def requests_for(fake: FakeCloudSql, verb: str) -> Iterator[AdminApiRequest]:
    """The recorded requests whose path ends with ``verb`` (``connectSettings``, ...)."""
    return (request for request in fake.requests if request.path.endswith(verb))


__all__ = [
    "CONNECTOR_SERVER_PORT",
    "IAM_LOGIN_SCOPE",
    "AdminApiRequest",
    "FakeCloudSql",
    "LocalTokenCredentials",
    "ProxiedConnection",
    "ProxyPortBusyError",
    "ThrowawayCa",
    "authorized_user_file",
    "requests_for",
]
