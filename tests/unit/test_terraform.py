"""The Terraform in terraform/, checked without the Google provider.

`terraform validate` needs the provider, which cannot be downloaded here, so these tests parse
the HCL (python-hcl2) and assert the wiring that matters: each function gets only settings the
settings model knows and every setting its part needs; the push subscriptions and the
scheduler point where they should; every IAM grant is one of those listed below, and each
listed grant exists; variables are typed and described; no primitive role anywhere.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from podscribe.settings import Settings
from tests.services import missing_service
from tools.terraform_docs import TERRAFORM_DIR, doc_targets, load_module, named_blocks, stale

MODULES_DIR = TERRAFORM_DIR / "modules"
MODULE_NAMES = ["functions", "job", "network", "pubsub", "redis", "secrets", "sql", "storage"]
ALL_MODULE_DIRS = [
    TERRAFORM_DIR,
    TERRAFORM_DIR / "examples" / "dev",
    *(MODULES_DIR / name for name in MODULE_NAMES),
]
FUNCTIONS_DIR = TERRAFORM_DIR.parent / "functions"

SETTINGS_ALIASES = {
    choice
    for field in Settings.model_fields.values()
    for choice in getattr(field.validation_alias, "choices", [])
    if isinstance(choice, str)
}

# The settings each part cannot run without in production (the rest have usable defaults).
DATABASE = {
    "CLOUDSQL_CONNECTION_NAME",
    "PODSCRIBE_DB_NAME",
    "PODSCRIBE_DB_USER",
    "PODSCRIBE_DB_IP_TYPE",
}
PLATFORM = {"PODSCRIBE_ENV", "PODSCRIBE_PROJECT_ID", "PODSCRIBE_REGION", "PODSCRIBE_BUCKET"}
LAUNCHER = {
    "PODSCRIBE_LAUNCHER",
    "PODSCRIBE_VERTEX_IMAGE",
    "PODSCRIBE_VERTEX_SERVICE_ACCOUNT",
    "PODSCRIBE_VERTEX_NETWORK_ATTACHMENT",
}
# Links (job documents, OpenAPI, webhooks sent by dispatch, the sweep and the job) never
# follow a request's Host: every function is told the public base URL. Every function signs
# (or, submit, derives a key's secret) with the master webhook secret, read by resource name.
LINKS = {"PODSCRIBE_PUBLIC_BASE_URL", "PODSCRIBE_WEBHOOK_SECRET_VERSION"}
# Production refuses to run without a real model: submit records it on each job, dispatch and
# the sweep pass it to the jobs they launch.
MODEL = {"WHISPER_MODEL"}
REQUIRED_SETTINGS = {
    "submit": DATABASE
    | PLATFORM
    | LINKS
    | MODEL
    | {"PODSCRIBE_PUBSUB_TOPIC", "PODSCRIBE_TRUSTED_PROXY_HOPS"},
    "dispatch": DATABASE | PLATFORM | LAUNCHER | LINKS | MODEL,
    "sweep": DATABASE | PLATFORM | LAUNCHER | LINKS | MODEL | {"PODSCRIBE_PUBSUB_TOPIC"},
}
SUBMIT_SECRETS = {
    "PODSCRIBE_API_KEYS": "${var.api_keys_secret_id}",
    "PODSCRIBE_REDIS_URL": "${var.redis_url_secret_id}",
}

# Every IAM grant in terraform/, per module: (principal, on what, scope, role). The principal
# is a google_service_account of that module, or a literal member; roles drop "roles/".
EXPECTED_GRANTS = {
    "functions": {
        ("submit", "project", "${var.project_id}", "cloudsql.client"),
        ("submit", "project", "${var.project_id}", "cloudsql.instanceUser"),
        ("submit", "topic", "${var.jobs_topic_id}", "pubsub.publisher"),
        ("submit", "bucket", "${var.transcripts_bucket}", "storage.objectViewer"),
        ("submit", "secret", "${var.api_keys_secret_id}", "secretmanager.secretAccessor"),
        ("submit", "secret", "${var.redis_url_secret_id}", "secretmanager.secretAccessor"),
        # Each key's webhook secret is derived from the master (GET /v1/webhook-secret).
        ("submit", "secret", "${var.webhook_secret_id}", "secretmanager.secretAccessor"),
        ("dispatch", "project", "${var.project_id}", "aiplatform.user"),
        ("dispatch", "project", "${var.project_id}", "cloudsql.client"),
        ("dispatch", "project", "${var.project_id}", "cloudsql.instanceUser"),
        ("dispatch", "account", "${var.job_service_account_name}", "iam.serviceAccountUser"),
        ("dispatch", "secret", "${var.webhook_secret_id}", "secretmanager.secretAccessor"),
        ("sweep", "secret", "${var.webhook_secret_id}", "secretmanager.secretAccessor"),
        ("sweep", "project", "${var.project_id}", "aiplatform.viewer"),
        ("sweep", "project", "${var.project_id}", "cloudsql.client"),
        ("sweep", "project", "${var.project_id}", "cloudsql.instanceUser"),
        ("sweep", "topic", "${var.jobs_topic_id}", "pubsub.publisher"),
        ("push", "run", "${google_cloudfunctions2_function.dispatch.name}", "run.invoker"),
        ("push", "run", "${google_cloudfunctions2_function.sweep.name}", "run.invoker"),
        ("allUsers", "run", "${google_cloudfunctions2_function.submit.name}", "run.invoker"),
        # The build account: its log, the uploaded bundles, Cloud Functions' own staging
        # buckets (a condition limits the grant to gcf-v2-*), the built image.
        ("build", "project", "${var.project_id}", "logging.logWriter"),
        ("build", "project", "${var.project_id}", "artifactregistry.writer"),
        ("build", "project", "${var.project_id}", "storage.objectAdmin"),
        ("build", "bucket", "${var.sources_bucket}", "storage.objectViewer"),
    },
    "network": {
        # Vertex AI's service agent attaches the jobs' PSC interfaces to the attachment.
        ("vertex-agent", "project", "${var.project_id}", "compute.networkAdmin"),
    },
    "job": {
        ("job", "project", "${var.project_id}", "cloudsql.client"),
        ("job", "project", "${var.project_id}", "cloudsql.instanceUser"),
        ("job", "bucket", "${var.transcripts_bucket}", "storage.objectUser"),
        ("job", "secret", "${var.webhook_secret_id}", "secretmanager.secretAccessor"),
    },
    "pubsub": {
        ("pubsub-agent", "topic", "${google_pubsub_topic.dead_letter.name}", "pubsub.publisher"),
        (
            "pubsub-agent",
            "subscription",
            "${google_pubsub_subscription.dispatch.name}",
            "pubsub.subscriber",
        ),
    },
}

# IAM resource type -> (short name, the attribute naming what the grant is on).
IAM_KINDS = {
    "google_project_iam_member": ("project", "project"),
    "google_pubsub_topic_iam_member": ("topic", "topic"),
    "google_pubsub_subscription_iam_member": ("subscription", "subscription"),
    "google_storage_bucket_iam_member": ("bucket", "bucket"),
    "google_secret_manager_secret_iam_member": ("secret", "secret_id"),
    "google_service_account_iam_member": ("account", "service_account_id"),
    "google_cloud_run_v2_service_iam_member": ("run", "name"),
}


def resources(module: dict[str, list[Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for block in module.get("resource", []):
        for kind, named in block.items():
            for name, body in named.items():
                found[kind, name] = body
    return found


def locals_of(module: dict[str, list[Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in module.get("locals", []):
        merged.update(block)
    return merged


def resolve_local(module: dict[str, list[Any]], expression: str) -> Any:
    match = re.fullmatch(r"\$\{local\.(\w+)\}", expression)
    assert match, f"{expression!r} is not a plain local reference"
    return locals_of(module)[match.group(1)]


@pytest.fixture(scope="module")
def modules() -> dict[str, dict[str, list[Any]]]:
    loaded = {name: load_module(MODULES_DIR / name) for name in MODULE_NAMES}
    loaded["root"] = load_module(TERRAFORM_DIR)
    loaded["example"] = load_module(TERRAFORM_DIR / "examples" / "dev")
    return loaded


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        missing_service("the terraform binary is not installed")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_every_module_has_the_four_files_and_a_readme(name: str) -> None:
    present = {path.name for path in (MODULES_DIR / name).iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= present


def test_root_module_layout_and_modules_are_all_used(modules: dict[str, Any]) -> None:
    present = {path.name for path in TERRAFORM_DIR.glob("*.tf")}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= present
    calls = named_blocks(modules["root"], "module")
    assert {call["source"] for call in calls.values()} == {
        f"./modules/{name}" for name in MODULE_NAMES
    }
    assert (TERRAFORM_DIR / "examples" / "dev" / "terraform.tfvars.example").is_file()


META_ARGUMENTS = {"source", "depends_on", "providers", "count", "for_each", "version"}


def test_module_calls_give_every_required_input_and_only_declared_ones(
    modules: dict[str, Any],
) -> None:
    """What `terraform validate` would check first, done without the provider."""
    calls = {
        **{
            (TERRAFORM_DIR, name): call
            for name, call in named_blocks(modules["root"], "module").items()
        },
        **{
            (TERRAFORM_DIR / "examples" / "dev", name): call
            for name, call in named_blocks(modules["example"], "module").items()
        },
    }
    assert len(calls) == len(MODULE_NAMES) + 1
    for (caller_dir, name), call in calls.items():
        callee = load_module((caller_dir / call["source"]).resolve())
        declared = named_blocks(callee, "variable")
        given = set(call) - META_ARGUMENTS
        required = {var for var, spec in declared.items() if "default" not in spec}
        assert given - set(declared) == set(), f"{name}: arguments the module does not declare"
        assert required - given == set(), f"{name}: required inputs not given"


def test_references_to_module_outputs_exist(modules: dict[str, Any]) -> None:
    outputs = {name: set(named_blocks(modules[name], "output")) for name in MODULE_NAMES}
    text = "\n".join(path.read_text() for path in TERRAFORM_DIR.glob("*.tf"))
    references = re.findall(r"module\.(\w+)\.(\w+)", text)
    assert references
    for module_name, output in references:
        assert output in outputs[module_name], f"module.{module_name}.{output} is not an output"


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=lambda path: path.name)
def test_every_variable_is_typed_and_described(module_dir: Path) -> None:
    variables = named_blocks(load_module(module_dir), "variable")
    assert variables
    for name, spec in variables.items():
        assert spec.get("type"), f"{module_dir.name}: variable {name} has no type"
        assert str(spec.get("description", "")).strip(), f"{module_dir.name}: {name} undescribed"


@pytest.mark.parametrize("module_dir", ALL_MODULE_DIRS, ids=lambda path: path.name)
def test_every_output_is_described_and_secrets_are_sensitive(module_dir: Path) -> None:
    for name, spec in named_blocks(load_module(module_dir), "output").items():
        assert str(spec.get("description", "")).strip(), f"{module_dir.name}: output {name}"
        if "auth_string" in str(spec["value"]):
            assert spec.get("sensitive") is True, f"{name} exposes a secret"


def test_providers_are_pinned_in_a_bounded_range(modules: dict[str, Any]) -> None:
    for name, module in modules.items():
        terraform_blocks = module.get("terraform", [])
        assert terraform_blocks, name
        block = terraform_blocks[0]
        assert block["required_version"].startswith(">= 1.5"), name
        providers = block["required_providers"][0]
        assert providers["google"]["source"] == "hashicorp/google"
        # The current major, from the release that has everything used here.
        for provider in providers.values():
            assert provider["version"] == ">= 7.10, < 8", name
        assert set(providers) <= {"google", "google-beta"}, name


def test_no_primitive_roles_and_no_authoritative_iam() -> None:
    primitive = re.compile(r"roles/(owner|editor|viewer)\b")
    for path in TERRAFORM_DIR.rglob("*.tf"):
        text = path.read_text()
        assert not primitive.search(text), f"{path}: primitive role"
        # Authoritative bindings and policies would silently remove grants made elsewhere.
        assert not re.search(r"_iam_(binding|policy)\"", text), f"{path}: authoritative IAM"


def _principal(kind: str, body: dict[str, Any]) -> str:
    member = str(body["member"])
    if member == "allUsers":
        return member
    if member == "${local.pubsub_service_agent}":
        return "pubsub-agent"
    if member == "serviceAccount:${google_project_service_identity.vertex_ai.email}":
        return "vertex-agent"
    match = re.fullmatch(r"serviceAccount:\$\{google_service_account\.(\w+)\.email\}", member)
    assert match, f"{kind}: member {member!r} is not one of this module's accounts"
    return match.group(1)


def test_iam_grants_are_exactly_the_listed_roles(modules: dict[str, Any]) -> None:
    found: dict[str, set[tuple[str, str, str, str]]] = {}
    for name in [*MODULE_NAMES, "root"]:
        for (kind, _), body in resources(modules[name]).items():
            if "_iam_" not in kind:
                continue
            assert kind in IAM_KINDS, f"{name}: unexpected IAM resource {kind}"
            short, scope_attribute = IAM_KINDS[kind]
            role = str(body["role"]).removeprefix("roles/")
            grant = (_principal(kind, body), short, str(body[scope_attribute]), role)
            found.setdefault(name, set()).add(grant)
    for name in set(found) | set(EXPECTED_GRANTS):
        unlisted = found.get(name, set()) - EXPECTED_GRANTS.get(name, set())
        missing = EXPECTED_GRANTS.get(name, set()) - found.get(name, set())
        assert unlisted == set(), f"{name}: grants nobody listed"
        assert missing == set(), f"{name}: listed grants missing"


def test_pubsub_service_agent_is_created_before_its_grants(modules: dict[str, Any]) -> None:
    # The agent appears lazily; granting it a role before it exists fails the apply. Granting
    # the identity resource's email makes every grant wait for its creation.
    identity = resources(modules["pubsub"])["google_project_service_identity", "pubsub"]
    assert identity["service"] == "pubsub.googleapis.com"
    assert identity["provider"] == "google-beta"
    agent = locals_of(modules["pubsub"])["pubsub_service_agent"]
    assert agent == "serviceAccount:${google_project_service_identity.pubsub.email}"


def test_grants_land_on_the_resources_the_root_wires_in(modules: dict[str, Any]) -> None:
    calls = named_blocks(modules["root"], "module")
    functions, job = calls["functions"], calls["job"]
    assert functions["jobs_topic_id"] == "${module.pubsub.jobs_topic_id}"
    assert functions["transcripts_bucket"] == "${module.storage.transcripts_bucket}"
    assert functions["api_keys_secret_id"] == "${module.secrets.api_keys_secret_id}"
    assert functions["redis_url_secret_id"] == "${module.secrets.redis_url_secret_id}"
    assert functions["job_service_account_name"] == "${module.job.service_account_name}"
    assert functions["job_service_account_email"] == "${module.job.service_account_email}"
    assert job["transcripts_bucket"] == "${module.storage.transcripts_bucket}"
    assert functions["webhook_secret_id"] == "${module.secrets.webhook_secret_id}"
    assert job["webhook_secret_id"] == "${module.secrets.webhook_secret_id}"
    outputs = named_blocks(modules["pubsub"], "output")
    assert outputs["jobs_topic_id"]["value"] == "${google_pubsub_topic.jobs.id}"


def _functions(modules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for (kind, name), body in resources(modules["functions"]).items()
        if kind == "google_cloudfunctions2_function"
    }


def test_function_environments_are_settings_fields_and_complete(
    modules: dict[str, Any],
) -> None:
    functions = _functions(modules)
    assert set(functions) == set(REQUIRED_SETTINGS)
    for name, body in functions.items():
        service = body["service_config"][0]
        environment = resolve_local(modules["functions"], service["environment_variables"])
        secrets = {item["key"]: item for item in service.get("secret_environment_variables", [])}
        given = set(environment) | set(secrets)
        assert given - SETTINGS_ALIASES == set(), f"{name}: not settings fields"
        assert REQUIRED_SETTINGS[name] - given == set(), f"{name}: required settings missing"
        # Literal values must be values the model accepts (enums like env, launcher, ip type).
        literals = {key: value for key, value in environment.items() if "${" not in str(value)}
        Settings(**literals)
        # Each function logs in to the database as its own service account.
        account = re.fullmatch(
            r"\$\{google_service_account\.(\w+)\.email\}", service["service_account_email"]
        )
        assert account, name
        assert environment["PODSCRIBE_DB_USER"] == (
            f"${{trimsuffix(google_service_account.{account.group(1)}.email, local.sa_suffix)}}"
        )
        assert locals_of(modules["functions"])["sa_suffix"] == ".gserviceaccount.com"
    submit_secrets = {
        item["key"]: item["secret"]
        for item in functions["submit"]["service_config"][0]["secret_environment_variables"]
    }
    assert submit_secrets == SUBMIT_SECRETS
    for name in ("dispatch", "sweep"):
        assert "secret_environment_variables" not in functions[name]["service_config"][0]


def test_production_literals_select_the_cloud_parts(modules: dict[str, Any]) -> None:
    functions = _functions(modules)
    for name, body in functions.items():
        environment = resolve_local(
            modules["functions"], body["service_config"][0]["environment_variables"]
        )
        assert environment["PODSCRIBE_ENV"] == "production"
        assert environment["PODSCRIBE_DB_IP_TYPE"] == "private"
        if name != "submit":
            assert environment["PODSCRIBE_LAUNCHER"] == "vertex"
            assert environment["PODSCRIBE_VERTEX_SERVICE_ACCOUNT"] == (
                "${var.job_service_account_email}"
            )
            assert environment["PODSCRIBE_VERTEX_NETWORK_ATTACHMENT"] == (
                "${var.vertex_network_attachment}"
            )
            assert "PODSCRIBE_VERTEX_NETWORK" not in environment  # peering cannot reach SQL
            assert environment["PODSCRIBE_VERTEX_IMAGE"] == "${var.job_image}"


def test_migration_job_environment_is_settings_fields(modules: dict[str, Any]) -> None:
    environment = locals_of(modules["root"])["migration_environment"]
    assert set(environment) - SETTINGS_ALIASES == set()
    assert set(environment) >= DATABASE
    assert environment["PODSCRIBE_DB_USER"] == '${local.db_users["job"]}'


def _targets_defined(main_py: Path) -> dict[str, str]:
    """Top-level functions of a main.py and the functions_framework decorator on each."""
    tree = ast.parse(main_py.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Attribute) and decorator.attr in {
                    "http",
                    "cloud_event",
                }:
                    found[node.name] = decorator.attr
    return found


def test_functions_deploy_the_right_bundle_target_and_ingress(modules: dict[str, Any]) -> None:
    functions = _functions(modules)
    expected = {
        "submit": ("submit", "google_storage_bucket_object.submit", "ALLOW_ALL", "http"),
        "dispatch": (
            "dispatch",
            "google_storage_bucket_object.dispatch",
            "ALLOW_INTERNAL_ONLY",
            "cloud_event",
        ),
        "sweep": (
            "sweep",
            "google_storage_bucket_object.dispatch",
            "ALLOW_INTERNAL_ONLY",
            "cloud_event",
        ),
    }
    bundles = {"submit": "submit", "dispatch": "dispatch", "sweep": "dispatch"}
    for name, (entry_point, source_object, ingress, decorator) in expected.items():
        build = functions[name]["build_config"][0]
        assert build["entry_point"] == entry_point
        storage = build["source"][0]["storage_source"][0]
        assert storage["object"] == f"${{{source_object}.name}}"
        assert storage["bucket"] == "${var.sources_bucket}"
        service = functions[name]["service_config"][0]
        assert service["ingress_settings"] == ingress
        # Direct VPC egress from the functions' subnet; private ranges only.
        assert "vpc_connector" not in service
        interface = service["direct_vpc_network_interface"][0]
        assert interface == {
            "network": "${var.network_id}",
            "subnetwork": "${var.functions_subnetwork_id}",
        }
        assert service["direct_vpc_egress"] == "VPC_EGRESS_PRIVATE_RANGES_ONLY"
        assert build["service_account"] == "${local.build_service_account}"
        main_py = FUNCTIONS_DIR / bundles[name] / "main.py"
        if main_py.exists():
            assert _targets_defined(main_py).get(entry_point) == decorator, main_py
    objects = resources(modules["functions"])
    for bundle in ("submit", "dispatch"):
        body = objects["google_storage_bucket_object", bundle]
        assert body["source"] == f"${{var.{bundle}_bundle_path}}"
        # Named by content hash: a changed bundle is a new object, so the function redeploys.
        assert f"filemd5(var.{bundle}_bundle_path)" in body["name"]
    calls = named_blocks(modules["root"], "module")
    assert calls["functions"]["submit_bundle_path"] == "${local.bundles_dir}/submit.zip"
    assert calls["functions"]["dispatch_bundle_path"] == "${local.bundles_dir}/dispatch.zip"
    assert "build/bundles" in locals_of(modules["root"])["bundles_dir"]


def test_dispatch_is_woken_by_the_jobs_topic_with_retries_and_dead_letters(
    modules: dict[str, Any],
) -> None:
    pubsub = resources(modules["pubsub"])
    dispatch = pubsub["google_pubsub_subscription", "dispatch"]
    assert dispatch["topic"] == "${google_pubsub_topic.jobs.id}"
    push = dispatch["push_config"][0]
    assert push["push_endpoint"] == "${var.dispatch_push_endpoint}"
    assert push["oidc_token"][0]["audience"] == "${var.dispatch_push_endpoint}"
    assert push["oidc_token"][0]["service_account_email"] == "${var.push_service_account_email}"
    assert dispatch["retry_policy"][0]["minimum_backoff"] == "${var.minimum_backoff}"
    dead_letter = dispatch["dead_letter_policy"][0]
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead_letter["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    # Dead letters are kept by a subscription of their own.
    kept = pubsub["google_pubsub_subscription", "dead_letter"]
    assert kept["topic"] == "${google_pubsub_topic.dead_letter.id}"

    sweep = pubsub["google_pubsub_subscription", "sweep"]
    assert sweep["topic"] == "${google_pubsub_topic.sweep.id}"
    assert sweep["push_config"][0]["push_endpoint"] == "${var.sweep_push_endpoint}"
    scheduler = pubsub["google_cloud_scheduler_job", "sweep"]
    assert scheduler["pubsub_target"][0]["topic_name"] == "${google_pubsub_topic.sweep.id}"

    # The root hands the pubsub module the functions' own URLs and push identity.
    calls = named_blocks(modules["root"], "module")
    assert calls["pubsub"]["dispatch_push_endpoint"] == "${module.functions.dispatch_url}"
    assert calls["pubsub"]["sweep_push_endpoint"] == "${module.functions.sweep_url}"
    assert calls["pubsub"]["push_service_account_email"] == (
        "${module.functions.push_service_account_email}"
    )
    outputs = named_blocks(modules["functions"], "output")
    assert outputs["dispatch_url"]["value"] == (
        "${google_cloudfunctions2_function.dispatch.service_config[0].uri}"
    )
    assert outputs["sweep_url"]["value"] == (
        "${google_cloudfunctions2_function.sweep.service_config[0].uri}"
    )
    # submit publishes to the topic whose name it is told.
    assert calls["functions"]["jobs_topic_name"] == "${module.pubsub.jobs_topic_name}"


def test_cloud_sql_is_private_iam_authenticated_and_recoverable(modules: dict[str, Any]) -> None:
    sql = resources(modules["sql"])
    instance = sql["google_sql_database_instance", "this"]
    assert instance["database_version"] == "POSTGRES_15"
    assert instance["deletion_protection"] == "${var.deletion_protection}"
    settings = instance["settings"][0]
    network = settings["ip_configuration"][0]
    assert network["ipv4_enabled"] is False
    assert network["private_network"] == "${var.network_id}"
    backups = settings["backup_configuration"][0]
    assert backups["enabled"] is True
    assert backups["point_in_time_recovery_enabled"] is True
    flags = {flag["name"]: flag["value"] for flag in settings["database_flags"]}
    assert flags["cloudsql.iam_authentication"] == "on"
    users = sql["google_sql_user", "iam"]
    assert users["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"
    assert users["name"] == '${trimsuffix(each.value, ".gserviceaccount.com")}'
    variables = named_blocks(modules["sql"], "variable")
    assert variables["deletion_protection"]["default"] is True
    root_variables = named_blocks(modules["root"], "variable")
    assert root_variables["db_deletion_protection"]["default"] is True
    accounts = named_blocks(modules["root"], "module")["sql"]["iam_service_accounts"]
    assert set(accounts) == {"submit", "dispatch", "sweep", "job"}


def test_buckets_are_private_and_lifecycle_is_an_input(modules: dict[str, Any]) -> None:
    storage = resources(modules["storage"])
    for name in ("transcripts", "sources"):
        bucket = storage["google_storage_bucket", name]
        assert bucket["uniform_bucket_level_access"] is True
        assert bucket["public_access_prevention"] == "enforced"
    dynamic = storage["google_storage_bucket", "transcripts"]["dynamic"][0]["lifecycle_rule"]
    assert dynamic["for_each"] == "${var.transcripts_lifecycle_rules}"


def test_checkov_skips_are_justified_in_place() -> None:
    skip = re.compile(r"#checkov:skip=(CKV2?_[A-Z]+_\d+)(.*)")
    count = 0
    for path in TERRAFORM_DIR.rglob("*.tf"):
        for match in skip.finditer(path.read_text()):
            count += 1
            reason = match.group(2).lstrip(":").strip()
            assert len(reason) >= 20, f"{path}: {match.group(1)} skipped without a reason"
    assert count > 0


@pytest.mark.parametrize("target", doc_targets(), ids=lambda target: target.markdown.parent.name)
def test_inputs_and_outputs_tables_are_current(target: Any) -> None:
    assert not stale(target), f"{target.markdown}: run `python -m tools.terraform_docs`"
