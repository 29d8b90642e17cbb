"""The security settings every pod the operator builds gets: non-root, read-only root
filesystem, no privilege escalation, no capabilities, the runtime's default seccomp profile."""

from __future__ import annotations

from typing import Any

from modelyard.builders import settings


def container_context(cfg: settings.Settings) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": cfg.run_as_user,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_context(cfg: settings.Settings) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": cfg.run_as_user,
        "fsGroup": cfg.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
