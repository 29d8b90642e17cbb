"""The gateway's knobs in one typed object, read from flags with environment defaults.

Environment variables (a flag of the same meaning wins):

=========================  =====================================================  =========
RETRY_ATTEMPTS             retries after the first attempt, per model              2
RETRY_DELAY                milliseconds before retrying a target already tried     100
FALLBACK_MODEL             served name tried when a model cannot answer            (none)
GATEWAY_REQUEST_TIMEOUT    seconds for a whole request                             600
GATEWAY_ATTEMPT_TIMEOUT    seconds one attempt may wait for its first byte         (request)
GATEWAY_CONNECT_TIMEOUT    seconds to connect to a target                          5
GATEWAY_MAX_BODY_BYTES     largest request body accepted (413 beyond)              32 MiB
GATEWAY_BODY_TIMEOUT       seconds a client may take to send its body (408)        60
GATEWAY_MAX_IN_FLIGHT      requests forwarded at once, all keys (429; 0 = off)     1024
GATEWAY_MAX_RESPONSE_BYTES largest non-streamed answer from a model server (502)   64 MiB
GATEWAY_MAX_EVENT_BYTES    largest server-sent event from a model server (502)     4 MiB
GATEWAY_MAX_CONCURRENCY    requests in flight per API key (429 beyond; 0 = off)    0
GATEWAY_KEEPALIVE          seconds between SSE keepalives before the first byte    5
GATEWAY_STREAM_STALL       seconds a stream may send nothing before it is resumed  30
                           elsewhere (0 = never; not the first-byte wait)
GATEWAY_EJECT_AFTER        consecutive failures that eject a target                3
GATEWAY_EJECT_COOLDOWN     seconds an ejected target is skipped                    10
GATEWAY_HOLD_TIMEOUT       seconds a request waits for an endpoint at zero (503)   120
GATEWAY_HOLD_QUEUE         requests held per served name (503 beyond)              100
GATEWAY_POD_METRICS        seconds between scrapes of the pods' /metrics (0 = off)  1
=========================  =====================================================  =========

Authentication has no environment variable: it is on unless ``modelyard gateway --no-auth``
(:attr:`Settings.auth`), so no stray variable can open a gateway.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Settings:
    retry_attempts: int = 2
    retry_delay: float = 0.1
    """Seconds (the RETRY_DELAY variable is in milliseconds, as in the Akash gateway)."""
    fallback_model: str | None = None
    request_timeout: float = 600.0
    attempt_timeout: float | None = None
    """Seconds to the first byte of one attempt; None = the request timeout (which, started
    before any attempt, always strikes first: an attempt then arms no timer of its own)."""
    connect_timeout: float = 5.0
    max_body_bytes: int = 32 * 1024 * 1024
    body_timeout: float = 60.0
    """Seconds from a request's headers to the last byte of its body (408 after)."""
    max_in_flight: int = 1024
    """Requests being forwarded at once, whoever sends them (429 + Retry-After beyond; 0 = off)."""
    max_response_bytes: int = 64 * 1024 * 1024
    max_event_bytes: int = 4 * 1024 * 1024
    max_concurrency_per_key: int = 0
    keepalive_interval: float = 5.0
    stream_stall_timeout: float = 30.0
    """Seconds a committed stream may send nothing before it counts as broken and is resumed
    on another target (0 = never); the wait for the first byte is ``attempt_timeout``."""
    eject_after: int = 3
    eject_cooldown: float = 10.0
    hold_timeout: float = 120.0
    """Seconds a request waits for an endpoint with no ready pod to get one (503 after)."""
    hold_queue: int = 100
    """Requests held at once per served name (503 + Retry-After beyond)."""
    pod_metrics_interval: float = 1.0
    """Seconds between scrapes of each pod's queue signal (:mod:`~.podload`); 0 = off."""
    max_connections: int = 0
    """Upstream connection pool size (0 = unlimited)."""
    auth: bool = True
    """Require an API key on /v1 (with no usable key every request is refused); False only
    by the explicit ``--no-auth``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def num(name: str, default: float) -> float:
            value = env.get(name, "").strip()
            return float(value) if value else default

        attempt = env.get("GATEWAY_ATTEMPT_TIMEOUT", "").strip()
        return cls(
            retry_attempts=int(num("RETRY_ATTEMPTS", cls.retry_attempts)),
            retry_delay=num("RETRY_DELAY", cls.retry_delay * 1000) / 1000,
            fallback_model=env.get("FALLBACK_MODEL") or None,
            request_timeout=num("GATEWAY_REQUEST_TIMEOUT", cls.request_timeout),
            attempt_timeout=float(attempt) if attempt else None,
            connect_timeout=num("GATEWAY_CONNECT_TIMEOUT", cls.connect_timeout),
            max_body_bytes=int(num("GATEWAY_MAX_BODY_BYTES", cls.max_body_bytes)),
            body_timeout=num("GATEWAY_BODY_TIMEOUT", cls.body_timeout),
            max_in_flight=int(num("GATEWAY_MAX_IN_FLIGHT", cls.max_in_flight)),
            max_response_bytes=int(num("GATEWAY_MAX_RESPONSE_BYTES", cls.max_response_bytes)),
            max_event_bytes=int(num("GATEWAY_MAX_EVENT_BYTES", cls.max_event_bytes)),
            max_concurrency_per_key=int(num("GATEWAY_MAX_CONCURRENCY", cls.max_concurrency_per_key)),
            keepalive_interval=num("GATEWAY_KEEPALIVE", cls.keepalive_interval),
            stream_stall_timeout=num("GATEWAY_STREAM_STALL", cls.stream_stall_timeout),
            eject_after=int(num("GATEWAY_EJECT_AFTER", cls.eject_after)),
            eject_cooldown=num("GATEWAY_EJECT_COOLDOWN", cls.eject_cooldown),
            hold_timeout=num("GATEWAY_HOLD_TIMEOUT", cls.hold_timeout),
            hold_queue=int(num("GATEWAY_HOLD_QUEUE", cls.hold_queue)),
            pod_metrics_interval=num("GATEWAY_POD_METRICS", cls.pod_metrics_interval),
        )
