"""Fixtures for the multi-tenant security tests: two tenant namespaces and a platform admin.

Every security test acts through **real RBAC**: ``kubectl --as=<user>`` (and the API's
``Impersonate-User`` header) with only the rights a tenant of the platform would have. The
session cluster's admin creates the namespaces, the Roles and the bindings; the tests then
speak as:

- ``alice``: a namespace user of ``Tenants.a`` (edit rights on ModelEndpoints and TrainingJobs
  there, read on pods, services, events);
- ``mallory``: the same rights, in ``Tenants.b`` only;
- ``platform-admin``: creates and edits ModelEntries (the cluster-scoped catalog) and may read
  every namespace's modelyard objects.

The operator fixtures live in ``tests/controllers/conftest.py``; they are loaded here under a
module name of their own (as ``tests/fuzz`` does), so this directory gets the same module-scoped
``operator``.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import kit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

_fixtures = kit.load("controllers/conftest.py", "modelyard_security_operator_fixtures")

Operator = _fixtures.Operator
operator = _fixtures.operator
operator_ready_cluster = _fixtures.operator_ready_cluster

TENANT_RULES = [
    {"apiGroups": ["modelyard.io"], "resources": ["modelendpoints", "trainingjobs"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["modelyard.io"], "resources": ["modelendpoints/status", "trainingjobs/status"],
     "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "events"],
     "verbs": ["get", "list", "watch"]},
]  # fmt: skip

PLATFORM_ADMIN_RULES = [
    {"apiGroups": ["modelyard.io"], "resources": ["modelentries", "modelentries/status"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["modelyard.io"], "resources": ["modelendpoints", "trainingjobs"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]  # fmt: skip


@dataclass(frozen=True)
class User:
    """Someone who talks to the API server with only the rights RBAC gives them."""

    name: str
    namespace: str | None
    cluster: Any

    def kubectl(self, *args: str, input: str | None = None, check: bool = False) -> (
        subprocess.CompletedProcess[str]
    ):
        """``kubectl --as=<name> [-n <namespace>] ...``; not checked by default, so a test can
        assert on a denial's text."""
        scope = ["-n", self.namespace] if self.namespace else []
        return self.cluster.kubectl(f"--as={self.name}", *scope, *args, input=input, check=check)

    def apply(self, manifest: str | dict[str, Any]) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.kubectl("apply", "-f", "-", input=text)

    def can_i(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        scope = ["-n", namespace] if namespace else []
        done = self.cluster.kubectl(f"--as={self.name}", "auth", "can-i", verb, resource, *scope,
                                    check=False)
        return done.stdout.strip() == "yes"

    def headers(self) -> dict[str, str]:
        """For raw API calls: the admin's client impersonating this user."""
        return {"Impersonate-User": self.name}


@dataclass(frozen=True)
class Tenants:
    """Two tenant namespaces with one user each, and a platform admin."""

    a: str
    b: str
    alice: User
    mallory: User
    admin: User


def _apply_admin(cluster: Any, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


@pytest.fixture(scope="module")
def tenants(operator_ready_cluster: Any) -> Iterator[Tenants]:
    """Fresh tenant namespaces ``sec-a-<id>`` and ``sec-b-<id>`` with users bound by RBAC;
    deleted (with everything in them) after the module."""
    cluster = operator_ready_cluster
    tag = uuid.uuid4().hex[:6]
    a, b = f"sec-a-{tag}", f"sec-b-{tag}"
    alice, mallory, admin = f"alice-{tag}", f"mallory-{tag}", f"platform-admin-{tag}"
    for ns, user in ((a, alice), (b, mallory)):
        _apply_admin(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        _apply_admin(cluster, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "modelyard-tenant", "namespace": ns}, "rules": TENANT_RULES,
        })  # fmt: skip
        _apply_admin(cluster, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "modelyard-tenant", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "modelyard-tenant"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        })  # fmt: skip
    _apply_admin(cluster, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": admin}, "rules": PLATFORM_ADMIN_RULES,
    })  # fmt: skip
    _apply_admin(cluster, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": admin},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": admin},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": admin}],
    })  # fmt: skip
    yield Tenants(a, b, User(alice, a, cluster), User(mallory, b, cluster), User(admin, None, cluster))
    for ns in (a, b):
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    cluster.kubectl("delete", "clusterrolebinding,clusterrole", admin, check=False)
