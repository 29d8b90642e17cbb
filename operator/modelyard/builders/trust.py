"""Who may choose what runs: the images of runtime and trainer pods and the engine arguments
that change what code a pod trusts.

Two rules, each used twice (the admission webhook denies, the reconcilers refuse to build):

``image``
    ``spec.image`` of a ModelEndpoint or TrainingJob must match one of the operator setting
    ``allowedImagePrefixes`` (``--allowed-image-prefix``, chart ``operator.allowedImagePrefixes``).
    A prefix matches the image itself or anything after a ``/``, ``:`` or ``@`` boundary, so
    ``ghcr.io/acme/runtime`` allows its tags and digests but not ``ghcr.io/acme/runtime-evil``;
    ``*`` allows any image. No prefixes set: only the configured runtime image.
``engineArgs``
    The engine arguments in :data:`TRUST_ARGS` make the engine run code that is not in the image
    (the model repository's Python, plugin files, classes by import path) or read files of the
    pod: an endpoint may pass them only when its ModelEntry says
    ``spec.runtime.allowTrustRemoteCode: true`` (the platform team owns entries).

One more check of what the platform granted, for the status only (:func:`upstream_key_problem`):
an upstream entry's ``apiKeySecretRef`` must name a Secret the gateway was granted
(``gateway.upstreamKeySecrets``); the gateway leaves such an endpoint out of routing, and the
endpoint's status says why.
"""

from __future__ import annotations

from typing import Any

from modelyard import api
from modelyard.builders import runtime_args, settings

SETTING = "allowedImagePrefixes"
"""The setting's name, as denials and status messages name it."""
SETTING_HELP = "operator setting allowedImagePrefixes (chart value operator.allowedImagePrefixes)"
ENTRY_FIELD = "spec.runtime.allowTrustRemoteCode"
ANY_IMAGE = "*"

TRUST_ARGS = (
    "trust-remote-code",  # runs the model repository's Python (modeling_*.py, tokenizers)
    "tool-parser-plugin",  # imports a Python file as a tool parser
    "reasoning-parser-plugin",  # the same for reasoning parsers
    "logits-processors",  # imports classes by qualified name
    "worker-cls",  # imports the engine worker class by qualified name
    "worker-extension-cls",  # imports a worker mixin by qualified name
    "middleware",  # imports ASGI middleware by qualified name
    "allowed-local-media-path",  # lets requests read files of the pod
    "code-revision",  # picks which revision of the remote code runs
)
"""Engine arguments (kebab-case, as ``runtime_args.kebab`` makes them) that change trust."""

_BOUNDARY = ("/", ":", "@")


def allowed_prefixes(cfg: settings.Settings) -> tuple[str, ...]:
    """The prefixes in force: the setting, or only the runtime image when it is empty."""
    return cfg.allowed_image_prefixes or (cfg.runtime_image,)


def image_allowed(image: str, prefixes: tuple[str, ...]) -> bool:
    for prefix in prefixes:
        if prefix == ANY_IMAGE or image == prefix:
            return True
        if image.startswith(prefix) and (prefix.endswith(_BOUNDARY) or image[len(prefix)] in _BOUNDARY):
            return True
    return False


def image_problem(image: str | None, cfg: settings.Settings) -> str | None:
    """Why ``spec.image`` may not be used (None: it may, or none was given)."""
    if not image:
        return None
    prefixes = allowed_prefixes(cfg)
    if image_allowed(image, prefixes):
        return None
    allowed = ", ".join(prefixes)
    return f"spec.image: {image!r} is not allowed by the {SETTING_HELP}; allowed: {allowed}"


def engine_args_problem(engine_args: dict[str, Any] | None, entry: api.ModelEntry | None) -> str | None:
    """Why the endpoint's trust-changing engine arguments may not be used (None: they may).

    A value of ``false``, ``None`` or ``""`` changes nothing and is always allowed. Without the
    entry (not applied yet) nothing is allowed: the entry decides.
    """
    asked = sorted(
        key
        for key, value in (engine_args or {}).items()
        if runtime_args.kebab(key) in TRUST_ARGS and value not in (False, None, "", "false", "False")
    )
    if not asked:
        return None
    runtime = entry.spec.runtime if entry is not None else None
    if runtime is not None and runtime.allow_trust_remote_code:
        return None
    whose = f"ModelEntry {entry.name!r}" if entry is not None else "the ModelEntry"
    return (
        f"spec.engineArgs: {', '.join(asked)} change what code the engine trusts; "
        f"{whose} does not allow them ({ENTRY_FIELD} is not true)"
    )


GRANTS_HELP = "chart value gateway.upstreamKeySecrets"


def upstream_key_problem(
    entry: api.ModelEntry, namespace: str, config: settings.Settings
) -> str | None:
    """Why the gateway cannot read the upstream key of ``entry`` for an endpoint in
    ``namespace``, or None (no key, granted, or the grants are not known to the operator)."""
    upstream = entry.spec.upstream
    ref = upstream.api_key_secret_ref if upstream is not None else None
    if ref is None or config.gateway_secret_grants is None:
        return None
    where = f"{ref.namespace or namespace}/{ref.name}"
    if where in config.gateway_secret_grants:
        return None
    return (
        f"the gateway may not read Secret {where} (spec.upstream.apiKeySecretRef of ModelEntry "
        f"{entry.name}), so it does not route this endpoint; grant it in the {GRANTS_HELP}"
    )
