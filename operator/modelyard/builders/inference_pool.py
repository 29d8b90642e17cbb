"""The InferencePool of one served name in one namespace (pure; Gateway API Inference Extension).

With ``--inference-pools`` the operator keeps, for every served name that ModelEndpoints of a
namespace run pods for, one ``InferencePool`` (``inference.networking.k8s.io/v1``) there, so a
conformant Gateway (Envoy AI Gateway, kgateway, Istio, GKE) can route to modelyard pods through
an endpoint picker (EPP) that reads their ``vllm:*`` metrics (docs/concepts.md, "Inference
Extension"):

* selector: the runtime pods labelled with the served name (:func:`served_name_label`, set on
  pod templates only while the option is on) — the pods of every endpoint serving it there,
  whatever their weights; the EPP picks among them by load, not by weight;
* targetPorts: the runtime port; appProtocol ``http``;
* endpointPickerRef: the EPP Service named by the settings (the user's Gateway stack deploys
  it; the operator deploys no EPP);
* name: :func:`pool_name`; ownerReferences (not controller) to every endpoint serving it, so
  the garbage collector removes a pool whose endpoints all went while the operator was away.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from modelyard.api import wire
from modelyard.builders import settings

API_VERSION = "inference.networking.k8s.io/v1"
KIND = "InferencePool"

_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_POOL_NAME = re.compile(r"[a-z]([-a-z0-9]{0,50}[a-z0-9])?")


def _digest(served_name: str, length: int) -> str:
    return hashlib.sha256(served_name.encode()).hexdigest()[:length]


def served_name_label(served_name: str) -> str:
    """A served name as a label value: itself when it is one (at most 63 characters of
    ``[-A-Za-z0-9_.]``, alphanumeric at both ends), else its first characters made safe plus
    ``-`` and 10 hex digits of its SHA-256 (``meta-llama/Llama-3-8B`` ->
    ``meta-llama-Llama-3-8B-<10 hex>``): distinct names never share a value."""
    if _LABEL_VALUE.fullmatch(served_name):
        return served_name
    safe = re.sub(r"[^-A-Za-z0-9_.]+", "-", served_name)[:52].strip("-_.")
    digest = _digest(served_name, 10)
    return f"{safe}-{digest}" if safe else digest


def pool_name(served_name: str) -> str:
    """The pool's name: the served name when it is a lowercase DNS label of at most 52
    characters starting with a letter (so ``<pool>-epp`` is a valid Service name too), else its
    first characters lowercased and made safe plus ``-`` and 8 hex digits of its SHA-256
    (``Qwen/Qwen3-4B`` -> ``qwen-qwen3-4b-<8 hex>``)."""
    if _POOL_NAME.fullmatch(served_name):
        return served_name
    safe = re.sub(r"[^a-z0-9]+", "-", served_name.lower())[:40].strip("-")
    if not safe[:1].isalpha():
        safe = ("m-" + safe).strip("-")
    return f"{safe}-{_digest(served_name, 8)}"


def build_pool(
    namespace: str,
    served_name: str,
    endpoints: Sequence[tuple[str, str]],
    cfg: settings.Settings,
    pools: settings.InferencePools,
) -> dict[str, Any]:
    """The InferencePool of ``served_name`` in ``namespace``, owned by ``endpoints``
    ((name, uid) of the ModelEndpoints that run pods for it there)."""
    name = pool_name(served_name)
    label = served_name_label(served_name)
    owners = [
        {"apiVersion": wire.API_VERSION, "kind": "ModelEndpoint", "name": n, "uid": uid}
        for n, uid in sorted(endpoints)
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                wire.MANAGED_BY: wire.PRODUCT,
                wire.PART_OF: wire.PRODUCT,
                wire.SERVED_NAME: label,
            },
            "annotations": {wire.SERVED_NAME: served_name},
            "ownerReferences": owners,
        },
        "spec": {
            "selector": {"matchLabels": {wire.NAME: "modelyard-runtime", wire.SERVED_NAME: label}},
            "targetPorts": [{"number": cfg.runtime_port}],
            "appProtocol": "http",
            "endpointPickerRef": {
                "kind": "Service",
                "name": pools.endpoint_picker.replace("{pool}", name),
                "port": {"number": pools.port},
                "failureMode": pools.failure_mode,
            },
        },
    }


def ours(obj: dict[str, Any] | None, served_name: str) -> bool:
    """Whether a live pool is the one the operator keeps for ``served_name`` (a same-named pool
    of anyone else's is never changed or deleted)."""
    meta = (obj or {}).get("metadata") or {}
    return (meta.get("labels") or {}).get(wire.MANAGED_BY) == wire.PRODUCT and (
        meta.get("annotations") or {}
    ).get(wire.SERVED_NAME) == served_name
