"""API keys: who may call the gateway, which models they may use, how much they may send.

Keys come from one Secret (default ``modelyard-gateway-keys`` in the gateway's namespace),
read as a flat mapping of its data:

* ``<name>``: the API key itself (clients send ``Authorization: Bearer <key>``);
* ``<name>.models`` (optional): comma-separated served names the key may use (default: all);
* ``<name>.namespaces`` (optional): comma-separated namespaces; the key may use only served
  names owned by or shared with them (served-name ownership, :mod:`modelyard.api.served_names`;
  with ``.models`` both must allow the name);
* ``<name>.concurrency`` (optional): requests in flight allowed for the key (default: the
  gateway's ``--max-concurrency-per-key``; 0 = unlimited);
* ``<name>.rpm`` / ``<name>.tpm`` (optional): requests / tokens per minute
  (:mod:`modelyard.gateway.ratelimit`; absent or 0 = unlimited).

A key whose value is empty or one of whose settings does not parse is not loaded (fail
closed: a key must never run without the limits written for it); the table records why, by
key name, in :attr:`KeyTable.problems`. Authentication is on unless the gateway runs with
``--no-auth``: with no usable key every ``/v1`` request is refused (the app says so).

Only SHA-256 digests of keys are kept in memory and a presented key is compared to each with
:func:`hmac.compare_digest`; keys and their digests are never logged, and errors name the key
by its ``<name>`` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable, Mapping

SETTINGS = frozenset({"models", "namespaces", "concurrency", "rpm", "tpm"})
"""The ``<name>.<setting>`` entries a key may have."""


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKey:
    """One key, by name; the secret itself is not kept."""

    name: str
    digest: bytes = dataclasses.field(repr=False)
    models: frozenset[str] | None = None
    """Allowed served names; None = all."""
    concurrency: int | None = None
    """Requests in flight allowed; None = the gateway default, 0 = unlimited."""
    rpm: int = 0
    """Requests per minute; 0 = unlimited."""
    tpm: int = 0
    """Tokens (prompt + completion) per minute; 0 = unlimited."""
    namespaces: frozenset[str] | None = None
    """Namespaces whose served names the key may use; None = any."""
    reachable: frozenset[str] | None = None
    """The served names those namespaces own or share (set by discovery; None: unknown, so a
    key limited by namespaces may use none)."""

    def allows(self, model: str) -> bool:
        if self.namespaces is not None and (self.reachable is None or model not in self.reachable):
            return False
        return self.models is None or model in self.models


def _digest(key: str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 as lone surrogates: hash them as they came
    # (a plain encode() raised, and "Bearer \x80" was a 500 instead of a 401)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _count(data: Mapping[str, str], name: str, setting: str) -> int | None:
    text = data.get(f"{name}.{setting}", "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{name}.{setting} must be a whole number >= 0, not {text[:20]!r}")
    return int(text)


def _key(name: str, value: str, data: Mapping[str, str]) -> ApiKey:
    if not value.strip():
        raise ValueError(f"{name}: the key is empty")
    models_text = data.get(f"{name}.models")
    models = (
        frozenset(m.strip() for m in models_text.split(",") if m.strip()) if models_text is not None else None
    )
    concurrency = _count(data, name, "concurrency")
    rpm, tpm = _count(data, name, "rpm") or 0, _count(data, name, "tpm") or 0
    namespaces_text = data.get(f"{name}.namespaces")
    namespaces = (
        frozenset(n.strip() for n in namespaces_text.split(",") if n.strip())
        if namespaces_text is not None
        else None
    )
    return ApiKey(name, _digest(value.strip()), models, concurrency, rpm, tpm, namespaces)


@dataclasses.dataclass(frozen=True, slots=True)
class KeyTable:
    """The usable keys of one source, and why entries of it were not loaded."""

    keys: tuple[ApiKey, ...] = ()
    source: str = "the gateway's keys"
    """Where the keys come from (``Secret ns/name``), for messages."""
    problems: tuple[str, ...] = ()
    """Entries not loaded and why, by key name (never a key's value)."""

    @classmethod
    def from_data(cls, data: Mapping[str, str], source: str = "the gateway's keys") -> KeyTable:
        """Build from a Secret's decoded data (format in the module docstring)."""
        keys: list[ApiKey] = []
        problems: list[str] = []
        for name, value in sorted(data.items()):
            base, dot, setting = name.partition(".")
            if dot and (setting not in SETTINGS or base not in data):
                known = ", ".join(sorted(SETTINGS))
                problems.append(f"{name}: not a key setting of a key named {base!r} ({known})")
            if dot:
                continue
            try:
                keys.append(_key(name, value, data))
            except ValueError as exc:
                problems.append(f"{exc}; key {name!r} is not loaded")
        return cls(tuple(keys), source, tuple(problems))

    @classmethod
    def absent(cls, source: str) -> KeyTable:
        return cls((), source, ("it does not exist",))

    def why_empty(self) -> str:
        """Why no key is usable, for /readyz and the log (names keys, never their values)."""
        detail = "; ".join(self.problems[:5]) + ("; ..." if len(self.problems) > 5 else "")
        return f"{self.source} has no usable key" + (f" ({detail})" if detail else "")

    def with_reachable(self, names_for: Callable[[frozenset[str]], frozenset[str]]) -> KeyTable:
        """The keys limited by namespaces, each with the served names its namespaces reach."""
        return dataclasses.replace(
            self,
            keys=tuple(
                dataclasses.replace(k, reachable=names_for(k.namespaces)) if k.namespaces is not None else k
                for k in self.keys
            ),
        )

    def lookup(self, presented: str) -> ApiKey | None:
        """The key matching a presented bearer token, comparing digests in constant time."""
        digest = _digest(presented)
        found: ApiKey | None = None
        for key in self.keys:  # no early exit: the time taken does not depend on which matched
            if hmac.compare_digest(key.digest, digest):
                found = key
        return found


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ConcurrencyLimiter:
    """Requests in flight per key name; refuses beyond the key's limit (the caller sends 429)."""

    def __init__(self, default_limit: int) -> None:
        self._default = default_limit
        self._in_flight: dict[str, int] = {}

    def acquire(self, key: ApiKey) -> bool:
        limit = self._default if key.concurrency is None else key.concurrency
        current = self._in_flight.get(key.name, 0)
        if limit > 0 and current >= limit:
            return False
        self._in_flight[key.name] = current + 1
        return True

    def release(self, key: ApiKey) -> None:
        current = self._in_flight.get(key.name, 0) - 1
        if current <= 0:
            self._in_flight.pop(key.name, None)
        else:
            self._in_flight[key.name] = current

    def in_flight(self, name: str) -> int:
        return self._in_flight.get(name, 0)
