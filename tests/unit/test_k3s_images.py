"""The images the k3s manifests run, read from their Dockerfiles (no Docker engine here).

- the application image (local_emulators/k3s/images/functions.Dockerfile) holds what the
  Deployments start: functions-framework, both function sources under the WORKDIR the
  manifests' relative --source paths assume, the podscribe package with the extras that
  submit, dispatch and the Kubernetes launcher import, /bin/sh for the migrate script, and a
  non-root numeric user; everything it copies exists and is not excluded from the context;
- the job template mounts a writable emptyDir on every VOLUME the job image declares
  (vertex_job/Dockerfile), since its root filesystem is read-only.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import yaml

from tests.unit.test_dockerfile import Instruction, env_values, of, parse
from tests.unit.test_k3s_manifests import K3S, TEMPLATE, TMP

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS_DOCKERFILE = K3S / "images" / "functions.Dockerfile"
JOB_DOCKERFILE = REPO / "vertex_job" / "Dockerfile"


def functions_image() -> list[Instruction]:
    return parse(FUNCTIONS_DOCKERFILE.read_text(encoding="utf-8"))


def deployment_commands() -> dict[str, list[str]]:
    commands = {}
    for name in ("submit", "dispatch", "sweep"):
        for document in yaml.safe_load_all((K3S / f"{name}.yaml").read_text()):
            if document["kind"] == "Deployment":
                [container] = document["spec"]["template"]["spec"]["containers"]
                commands[name] = container["command"]
    return commands


def test_the_function_sources_the_manifests_name_are_in_the_image() -> None:
    instructions = functions_image()
    [workdir] = of(instructions, "WORKDIR")
    copied = {args.split()[-1].rstrip("/") for args in of(instructions, "COPY")}
    assert "./functions" in copied
    commands = deployment_commands()
    # dispatch consumes the Redis stream: a module of the installed package, not a function.
    assert commands.pop("dispatch") == ["python", "-m", "podscribe.jobs.stream_consumer"]
    consumer = REPO / "src" / "podscribe" / "jobs" / "stream_consumer.py"
    assert 'if __name__ == "__main__":' in consumer.read_text()
    for name, command in commands.items():
        assert command[0] == "functions-framework"
        options = dict(part.removeprefix("--").split("=", 1) for part in command[1:])
        source = Path(options["source"])
        assert not source.is_absolute()  # resolved against WORKDIR
        assert (REPO / source).is_file(), source
        assert f"def {options['target']}(" in (REPO / source).read_text(), name
        assert Path(workdir, source).parts[:2] == ("/", "app")


def test_the_image_installs_the_extras_the_services_import() -> None:
    instructions = functions_image()
    runs = " ".join(of(instructions, "RUN"))
    assert '".[submit,dispatch,kubernetes]"' in runs
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"submit", "dispatch", "kubernetes"} <= set(extras)
    [base] = of(instructions, "FROM")
    assert base.startswith("python:3.11.") and "slim" in base  # /bin/sh for migrate.sh


def test_it_runs_as_the_uid_the_manifests_use_and_writes_nothing_at_run_time() -> None:
    instructions = functions_image()
    users = of(instructions, "USER")
    assert users[-1] == "10001:10001"
    last_user = max(i for i, x in enumerate(instructions) if x.keyword == "USER")
    assert all(x.keyword != "RUN" for x in instructions[last_user:])
    env = env_values(instructions)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == env["TMPDIR"] == TMP  # the pods' /tmp emptyDir
    for name in ("submit", "dispatch", "sweep"):
        for document in yaml.safe_load_all((K3S / f"{name}.yaml").read_text()):
            if document["kind"] == "Deployment":
                context = document["spec"]["template"]["spec"]["securityContext"]
                assert (context["runAsUser"], context["runAsGroup"]) == (10001, 10001)


def test_everything_copied_exists_and_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (K3S / "images" / "functions.Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            body = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
                verdict = not negated
        return verdict

    for arguments in of(functions_image(), "COPY"):
        for source in arguments.split()[:-1]:
            assert (REPO / source).exists(), source
            assert not ignored(source.rstrip("/")), source


def test_the_job_template_mounts_every_volume_of_the_job_image() -> None:
    declared = {
        path
        for arguments in of(parse(JOB_DOCKERFILE.read_text(encoding="utf-8")), "VOLUME")
        for path in json.loads(arguments)
    }
    template = yaml.safe_load(TEMPLATE.read_text().replace("${", "{"))
    pod = template["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    [container] = pod["containers"]
    mounted = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert declared
    assert declared <= set(mounted)
    assert all("emptyDir" in mounted[path] for path in declared)
