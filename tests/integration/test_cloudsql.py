"""The Cloud SQL path at the wire: the real connector, a fake Admin API, a TLS proxy, real PG.

``podscribe.db`` builds the real ``cloud-sql-python-connector`` from settings; it asks the
fake SQL Admin API (``tests.fakes.cloudsql``) for the instance's settings and an ephemeral
client certificate, dials 127.0.0.1:3307 with mutual TLS, and the proxy there hands the
PostgreSQL protocol to the real server. The connection it yields must run the same
migrations and job queries as the plain pg8000 path.

PostgreSQL here trusts local connections, so the password (or, with IAM auth, the login
token that Cloud SQL would check) is not verified by the database; what the tests check is
what reaches the wire: tokens, certificates, the user name.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pg8000.native
import pytest
import sqlalchemy as sa
import trustme
from cryptography.hazmat.primitives import serialization
from sqlalchemy.engine import Engine

from local_emulators.processes import port_open
from podscribe import jobs
from podscribe.db import (
    build_cloudsql_connector,
    create_db_engine,
    load_migrations,
    migrate,
    transaction,
    wait_for_database,
)
from podscribe.jobs import JobStatus, SubmitOutcome
from podscribe.settings import Settings, load_settings
from tests.fakes.cloudsql import (
    IAM_LOGIN_SCOPE,
    FakeCloudSql,
    LocalTokenCredentials,
    ProxyPortBusyError,
    authorized_user_file,
    requests_for,
)
from tests.integration.test_dispatch_pubsub import eventually
from tests.services import admin_connection, missing_service, throwaway_database

PROJECT = "podscribe-test"
REGION = "us-central1"
INSTANCE = "podscribe-db"
CONNECTION_NAME = f"{PROJECT}:{REGION}:{INSTANCE}"
ADC_TOKEN = "adc-access-token"
ADMIN_TOKEN = "admin-access-token"
LOGIN_TOKEN = LocalTokenCredentials.token_for([IAM_LOGIN_SCOPE])
CONNECT_SETTINGS_PATH = f"/sql/v1beta4/projects/{PROJECT}/instances/{INSTANCE}/connectSettings"
EPHEMERAL_CERT_PATH = f"/sql/v1beta4/projects/{PROJECT}/instances/{INSTANCE}:generateEphemeralCert"


def start_fake(ip_types: tuple[str, ...]) -> FakeCloudSql:
    if not port_open("127.0.0.1", 5432):
        missing_service("PostgreSQL at 127.0.0.1:5432")
    fake = FakeCloudSql(
        project=PROJECT,
        region=REGION,
        instance=INSTANCE,
        accepted_tokens={ADC_TOKEN, ADMIN_TOKEN, LOGIN_TOKEN},
        ip_types=ip_types,
    )
    try:
        return fake.start()
    except ProxyPortBusyError as error:
        missing_service(str(error))
        raise


@pytest.fixture
def public_instance() -> Iterator[FakeCloudSql]:
    fake = start_fake(("PRIMARY",))
    yield fake
    fake.stop()


@pytest.fixture
def private_instance() -> Iterator[FakeCloudSql]:
    fake = start_fake(("PRIVATE",))
    yield fake
    fake.stop()


def cloudsql_settings(fake: FakeCloudSql, database: str, **overrides: object) -> Settings:
    return load_settings(
        env="test",
        cloudsql_connection_name=CONNECTION_NAME,
        sqladmin_api_endpoint=fake.endpoint,
        db_name=database,
        db_wait_seconds=5,
        **overrides,
    )


def exercise(engine: Engine, settings: Settings) -> jobs.Job:
    """What every part does with the database: wait, migrate, submit, claim, read."""
    wait_for_database(engine, settings)
    assert migrate(engine) == [migration.name for migration in load_migrations()]
    assert migrate(engine) == []
    with transaction(engine) as conn:
        job, outcome = jobs.create_or_get_job(
            conn,
            collection_id=1535809341,
            episode_id=1000650000001,
            source_url="https://podcasts.apple.com/us/podcast/x/id1535809341?i=1000650000001",
            key_fingerprint="key-cloudsql",
        )
    assert outcome is SubmitOutcome.CREATED
    with transaction(engine) as conn:
        again, outcome = jobs.create_or_get_job(
            conn,
            collection_id=1535809341,
            episode_id=1000650000001,
            source_url="https://podcasts.apple.com/us/podcast/x/id1535809341?i=1000650000001",
            key_fingerprint="key-cloudsql",
        )
    assert (again.id, outcome) == (job.id, SubmitOutcome.EXISTING)
    with transaction(engine) as conn:
        claimed = jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        assert jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3) is None
    assert claimed is not None and claimed.status is JobStatus.DISPATCHED
    with transaction(engine) as conn:
        stored = jobs.get_job(conn, job.id, key_fingerprint="key-cloudsql")
    assert (stored.status, stored.attempts) == (JobStatus.DISPATCHED, 1)
    return stored


def session_identity(engine: Engine) -> tuple[str, str]:
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT current_user, current_database()")).one()
    return str(row[0]), str(row[1])


def assert_admin_api_calls(fake: FakeCloudSql, token: str) -> dict[str, object]:
    """The connector asked for this instance's settings and a certificate, with ``token``.

    Returns:
        The body of the (last) generateEphemeralCert request.
    """
    settings_calls = list(requests_for(fake, "connectSettings"))
    cert_calls = list(requests_for(fake, ":generateEphemeralCert"))
    assert settings_calls and cert_calls
    assert {(c.method, c.path, c.status) for c in settings_calls} == {
        ("GET", CONNECT_SETTINGS_PATH, 200)
    }
    assert {(c.method, c.path, c.status) for c in cert_calls} == {
        ("POST", EPHEMERAL_CERT_PATH, 200)
    }
    for call in settings_calls + cert_calls:
        assert call.authorization == f"Bearer {token}"
        assert call.user_agent is not None
        assert call.user_agent.startswith("cloud-sql-python-connector/")
        assert "+pg8000" in call.user_agent
    assert len(fake.requests) == len(settings_calls) + len(cert_calls)
    body = cert_calls[-1].body
    assert body is not None
    public_key = serialization.load_pem_public_key(str(body["public_key"]).encode())
    assert public_key.key_size >= 2048  # type: ignore[union-attr]
    return body


def assert_verified_proxy_connections(fake: FakeCloudSql) -> None:
    proxied = fake.proxied
    assert proxied, "no connection reached the proxy"
    assert fake.refused == []
    for connection in proxied:
        assert connection.client_serial in fake.issued_serials
        assert connection.client_common_name == "cloudsql-ephemeral-client"
        assert connection.tls_version == "TLSv1.3"  # the connector insists on it


def test_password_auth_through_connector_built_from_settings(
    public_instance: FakeCloudSql, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Application Default Credentials, as on Cloud Run / Functions, but from a file whose
    # token is valid for hours: google-auth never calls its (remote) token endpoint.
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(authorized_user_file(tmp_path, ADC_TOKEN))
    )
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    with throwaway_database() as url:
        database = url.rsplit("/", 1)[1]
        settings = cloudsql_settings(
            public_instance,
            database,
            db_user="postgres",
            db_password="cloudsql-password",
            db_ip_type="public",
        )
        connector = build_cloudsql_connector(settings)
        engine = create_db_engine(settings, connector=connector)
        try:
            job = exercise(engine, settings)
            assert session_identity(engine) == ("postgres", database)
        finally:
            engine.dispose()
            connector.close()
    assert job.status is JobStatus.DISPATCHED
    body = assert_admin_api_calls(public_instance, ADC_TOKEN)
    assert "access_token" not in body  # password auth: no login token in the certificate
    assert_verified_proxy_connections(public_instance)


def test_iam_auth_sends_login_token_and_formats_the_user(private_instance: FakeCloudSql) -> None:
    credentials = LocalTokenCredentials(ADMIN_TOKEN)
    service_account = f"podscribe-{uuid.uuid4().hex[:8]}@{PROJECT}.iam.gserviceaccount.com"
    database_user = service_account.removesuffix(".gserviceaccount.com")
    admin = admin_connection()
    admin.run(f"CREATE ROLE {pg8000.native.identifier(database_user)} LOGIN")
    try:
        with throwaway_database() as url:
            database = url.rsplit("/", 1)[1]
            admin.run(
                f"ALTER DATABASE {pg8000.native.identifier(database)}"
                f" OWNER TO {pg8000.native.identifier(database_user)}"
            )
            # No password: IAM database authentication, over the private address.
            settings = cloudsql_settings(
                private_instance, database, db_user=service_account, db_ip_type="private"
            )
            connector = build_cloudsql_connector(settings, credentials=credentials)
            engine = create_db_engine(settings, connector=connector)
            try:
                exercise(engine, settings)
                assert session_identity(engine) == (database_user, database)
            finally:
                engine.dispose()
                connector.close()
    finally:
        admin.run(f"DROP ROLE IF EXISTS {pg8000.native.identifier(database_user)}")
        admin.close()
    body = assert_admin_api_calls(private_instance, ADMIN_TOKEN)
    # The connector down-scoped the credentials to the login scope and sent that token.
    assert body["access_token"] == LOGIN_TOKEN
    assert (IAM_LOGIN_SCOPE,) in credentials.refreshes
    assert_verified_proxy_connections(private_instance)


def test_admin_api_refuses_a_token_it_did_not_issue(public_instance: FakeCloudSql) -> None:
    settings = cloudsql_settings(
        public_instance, "postgres", db_user="postgres", db_password="x", db_ip_type="public"
    )
    connector = build_cloudsql_connector(settings, credentials=LocalTokenCredentials("forged"))
    engine = create_db_engine(settings, connector=connector)
    try:
        with pytest.raises(Exception, match="invalid authentication credentials"):
            engine.connect()
    finally:
        engine.dispose()
        connector.close()
    assert {call.status for call in public_instance.requests} == {401}
    assert public_instance.proxied == []


def test_proxy_refuses_a_client_certificate_the_instance_ca_did_not_sign(
    public_instance: FakeCloudSql,
) -> None:
    stranger = trustme.CA(organization_unit_name="someone-else:instance")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    public_instance.ca.trust(context)
    stranger.issue_cert("intruder", common_name="intruder").configure_cert(context)
    ssl_request = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"  # any PostgreSQL bytes will do
    with (
        socket.create_connection(("127.0.0.1", 3307), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        # TLS 1.3: the server's verdict on the client certificate comes with the first read.
        try:
            tls.sendall(ssl_request)
            received = tls.recv(1)
        except (ssl.SSLError, ConnectionError):
            received = b""
    assert received == b""
    assert public_instance.proxied == []
    # The proxy records its side of the failed handshake in its own thread, sometimes after
    # the client has already seen the connection close.
    refused = eventually("the proxy to record the refusal", lambda: public_instance.refused, 5)
    assert len(refused) == 1
    assert "certificate" in refused[0].lower()
