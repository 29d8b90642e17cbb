"""What a pod's process sees: its environment, its volumes, and rewritten mount paths.

The node agent runs containers as plain local processes, so nothing is mounted at a
container's ``mountPath``. Instead each volume becomes a directory under the pod's own
directory and every string the process receives (command, args, env values, workingDir)
has mount-path prefixes replaced by that directory: ``--model=/models/tiny`` with a volume
mounted at ``/models`` becomes ``--model=<pod dir>/volumes/models/tiny``. Each volume is
also exported as ``MODELYARD_VOLUME_<NAME>`` (upper case, ``-`` -> ``_``). Kept apart from
the process supervision in :mod:`modelyard.local.podrunner` so both stay readable.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
# (kind, namespace, name) -> object dict or None when missing; kind is configmaps|secrets
Reader = Callable[[str, str, str], Obj | None]
TokenMinter = Callable[[str, str, int], str]

# Inherited from the agent so that `python`, `modelyard` and model caches resolve locally.
INHERITED_ENV = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
    "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "SSL_CERT_FILE", "TZ",
)
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(Exception):
    """A referenced ConfigMap/Secret/key is missing (kubelet: CreateContainerConfigError)."""


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: unknown references stay, ``$$`` escapes."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(sub, value)


def _data(obj: Obj, kind: str) -> dict[str, str]:
    out = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    if kind == "secrets":
        out = {k: base64.b64decode(v).decode(errors="replace") for k, v in out.items()}
        out.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    else:
        binary = obj.get("binaryData") or {}
        out.update({k: base64.b64decode(v).decode(errors="replace") for k, v in binary.items()})
    return out


def field_value(pod: Obj, path: str) -> str:
    """A downward-API ``fieldRef.fieldPath`` value."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"), "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(p["ip"] for p in status.get("podIPs") or []),
        "status.hostIPs": ",".join(p["ip"] for p in status.get("hostIPs") or []),
    }
    if path in {"metadata.labels", "metadata.annotations"}:
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    return str(simple.get(path) or "")


def _ref(read: Reader, kind: str, ns: str, ref: Obj) -> str | None:
    obj = read(kind, ns, ref["name"])
    value = None if obj is None else _data(obj, kind).get(ref["key"])
    if value is None and not ref.get("optional"):
        raise ConfigError(f"{kind[:-1]} {ns}/{ref['name']} key {ref['key']!r} not found")
    return value


def container_env(
    pod: Obj, container: Obj, read: Reader, base: Mapping[str, str]
) -> dict[str, str]:
    """The process environment: inherited base, then envFrom, then env (in order)."""
    ns = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            obj = read(kind, ns, ref["name"])
            if obj is None:
                if not ref.get("optional"):
                    raise ConfigError(f"{kind[:-1]} {ns}/{ref['name']} not found")
                continue
            env.update({prefix + k: v for k, v in _data(obj, kind).items()})
    for item in container.get("env") or []:
        name, source = item["name"], item.get("valueFrom")
        value: str | None
        if source is None:
            value = expand(item.get("value", ""), env)
        elif "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source:
            value = _ref(read, "secrets", ns, source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _ref(read, "configmaps", ns, source["configMapKeyRef"])
        elif "resourceFieldRef" in source:
            resource = source["resourceFieldRef"]["resource"]
            group, _, res = resource.partition(".")
            value = str(((container.get("resources") or {}).get(group) or {}).get(res, "0"))
        else:
            value = None
        if value is not None:
            env[name] = value
    return env


def _write_items(target: Path, data: Mapping[str, str], items: list[Obj] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
    for key, rel in pairs:
        if key in data:
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[key])


def prepare_volumes(
    pod: Obj, pod_dir: Path, pvc_root: Path, read: Reader, mint: TokenMinter
) -> dict[str, Path]:
    """Materialise every volume as a directory; returns volume name -> host directory."""
    ns = pod["metadata"]["namespace"]
    out: dict[str, Path] = {}
    for vol in pod["spec"].get("volumes") or []:
        name = vol["name"]
        target = pod_dir / "volumes" / name
        if "hostPath" in vol:
            out[name] = Path(vol["hostPath"]["path"])
            continue
        if "persistentVolumeClaim" in vol:
            target = pvc_root / ns / vol["persistentVolumeClaim"]["claimName"]
        target.mkdir(parents=True, exist_ok=True)
        out[name] = target
        for kind, key, ref_name in (("configmaps", "configMap", "name"),
                                    ("secrets", "secret", "secretName")):
            source = vol.get(key)
            if source is not None:
                obj = read(kind, ns, source[ref_name])
                if obj is None and not source.get("optional"):
                    raise ConfigError(f"{kind[:-1]} {ns}/{source[ref_name]} not found")
                _write_items(target, _data(obj or {}, kind), source.get("items"))
        if "downwardAPI" in vol:
            fields = {i["path"]: field_value(pod, i["fieldRef"]["fieldPath"])
                      for i in vol["downwardAPI"].get("items") or [] if "fieldRef" in i}
            _write_items(target, fields, None)
        for src in (vol.get("projected") or {}).get("sources") or []:
            if "serviceAccountToken" in src:
                token = src["serviceAccountToken"]
                sa = pod["spec"].get("serviceAccountName") or "default"
                value = mint(ns, sa, int(token.get("expirationSeconds", 3600)))
                _write_items(target, {token["path"]: value}, None)
            for kind, key in (("configmaps", "configMap"), ("secrets", "secret")):
                if key in src:
                    obj = read(kind, ns, src[key]["name"]) or {}
                    _write_items(target, _data(obj, kind), src[key].get("items"))
            if "downwardAPI" in src:
                fields = {i["path"]: field_value(pod, i["fieldRef"]["fieldPath"])
                          for i in src["downwardAPI"].get("items") or [] if "fieldRef" in i}
                _write_items(target, fields, None)
    return out


def mount_map(container: Obj, volumes: Mapping[str, Path]) -> dict[str, str]:
    """mountPath -> host path for one container (subPath honoured)."""
    mounts: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        host = volumes.get(mount["name"])
        if host is None:
            continue
        if mount.get("subPath"):
            host = host / mount["subPath"]
            if not host.exists():
                host.mkdir(parents=True)
        mounts[mount["mountPath"].rstrip("/") or "/"] = str(host)
    return mounts


def rewrite(value: str, mounts: Mapping[str, str]) -> str:
    """Replace mount-path prefixes (at path boundaries) by their host directories.

    One pass over ``value`` with every mount path in one alternation (longest first), so a host
    directory put in by one mount is never rewritten again by another (``/tmp`` mounted while
    the agent's state lives under ``/tmp``).
    """
    paths = sorted((m for m in mounts if m != "/"), key=len, reverse=True)
    if not paths:
        return value
    pattern = r"(?<![\w./-])(" + "|".join(map(re.escape, paths)) + r")(?=/|$|[^\w.-])"
    return re.sub(pattern, lambda match: mounts[match.group(1)], value)


def volume_env(volumes: Mapping[str, Path]) -> dict[str, str]:
    return {
        "MODELYARD_VOLUME_" + re.sub(r"[^A-Z0-9]", "_", name.upper()): str(path)
        for name, path in volumes.items()
    }


def base_env(pod: Obj, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    env["HOSTNAME"] = pod["metadata"]["name"]
    env.update(extra)
    return env
