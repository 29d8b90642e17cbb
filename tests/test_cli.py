"""The ``modelyard`` command lists its subcommands and works without the optional extras."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_every_command_group() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "modelyard", "--help"], capture_output=True, text=True, check=True
    )
    for group in ("crds", "registry", "local"):
        assert f"    {group}" in out.stdout


def test_group_without_subcommand_prints_its_help_and_exits_2() -> None:
    result = subprocess.run([sys.executable, "-m", "modelyard", "registry"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "estimate" in result.stderr


def test_stdlib_operator_is_not_shadowed() -> None:
    import operator

    assert operator.__file__ is not None and "site-packages" not in operator.__file__
    assert hasattr(operator, "itemgetter")
