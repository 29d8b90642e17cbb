"""A tenant's TrainingJob may create a ModelEntry, never change one: with the default registration
mode the entry's name is prefixed with the tenant's namespace, so a catalog name cannot be
picked; a name another entry holds ends the registration (``RegistrationConflict``) and that
entry stays byte-identical.

mallory's two jobs train at the same time (two steps of the tiny Llama each) in a module
fixture; the tests read what they came to.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from regkit import (
    entry_path,
    fingerprint,
    finished,
    output_root,
    put_dataset,
    settled_entry,
    trainable_entry,
    training_job,
)


def _prod_entry(name: str, model: pathlib.Path) -> dict[str, Any]:
    """A production entry of the platform's (no adapter)."""
    entry = trainable_entry(name, model)
    entry["spec"]["description"] = "production chat model"
    entry["spec"]["lifecycle"] = "stable"
    return entry


@pytest.fixture(scope="module")
def trained(operator: Any, tenants: Any, tiny_llama: pathlib.Path) -> Iterator[dict[str, Any]]:
    """The platform admin's base and production entries, one squatted prefixed name, and
    mallory's two finished jobs: ``takeover`` registers the production entry's name, ``squat`` the
    name the admin took first."""
    cluster = tenants.mallory.cluster
    tag = uuid.uuid4().hex[:6]
    base, prod, squat = f"base-{tag}", f"prod-chat-{tag}", f"squat-{tag}"
    taken = f"{tenants.b}.{squat}"  # what mallory's squat job would register
    for entry in (
        trainable_entry(base, tiny_llama),
        _prod_entry(prod, tiny_llama),
        _prod_entry(taken, tiny_llama),
    ):
        done = tenants.admin.apply(entry)
        assert done.returncode == 0, done.stderr
    before = {name: fingerprint(settled_entry(cluster, name)) for name in (prod, taken)}
    put_dataset(cluster, tenants.b)
    with output_root() as out:
        warnings = {}
        for job, register in (("takeover", prod), ("squat", squat)):
            done = tenants.mallory.apply(training_job(job, base, out / job, register))
            assert done.returncode == 0, done.stderr
            warnings[job] = done.stderr
        statuses = {job: finished(tenants.mallory, job) for job in ("takeover", "squat")}
        yield {"prod": prod, "taken": taken, "before": before, "statuses": statuses, "warnings": warnings}
    cluster.kubectl("delete", "modelentry", base, prod, taken, f"{tenants.b}.{prod}", "--ignore-not-found")


def test_a_job_named_like_a_catalog_entry_registers_under_its_namespace(trained: Any, tenants: Any) -> None:
    status = trained["statuses"]["takeover"]
    prefixed = f"{tenants.b}.{trained['prod']}"
    assert (status["phase"], status["reason"]) == ("Succeeded", "Completed"), status
    assert status["registeredModel"] == prefixed
    registered = tenants.admin.cluster.kube.get(entry_path(prefixed))
    annotations = registered["metadata"]["annotations"]
    assert annotations["modelyard.io/registered-by"] == f"{tenants.b}/takeover"
    assert annotations["modelyard.io/registered-by-uid"]
    assert registered["spec"]["adapter"]["baseModel"].startswith("base-")
    assert f"the registered ModelEntry will be {prefixed}" in trained["warnings"]["takeover"]


def test_the_production_entry_of_that_name_is_untouched(trained: Any, tenants: Any) -> None:
    prod = trained["prod"]
    after = fingerprint(tenants.admin.cluster.kube.get(entry_path(prod)))
    assert after == trained["before"][prod]
    assert "adapter" not in (after["spec"] or {})


def test_a_name_held_by_an_entry_the_job_did_not_create_is_a_conflict(trained: Any, tenants: Any) -> None:
    status = trained["statuses"]["squat"]
    taken = trained["taken"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "RegistrationConflict"), status
    assert status["message"].startswith(f"ModelEntry {taken} already exists"), status["message"]
    assert "registeredModel" not in status
    after = fingerprint(tenants.admin.cluster.kube.get(entry_path(taken)))
    assert after == trained["before"][taken], json.dumps([after, trained["before"][taken]], indent=1)
    assert f"ModelEntry {taken} exists" in trained["warnings"]["squat"]
