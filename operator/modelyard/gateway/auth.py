"""API keys: who may call the gateway, which models they may use, how many calls at once.

Keys come from one Secret (default ``modelyard-gateway-keys`` in the gateway's namespace),
read as a flat mapping of its data:

* ``<name>``: the API key itself (clients send ``Authorization: Bearer <key>``);
* ``<name>.models`` (optional): comma-separated served names the key may use (default: all);
* ``<name>.namespaces`` (optional): comma-separated namespaces; the key may use only served
  names owned by or shared with them (served-name ownership, :mod:`modelyard.api.served_names`;
  with ``.models`` both must allow the name);
* ``<name>.concurrency`` (optional): requests in flight allowed for the key (default: the
  gateway's ``--max-concurrency-per-key``; 0 = unlimited).

Only SHA-256 digests of keys are kept in memory and a presented key is compared to each with
:func:`hmac.compare_digest`; keys and their digests are never logged, and errors name the key
by its ``<name>`` only. An empty table turns authentication off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable, Mapping


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKey:
    """One key, by name; the secret itself is not kept."""

    name: str
    digest: bytes = dataclasses.field(repr=False)
    models: frozenset[str] | None = None
    """Allowed served names; None = all."""
    concurrency: int | None = None
    """Requests in flight allowed; None = the gateway default, 0 = unlimited."""
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


@dataclasses.dataclass(frozen=True, slots=True)
class KeyTable:
    """The configured keys; empty means authentication is disabled."""

    keys: tuple[ApiKey, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> KeyTable:
        """Build from a Secret's decoded data (format in the module docstring)."""
        keys: list[ApiKey] = []
        for name, value in sorted(data.items()):
            if "." in name or not value.strip():
                continue
            models_text = data.get(f"{name}.models")
            models = (
                frozenset(m.strip() for m in models_text.split(",") if m.strip())
                if models_text is not None
                else None
            )
            concurrency_text = data.get(f"{name}.concurrency")
            concurrency = int(concurrency_text) if concurrency_text and concurrency_text.strip() else None
            namespaces_text = data.get(f"{name}.namespaces")
            namespaces = (
                frozenset(n.strip() for n in namespaces_text.split(",") if n.strip())
                if namespaces_text is not None
                else None
            )
            keys.append(ApiKey(name, _digest(value.strip()), models, concurrency, namespaces))
        return cls(tuple(keys))

    def with_reachable(self, names_for: Callable[[frozenset[str]], frozenset[str]]) -> KeyTable:
        """The keys limited by namespaces, each with the served names its namespaces reach."""
        return KeyTable(
            tuple(
                dataclasses.replace(k, reachable=names_for(k.namespaces)) if k.namespaces is not None else k
                for k in self.keys
            )
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
