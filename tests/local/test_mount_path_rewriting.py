"""Processes are not in containers: mount paths in args and env are rewritten to the pod's
volume directories, at path boundaries only, and ``$(VAR)`` expands like the kubelet's."""

from __future__ import annotations

from modelyard.local import podenv

MOUNTS = {"/models": "/state/pod/volumes/models", "/models/cache": "/state/pvcs/ns/cache",
          "/dev/termination-log": "/state/pod/containers/main/termination-log"}


def test_mount_prefixes_are_replaced_at_path_boundaries() -> None:
    assert podenv.rewrite("--model=/models/tiny", MOUNTS) == "--model=/state/pod/volumes/models/tiny"
    assert podenv.rewrite("/models", MOUNTS) == "/state/pod/volumes/models"
    assert podenv.rewrite("/models/cache/x", MOUNTS) == "/state/pvcs/ns/cache/x"
    assert podenv.rewrite("echo hi > /dev/termination-log", MOUNTS) == (
        "echo hi > /state/pod/containers/main/termination-log")


def test_paths_that_only_share_a_prefix_are_left_alone() -> None:
    assert podenv.rewrite("/models2/x", MOUNTS) == "/models2/x"
    assert podenv.rewrite("/opt/models/x", MOUNTS) == "/opt/models/x"
    assert podenv.rewrite("https://host/models/x", MOUNTS) == "https://host/models/x"


def test_dependent_variables_expand_and_double_dollar_escapes() -> None:
    env = {"POD_IP": "127.10.0.2", "PORT": "8080"}
    assert podenv.expand("$(POD_IP):$(PORT)", env) == "127.10.0.2:8080"
    assert podenv.expand("$(MISSING) $$(POD_IP)", env) == "$(MISSING) $(POD_IP)"


def test_a_host_directory_put_in_by_one_mount_is_not_rewritten_by_another() -> None:
    """The agent's state under /tmp while the pod mounts /tmp: each path is rewritten once."""
    mounts = {"/tmp": "/tmp/state/pod/volumes/tmp",
              "/var/run/secrets/sa": "/tmp/state/pod/volumes/sa"}
    assert podenv.rewrite("/var/run/secrets/sa/token", mounts) == "/tmp/state/pod/volumes/sa/token"
    assert podenv.rewrite("--dir=/tmp/x --sa=/var/run/secrets/sa", mounts) == (
        "--dir=/tmp/state/pod/volumes/tmp/x --sa=/tmp/state/pod/volumes/sa")
