"""The images carry the product only: the local control plane, its node agent and the quickstart
(``modelyard.local``, ``modelyard.quickstart``) never reach an image's build context, and the
package as an image installs it still runs every command the chart and the operator's pods use,
while ``modelyard local`` and ``modelyard quickstart`` say clearly that they are not there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import images

PRODUCT = ("api", "registry", "builders", "controllers", "statusapi", "gateway", "runtime", "trainer")


def _copied_package(image: str) -> list[str]:
    """The files of ``operator/`` each image's Dockerfile COPYs, as they reach the build context."""
    sources = [
        source
        for stage in images.stages(images.IMAGES[image])
        for command in stage.commands
        if command.cmd == "COPY" and not any(f.startswith("--from") for f in command.flags)
        for source in command.value[:-1]
        if source.rstrip("/") == "operator"
    ]
    assert sources, f"{image}: the package is not copied from operator/"
    return [file for source in sources for file in images.context_files(source)]


@pytest.mark.parametrize("image", images.IMAGES)
def test_trial_packages_never_reach_an_image(image: str) -> None:
    files = _copied_package(image)
    trial = [f for f in files if f.startswith(images.TRIAL_ONLY)]
    assert not trial, f"{image}: {trial[:3]} would be installed"
    for package in PRODUCT:
        assert f"operator/modelyard/{package}/__init__.py" in files, f"{image}: {package} is missing"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as the images get it: the context's files of ``operator/``."""
    root = tmp_path_factory.mktemp("image")
    for relative in _copied_package("modelyard"):
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(images.ROOT / relative, target)
    return root / "operator"


def _modelyard(installed: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_the_product_commands_run_without_the_trial_packages(installed: Path) -> None:
    for command in ("operator", "gateway", "runtime", "train", "crds", "registry"):
        done = _modelyard(installed, command, "--help")
        assert done.returncode == 0, f"modelyard {command} --help: {done.stderr}"
    probe = subprocess.run(
        [sys.executable, "-c", "import modelyard; print(modelyard.__file__)"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(installed)},
    )  # fmt: skip
    assert probe.stdout.strip().startswith(str(installed)), "the copy must be what runs"


@pytest.mark.parametrize(
    "args", [("local", "up"), ("local", "--help"), ("quickstart",), ("quickstart", "--name", "x")]
)
def test_trial_commands_explain_they_are_not_installed(installed: Path, args: tuple[str, ...]) -> None:
    done = _modelyard(installed, *args)
    assert done.returncode == 2
    assert f"modelyard {args[0]}: not available in this installation" in done.stderr
    assert f"modelyard.{args[0]} is not installed" in done.stderr
    assert "Traceback" not in done.stderr
