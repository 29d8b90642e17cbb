"""The images cannot be built here (no registry, no GPU), so their Dockerfiles are checked for
what a build and a cluster rely on: they parse; every base image is pinned; every pip install
is pinned (a fully pinned constraints file covering the package's requirements); the final
stage runs as a numeric non-root user; the entrypoint is the package's console script and the
command one of its subcommands, the one the operator puts in its pods; the model cache is a
volume where the operator mounts it; and every file they COPY reaches the build context."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelyard.builders import settings

from . import images

PROJECT = tomllib.loads((images.ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = {"modelyard": ["operator", "gateway"], "runtime": ["runtime", "train"]}
ENGINE_SET = ("torch", "transformers", "vllm", "peft")


def _subcommands() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("commands:")[1]
    return set(re.findall(r"^ {4}(\w[\w-]*)", listed, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def subcommands() -> set[str]:
    return _subcommands()


@pytest.mark.parametrize("image", images.IMAGES)
def test_base_images_are_pinned(image: str) -> None:
    stages = images.stages(images.IMAGES[image])
    assert stages, "no FROM"
    names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.base in names:
            continue
        reference = stage.base.split("@")[0]
        tag = reference.rsplit(":", 1)[1] if ":" in reference.split("/")[-1] else None
        assert "@sha256:" in stage.base or (tag and tag != "latest" and re.search(r"\d+\.\d+", tag)), (
            f"{image}: base image {stage.base} is not pinned to a version"
        )


@pytest.mark.parametrize("image", images.IMAGES)
def test_every_pip_install_is_pinned(image: str) -> None:
    stages = images.stages(images.IMAGES[image])
    copied = {}  # path in the image -> path in the repository
    for stage in stages:
        for *sources, target in stage.values("COPY"):
            for source in sources:
                copied[target + Path(source).name if target.endswith("/") else target] = source
    installs = [args for s in stages for (run,) in s.values("RUN") for args in images.pip_installs(run)]
    assert installs, f"{image}: no pip install"
    for args in installs:
        files = [
            args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--constraint", "-r", "--requirement")
        ]
        constraints = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--constraint")]
        for file in files:
            assert file in copied, f"{image}: {file} is not COPY'd from the repository"
            images.pinned_lines(images.ROOT / copied[file])  # every line name==version
        positional = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in (
            "-c", "--constraint", "-r", "--requirement")]  # fmt: skip
        for arg in positional:
            if arg.startswith(("/", ".")):
                assert constraints, f"{image}: the package {arg} is installed without a constraints file"
            else:
                assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][\w.+!-]*", arg), f"{image}: unpinned {arg}"


@pytest.mark.parametrize("image", images.IMAGES)
def test_constraints_cover_what_the_package_needs(image: str) -> None:
    pins = images.pinned_lines(images.ROOT / "images" / image / "constraints.txt")
    wanted = [Requirement(r) for r in PROJECT["dependencies"]]
    wanted += [Requirement(r) for extra in EXTRAS[image] for r in PROJECT["optional-dependencies"][extra]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{image}: {name} is not pinned"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{image}: {name}=={pins[name]} does not satisfy the package's {requirement}"
        )


def test_runtime_engine_set_is_pinned_and_agrees_with_the_constraints() -> None:
    engine = images.pinned_lines(images.ROOT / "images" / "runtime" / "requirements.txt")
    pins = images.pinned_lines(images.ROOT / "images" / "runtime" / "constraints.txt")
    for name in ENGINE_SET:
        assert name in engine, f"{name} missing from images/runtime/requirements.txt"
    for name, version in engine.items():
        assert pins.get(name) == version, f"{name}: requirements {version}, constraints {pins.get(name)}"


@pytest.mark.parametrize("image", images.IMAGES)
def test_final_stage_runs_as_a_numeric_non_root_user(image: str) -> None:
    final = images.stages(images.IMAGES[image])[-1]
    users = final.values("USER")
    assert users, f"{image}: the final stage sets no USER (it would run as root)"
    uid, _, gid = users[-1][0].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"{image}: USER {users[-1][0]}"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"{image}: USER {users[-1][0]}"


@pytest.mark.parametrize("image", images.IMAGES)
def test_entrypoint_is_the_package_console_script_and_cmd_a_subcommand(
    image: str, subcommands: set[str]
) -> None:
    final = images.stages(images.IMAGES[image])[-1]
    entrypoints = [c for c in final.commands if c.cmd == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].json, f"{image}: ENTRYPOINT must be exec form"
    entry = list(entrypoints[-1].value)
    assert entry[0] in PROJECT["scripts"], f"{image}: {entry[0]} is not a [project.scripts] entry"
    command = entry[1:] + list(final.values("CMD")[-1] if final.values("CMD") else ())
    assert command and command[0] in subcommands, f"{image}: {command} names no modelyard subcommand"
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", command[0], "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_runtime_image_matches_what_the_operator_puts_in_its_pods(subcommands: set[str]) -> None:
    cfg = settings.Settings()
    final = images.stages(images.IMAGES["runtime"])[-1]
    entry = final.values("ENTRYPOINT")[-1]
    for command in (cfg.runtime_command, cfg.train_command):
        assert command[0] == entry[0] and command[1] in subcommands
    assert final.values("USER")[-1][0].split(":")[0] == str(cfg.run_as_user)
    volumes = [v for value in final.values("VOLUME") for v in value]
    assert cfg.cache_dir in volumes
    assert final.env()["HF_HOME"] == f"{cfg.cache_dir}/huggingface"  # what the pods' env says too


def test_operator_image_serves_operator_and_gateway(subcommands: set[str]) -> None:
    final = images.stages(images.IMAGES["modelyard"])[-1]
    assert final.values("ENTRYPOINT")[-1] == ("modelyard",)
    assert {"operator", "gateway"} <= subcommands
    build = "\n".join(run for s in images.stages(images.IMAGES["modelyard"]) for (run,) in s.values("RUN"))
    assert "[operator,gateway]" in build


@pytest.mark.parametrize("image", images.IMAGES)
def test_copied_files_exist_and_reach_the_build_context(image: str) -> None:
    for stage in images.stages(images.IMAGES[image]):
        for command in stage.commands:
            if command.cmd != "COPY" or any(f.startswith("--from") for f in command.flags):
                continue
            for source in command.value[:-1]:
                path = images.ROOT / source
                assert path.exists(), f"{image}: COPY {source}: no such file in the repository"
                files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
                for file in files:
                    relative = file.relative_to(images.ROOT).as_posix()
                    if images._leftover(relative) or relative.startswith(images.TRIAL_ONLY):
                        continue
                    assert images.in_context(relative), f"{image}: .dockerignore excludes {relative}"


def test_dockerignore_keeps_everything_else_out() -> None:
    for path in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "docs/api.md", "charts/x",
                 "operator/modelyard/__pycache__/cli.cpython-311.pyc"):  # fmt: skip
        assert not images.in_context(path), path
