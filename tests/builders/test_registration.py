"""A finished TrainingJob's registration: the entry it builds, the name each mode gives it, the
refusals the platform sets, and the verdict on an entry that holds the name already."""

from __future__ import annotations

from typing import Any

from factories import entry

from modelyard import api
from modelyard.api import wire
from modelyard.builders import registration, settings

UID = "job-uid"


def _job(namespace: str = "ml", **register: Any) -> api.TrainingJob:
    output: dict[str, Any] = {"uri": "pvc://out/run1"}
    if register:
        output["register"] = register
    body = {"model": "llama", "dataset": {"configMap": {"name": "data", "key": "t"}}, "output": output}
    return api.TrainingJob.model_validate(
        {"metadata": {"name": "tune", "namespace": namespace}, "spec": body}
    )


def test_the_entry_is_an_experimental_adapter_over_the_base_marked_with_the_job() -> None:
    base = entry(architecture="LlamaForCausalLM", category="text-llm", runtime={"engine": "transformers"})
    made = registration.registered_entry(
        _job(name="llama-tuned", servedName="tuned"), base, "ml.llama-tuned", job_uid=UID
    )
    assert made["metadata"] == {
        "name": "ml.llama-tuned",
        "labels": {"modelyard.io/trained-by": "ml.tune"},
        "annotations": {"modelyard.io/registered-by": "ml/tune", "modelyard.io/registered-by-uid": UID},
    }
    spec = made["spec"]
    assert spec["adapter"] == {"baseModel": "llama", "uri": "pvc://out/run1"}
    assert spec["servedName"] == "tuned" and spec["lifecycle"] == "experimental"
    assert spec["source"] == base.spec.source.to_wire() and spec["architecture"] == "LlamaForCausalLM"
    assert spec["category"] == "text-llm" and spec["runtime"] == {"engine": "transformers"}
    api.ModelEntry.model_validate(made)  # a valid entry
    unnamed = registration.registered_entry(_job(name="llama-tuned"), base, "ml.llama-tuned", job_uid=UID)
    assert unnamed["spec"]["servedName"] == "ml.llama-tuned"


def test_the_default_mode_prefixes_the_namespace() -> None:
    assert settings.Settings().registration_mode == "prefixed"
    assert registration.entry_name(_job(name="prod-chat"), settings.Settings()) == "ml.prod-chat"
    exact = settings.Settings(registration_mode="exact")
    assert registration.entry_name(_job(name="prod-chat"), exact) == "prod-chat"


def test_prefixed_names_of_two_namespaces_never_meet() -> None:
    # With a dash, team/"a-b" and team-a/"b" would both want "team-a-b".
    cfg = settings.Settings()
    assert registration.entry_name(_job("team", name="a-b"), cfg) != registration.entry_name(
        _job("team-a", name="b"), cfg
    )


def test_mode_off_refuses_naming_the_setting() -> None:
    outcome = registration.entry_name(_job(name="x"), settings.Settings(registration_mode="off"))
    assert isinstance(outcome, tuple) and outcome[:2] == ("Succeeded", "RegistrationRefused")
    assert "--registration-mode=off" in outcome[2] and "operator.registration.mode" in outcome[2]
    assert "pvc://out/run1" in outcome[2]


def test_a_namespace_outside_the_list_is_refused_and_one_inside_is_not() -> None:
    cfg = settings.Settings(registration_namespaces=("research", "ml"))
    assert registration.entry_name(_job("ml", name="x"), cfg) == "ml.x"
    outcome = registration.entry_name(_job("other", name="x"), cfg)
    assert isinstance(outcome, tuple) and outcome[:2] == ("Succeeded", "RegistrationRefused")
    assert "namespace other" in outcome[2] and "research, ml" in outcome[2]


def test_a_prefixed_name_too_long_for_the_api_is_refused() -> None:
    outcome = registration.entry_name(_job("n" * 63, name="m" * 253), settings.Settings())
    assert isinstance(outcome, tuple) and outcome[1] == "RegistrationRefused"
    assert "more than a ModelEntry name may have (253)" in outcome[2]


def _existing(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": annotations or {}}, "spec": {}}


def test_an_entry_made_by_this_job_is_its_registration() -> None:
    mine = _existing("ml.x", {wire.REGISTERED_BY_UID: UID, wire.REGISTERED_BY: "ml/tune"})
    assert registration.verdict(_job(name="x"), mine, job_uid=UID) == registration.registered("ml.x")


def test_an_entry_made_by_anyone_else_is_a_conflict_naming_it() -> None:
    for existing, whose in (
        (_existing("prod-chat"), "not registered by a TrainingJob"),
        (
            _existing(
                "prod-chat", {wire.REGISTERED_BY_UID: "old", wire.REGISTERED_BY: "ml/tune"}
            ),
            "registered by TrainingJob ml/tune",
        ),
    ):
        phase, reason, message = registration.verdict(_job(name="x"), existing, job_uid=UID)
        assert (phase, reason) == ("Succeeded", "RegistrationConflict")
        assert message.startswith("ModelEntry prod-chat already exists") and whose in message
