"""The platform decides what TrainingJobs may register (operator flags, chart values
``operator.registration.*``): in ``exact`` mode a tenant names the entry itself but still never
overwrites one, a namespace outside ``--registration-namespaces`` registers nothing, and ``off``
refuses every registration; each says why in the job's status.

Each test runs an operator of its own with those flags (the module's tenants are fresh), and
jobs that train two steps of the tiny Llama.
"""

from __future__ import annotations

import pathlib
import uuid
from typing import Any

from regkit import (
    entry_path,
    fingerprint,
    finished,
    operator_with,
    output_root,
    put_dataset,
    settled_entry,
    trainable_entry,
    training_job,
)


def test_exact_mode_never_overwrites_and_only_listed_namespaces_register(
    tenants: Any, tiny_llama: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    cluster = tenants.alice.cluster
    tag = uuid.uuid4().hex[:6]
    base, prod, fresh = f"base-{tag}", f"prod-{tag}", f"fresh-{tag}"
    for entry in (trainable_entry(base, tiny_llama), trainable_entry(prod, tiny_llama)):
        assert tenants.admin.apply(entry).returncode == 0
    for ns in (tenants.a, tenants.b):
        put_dataset(cluster, ns)
    flags = ("--registration-mode=exact", f"--registration-namespaces={tenants.a}")
    with operator_with(cluster, tmp_path / "operator.log", *flags), output_root() as out:
        before = fingerprint(settled_entry(cluster, prod))
        jobs = (
            (tenants.alice, "takeover", prod),  # exact mode: the production entry's own name
            (tenants.alice, "fresh", fresh),
            (tenants.mallory, "outside", f"mallory-{tag}"),  # not a listed namespace
        )
        for user, job, register in jobs:
            done = user.apply(training_job(job, base, out / job, register))
            assert done.returncode == 0, done.stderr
        takeover, created, outside = (finished(user, job) for user, job, _ in jobs)
    try:
        assert (takeover["phase"], takeover["reason"]) == ("Succeeded", "RegistrationConflict"), takeover
        assert takeover["message"].startswith(f"ModelEntry {prod} already exists (not registered by a")
        assert fingerprint(cluster.kube.get(entry_path(prod))) == before

        assert (created["reason"], created.get("registeredModel")) == ("Completed", fresh), created

        assert (outside["phase"], outside["reason"]) == ("Succeeded", "RegistrationRefused"), outside
        assert f"namespace {tenants.b} may not register" in outside["message"]
        assert "operator.registration.namespaces" in outside["message"]
        assert cluster.kube.get(entry_path(f"mallory-{tag}")) is None
    finally:
        cluster.kubectl("delete", "modelentry", base, prod, fresh, "--ignore-not-found")


def test_mode_off_refuses_registration_naming_the_setting(
    tenants: Any, tiny_llama: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    cluster = tenants.alice.cluster
    tag = uuid.uuid4().hex[:6]
    base = f"off-base-{tag}"
    assert tenants.admin.apply(trainable_entry(base, tiny_llama)).returncode == 0
    put_dataset(cluster, tenants.a)
    with operator_with(cluster, tmp_path / "operator.log", "--registration-mode=off"), output_root() as out:
        done = tenants.alice.apply(training_job("off", base, out / "off", f"wanted-{tag}"))
        assert done.returncode == 0, done.stderr
        status = finished(tenants.alice, "off")
    try:
        assert "this job will register nothing: registration is off" in done.stderr
        assert (status["phase"], status["reason"]) == ("Succeeded", "RegistrationRefused"), status
        assert (
            "--registration-mode=off" in status["message"]
            and "operator.registration.mode" in status["message"]
        )
        for name in (f"wanted-{tag}", f"{tenants.a}.wanted-{tag}"):
            assert cluster.kube.get(entry_path(name)) is None
    finally:
        cluster.kubectl("delete", "modelentry", base, "--ignore-not-found")
