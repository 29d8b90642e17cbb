"""The status API's few knobs, in one small dataclass the operator fills from its options."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class StatusApiSettings:
    """How the status API guards itself.

    ``token``: when set, every ``/api`` route but ``/api/v1/healthz`` needs
    ``Authorization: Bearer <token>``. ``max_body_bytes``: larger request bodies get 413.
    ``heartbeat_s``: how often an idle event stream sends a keep-alive comment;
    ``coalesce_s``: how long a stream waits after a change to send one message for a burst.
    ``gateway_metrics_urls``: the gateways' ``/metrics``, scraped every ``traffic_interval_s``
    for the dashboard's live demand, req/s, latency and tokens/s (:mod:`.traffic`); none: the
    dashboard shows the demand the operator wrote to the status, and no rates.
    """

    token: str | None = None
    max_body_bytes: int = 64 * 1024
    heartbeat_s: float = 15.0
    coalesce_s: float = 0.1
    gateway_metrics_urls: tuple[str, ...] = ()
    traffic_interval_s: float = 2.0
