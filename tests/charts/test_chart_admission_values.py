"""The chart's admission and image values: the webhook's failurePolicy and certificates (the
operator's own CA in a Secret, or cert-manager), image digests, allowedImagePrefixes."""

from __future__ import annotations

from typing import Any

import chartkit

DIGEST = "sha256:" + "ab" * 32


def _operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = chartkit.find(docs, "Deployment", "modelyard-operator")["spec"]["template"]["spec"]
    container: dict[str, Any] = spec["containers"][0]
    return container


def _role_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = chartkit.find(docs, "Role", "modelyard-operator")["rules"]
    return rules


def test_by_default_the_webhook_fails_closed_and_the_operator_keeps_its_ca_in_one_secret() -> None:
    docs = chartkit.documents(chartkit.template())
    args = _operator_container(docs)["args"]
    assert "--webhook-failure-policy=Fail" in args
    assert "--webhook-ca-secret=modelyard-webhook-ca" in args
    assert "--webhook-cert-validity=604800" in args
    assert not any(a.startswith("--webhook-cert-dir") for a in args)
    secret_rules = [r for r in _role_rules(docs) if "secrets" in r["resources"]]
    named = [r for r in secret_rules if r.get("resourceNames")]
    assert named == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["modelyard-webhook-ca"],
                      "verbs": ["get", "patch"]}]  # fmt: skip
    assert all(set(r["verbs"]) <= {"create"} for r in secret_rules if not r.get("resourceNames"))
    assert not [d for d in docs if d["apiVersion"].startswith("cert-manager.io/")]
    config = chartkit.find(docs, "ValidatingWebhookConfiguration", "modelyard-webhook")
    assert "webhooks" not in config and not (config["metadata"].get("annotations") or {})


def test_failure_policy_ignore_is_an_explicit_value() -> None:
    docs = chartkit.documents(chartkit.template("--set", "operator.webhook.failurePolicy=Ignore"))
    assert "--webhook-failure-policy=Ignore" in _operator_container(docs)["args"]
    bad = chartkit.helm("template", "x", str(chartkit.CHART), "--set", "operator.webhook.failurePolicy=Maybe")
    assert bad.returncode != 0 and "failurePolicy" in bad.stderr


def test_with_cert_manager_the_chart_renders_the_certificate_and_the_ca_injection() -> None:
    docs = chartkit.documents(chartkit.template("--set", "operator.webhook.certManager.enabled=true"))
    container = _operator_container(docs)
    assert "--webhook-cert-dir=/etc/modelyard/webhook-tls" in container["args"]
    own_ca = ("--webhook-ca-secret", "--webhook-cert-validity")
    assert not any(a.startswith(own_ca) for a in container["args"])
    mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-tls")
    assert mount == {"name": "webhook-tls", "mountPath": "/etc/modelyard/webhook-tls", "readOnly": True}
    serving = chartkit.find(docs, "Certificate", "modelyard-webhook")["spec"]
    assert serving["secretName"] == "modelyard-webhook-tls"
    assert "modelyard-webhook.modelyard-system.svc" in serving["dnsNames"]
    assert serving["issuerRef"] == {"kind": "Issuer", "name": "modelyard-webhook-ca"}
    ca = chartkit.find(docs, "Certificate", "modelyard-webhook-ca")["spec"]
    assert ca["isCA"] is True and ca["issuerRef"]["name"] == "modelyard-webhook-selfsigned"
    assert chartkit.find(docs, "Issuer", "modelyard-webhook-ca")["spec"] == {
        "ca": {"secretName": "modelyard-webhook-ca"}
    }
    config = chartkit.find(docs, "ValidatingWebhookConfiguration", "modelyard-webhook")
    assert config["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "modelyard-system/modelyard-webhook"
    }
    assert not [r for r in _role_rules(docs) if "secrets" in r["resources"]]  # no CA to manage


def test_cert_manager_with_an_existing_issuer_renders_no_issuers_of_its_own() -> None:
    docs = chartkit.documents(chartkit.template(
        "--set", "operator.webhook.certManager.enabled=true",
        "--set", "operator.webhook.certManager.issuerRef.kind=ClusterIssuer",
        "--set", "operator.webhook.certManager.issuerRef.name=platform-ca",
    ))  # fmt: skip
    cert_manager = [d for d in docs if d["apiVersion"].startswith("cert-manager.io/")]
    rendered = [(d["kind"], d["metadata"]["name"]) for d in cert_manager]
    assert rendered == [("Certificate", "modelyard-webhook")]
    assert cert_manager[0]["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "platform-ca"}


def test_images_are_referenced_by_digest_when_one_is_given() -> None:
    docs = chartkit.documents(chartkit.template(
        "--set", f"image.digest={DIGEST}", "--set", f"runtimeImage.digest={DIGEST}",
    ))  # fmt: skip
    container = _operator_container(docs)
    assert container["image"] == f"ghcr.io/modelyard/modelyard@{DIGEST}"
    gateway = chartkit.find(docs, "Deployment", "modelyard-gateway")["spec"]["template"]["spec"]
    assert gateway["containers"][0]["image"] == f"ghcr.io/modelyard/modelyard@{DIGEST}"
    assert f"--runtime-image=ghcr.io/modelyard/runtime@{DIGEST}" in container["args"]
    bad = chartkit.helm("template", "x", str(chartkit.CHART), "--set", "image.digest=latest")
    assert bad.returncode != 0 and "digest" in bad.stderr


def test_allowed_image_prefixes_become_operator_flags_and_default_to_none() -> None:
    default = _operator_container(chartkit.documents(chartkit.template()))["args"]
    assert not any(a.startswith("--allowed-image-prefix") for a in default)
    docs = chartkit.documents(chartkit.template("--set", "operator.allowedImagePrefixes={ghcr.io/acme/,*}"))
    args = _operator_container(docs)["args"]
    assert [a for a in args if a.startswith("--allowed-image-prefix")] == [
        "--allowed-image-prefix=ghcr.io/acme/", "--allowed-image-prefix=*",
    ]  # fmt: skip
