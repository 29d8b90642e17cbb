"""The tenants the security tests speak as have only a tenant's rights: the premise of every
other test in this directory."""

from __future__ import annotations

from typing import Any


def test_namespace_users_reach_only_their_own_namespace(tenants: Any) -> None:
    assert tenants.alice.can_i("create", "modelendpoints.modelyard.io", tenants.a)
    assert not tenants.alice.can_i("create", "modelendpoints.modelyard.io", tenants.b)
    assert tenants.mallory.can_i("create", "trainingjobs.modelyard.io", tenants.b)
    assert not tenants.mallory.can_i("get", "modelendpoints.modelyard.io", tenants.a)


def test_only_the_platform_admin_writes_the_catalog(tenants: Any) -> None:
    assert not tenants.mallory.can_i("create", "modelentries.modelyard.io")
    assert not tenants.mallory.can_i("patch", "modelentries.modelyard.io")
    assert tenants.admin.can_i("create", "modelentries.modelyard.io")
    assert not tenants.admin.can_i("get", "secrets", "kube-system")
