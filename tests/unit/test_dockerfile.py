"""The job image's Dockerfile, parsed: no Docker engine runs here, so its rules are read.

What is checked: a CUDA 12 runtime base without cuDNN (what CTranslate2 4.7+ loads), the
production model baked at a pinned revision where Terraform's ``whisper_model`` points, the
``[job]`` extra installed from its lock (``requirements/job.txt``, hash-checked) and then the
package without dependencies, a non-root UID 1000 user, writable paths that are volumes
(read-only root filesystem), the GPU defaults, the entry point, and that everything it copies
exists and is not ignored.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from podscribe.settings import Settings, env_name, load_settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "vertex_job" / "Dockerfile"
IGNORE_FILE = REPO / "vertex_job" / "Dockerfile.dockerignore"
LOCK = REPO / "requirements" / "job.txt"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions: comments dropped, ``\\`` continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "a continuation runs off the end of the file"
    return instructions


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                name, sep, value = pair.partition("=")
                assert sep, f"ENV {pair!r}: use the NAME=value form"
                values[name] = value
    return values


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def of(instructions: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in instructions if i.keyword == keyword]


def test_the_base_is_the_cuda_12_runtime_ctranslate2_loads(instructions: list[Instruction]):
    bases = of(instructions, "FROM")
    assert len(bases) == 1
    # CTranslate2 >= 4.7 links cuBLAS 12 only (no cuDNN): the plain runtime flavour.
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-runtime-ubuntu(22|24)\.04", bases[0]), bases[0]
    locked = re.search(r"^ctranslate2==(\d+)\.(\d+)", LOCK.read_text(encoding="utf-8"), re.M)
    assert locked and (int(locked.group(1)), int(locked.group(2))) >= (4, 7), locked


def _args(instructions: list[Instruction]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in of(instructions, "ARG") if "=" in arg)


def test_the_production_model_is_baked_at_a_pinned_revision(instructions: list[Instruction]):
    args = _args(instructions)
    assert re.fullmatch(r"[0-9a-f]{40}", args["MODEL_REVISION"]), "pin a commit, not a branch"
    assert args["MODEL_REPO"] == "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
    download = next(run for run in of(instructions, "RUN") if "snapshot_download" in run)
    assert "revision=revision" in download
    assert '"$MODEL_REPO" "$MODEL_REVISION" "$MODEL_DIR"' in download
    assert 'test -s "$MODEL_DIR/model.bin"' in download  # a failed download fails the build
    # The folder is readable by the job's user and is where Terraform points WHISPER_MODEL.
    assert "chmod -R a+rX" in download
    volumes = [path for args_ in of(instructions, "VOLUME") for path in json.loads(args_)]
    assert not any(args["MODEL_DIR"].startswith(volume) for volume in volumes)
    variables = (REPO / "terraform" / "variables.tf").read_text(encoding="utf-8")
    default = re.search(r'variable "whisper_model" \{.*?default\s*=\s*"([^"]*)"', variables, re.S)
    assert default and default.group(1) == args["MODEL_DIR"]


def test_the_job_extra_is_installed_from_its_lock(instructions: list[Instruction]):
    runs = of(instructions, "RUN")
    pip_installs = [
        shlex.split(command.partition("pip install")[2])
        for run in runs
        for command in run.split("&&")
        if "pip install" in command
    ]
    # The job's dependencies: the locked file, hash-checked, nothing resolved afresh.
    locked = [args for args in pip_installs if "-r" in args]
    assert [args[args.index("-r") + 1] for args in locked] == ["requirements/job.txt"]
    assert all("--require-hashes" in args for args in locked), locked
    # Then the package itself, without dependencies: they all came from the lock.
    package = [args for args in pip_installs if args not in locked]
    assert package == [["--no-deps", "."]], pip_installs
    # The lock is copied in before the install that reads it.
    lock_copy = next(
        index
        for index, x in enumerate(instructions)
        if x.keyword == "COPY" and "requirements/job.txt" in shlex.split(x.arguments)[:-1]
    )
    lock_install = next(
        index
        for index, x in enumerate(instructions)
        if x.keyword == "RUN" and "-r requirements/job.txt" in x.arguments
    )
    assert lock_copy < lock_install
    assert "faster-whisper==" in LOCK.read_text(encoding="utf-8")  # the job extra's lock
    assert not re.search(r"curl[^|]*\|\s*(ba)?sh", " ".join(runs))
    assert all(not re.match(r"https?://", a.split()[0]) for a in of(instructions, "ADD"))


def test_it_runs_as_uid_1000_not_root(instructions: list[Instruction]):
    users = of(instructions, "USER")
    assert users and users[-1].split(":")[0] == "1000"
    last_user = max(i for i, x in enumerate(instructions) if x.keyword == "USER")
    assert all(x.keyword != "RUN" for x in instructions[last_user:])
    runs = " ".join(of(instructions, "RUN"))
    assert "useradd --uid 1000" in runs


def test_gpu_defaults_and_every_variable_is_a_real_setting(instructions: list[Instruction]):
    env = env_values(instructions)
    assert env["WHISPER_DEVICE"] == "cuda"
    assert env["WHISPER_COMPUTE_TYPE"] == "float16"
    known = {env_name(field) for field in Settings.model_fields}
    ours = {name for name in env if name.startswith(("PODSCRIBE_", "WHISPER_"))}
    assert ours <= known, ours - known
    settings = load_settings(
        whisper_device=env["WHISPER_DEVICE"],
        whisper_compute_type=env["WHISPER_COMPUTE_TYPE"],
        work_dir=env["PODSCRIBE_WORK_DIR"],
        whisper_model_cache_dir=env["WHISPER_MODEL_CACHE_DIR"],
    )
    assert (settings.whisper_device, settings.whisper_compute_type) == ("cuda", "float16")


def test_writable_paths_are_volumes_owned_by_the_user(instructions: list[Instruction]):
    env = env_values(instructions)
    volumes = [path for args in of(instructions, "VOLUME") for path in json.loads(args)]
    writable = {
        name: env[name]
        for name in (
            "HOME",
            "TMPDIR",
            "PODSCRIBE_WORK_DIR",
            "WHISPER_MODEL_CACHE_DIR",
            "HF_HOME",
            "XDG_CACHE_HOME",
        )
    }
    runs = " ".join(of(instructions, "RUN"))
    for name, path in writable.items():
        assert any(path == v or path.startswith(v.rstrip("/") + "/") for v in volumes), (
            f"{name}={path} is not on a volume: with a read-only root it could not be written"
        )
        if name != "TMPDIR":  # sticky and world-writable instead
            owner = re.search(r"chown -R 1000:1000 ([^&]+)", runs)
            assert owner and any(path.startswith(p) for p in owner.group(1).split()), name


def test_the_entry_point_is_the_job_module(instructions: list[Instruction]):
    entrypoints = of(instructions, "ENTRYPOINT")
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", "vertex_job"]
    assert "/opt/venv/bin" in env_values(instructions)["PATH"]
    assert (REPO / "vertex_job" / "__main__.py").exists()


def test_what_it_copies_exists_and_is_not_ignored(instructions: list[Instruction]):
    patterns = [
        line.strip()
        for line in IGNORE_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                verdict = not negated
        return verdict

    for arguments in of(instructions, "COPY"):
        *sources, _destination = shlex.split(arguments)
        for source in sources:
            assert not source.startswith("--"), "no --from stages expected"
            assert (REPO / source).exists(), source
            assert not ignored(source), f"{source} is copied but ignored"
    assert ignored(".venv") and ignored(".git") and ignored("tests")
