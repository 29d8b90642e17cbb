"""The bounds on what clients and model servers may send, in one place.

Nothing a client or a model server sends may take the gateway's memory, time or slots
without bound. Each bound answers with an OpenAI-shaped error that names it, counts in
``modelyard_gateway_limited_total{limit=...}``, and is a flag of the same name (see
:mod:`modelyard.gateway.settings`), except the parser's fixed ``json_depth``:

* ``max_body_bytes``: a request body (413);
* ``body_timeout``: the time from a request's headers to the end of its body (408);
* ``json_depth``: how deep a JSON body nests, the parser's fixed bound (400; see
  :data:`modelyard.gateway.body.MAX_DEPTH`);
* ``max_in_flight``: requests being forwarded at once, from all clients (429 with
  ``Retry-After``);
* ``max_response_bytes``: a non-streamed answer, or a 5xx body, from a model server (502 after
  the retries: another target may answer);
* ``max_event_bytes``: one server-sent event from a model server (before the first event: a
  retried failure; after: the stream ends with an error event).

A JSON body is parsed in time linear in its size and without building objects for the
fields routing does not need (:mod:`modelyard.gateway.body`), so ``max_body_bytes`` also
bounds the parse. ``max_in_flight`` counts requests from their parsed body to their last
byte: a client still sending its body holds no slot (``body_timeout`` bounds that phase).
"""

from __future__ import annotations

RETRY_AFTER = 1
"""Seconds a client is told to wait after a 429 for ``max_in_flight``."""


class InFlight:
    """Requests being forwarded, all clients together; refuses beyond ``limit`` (0 = no limit)."""

    __slots__ = ("current", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current = 0

    def acquire(self) -> bool:
        if self.limit > 0 and self.current >= self.limit:
            return False
        self.current += 1
        return True

    def release(self) -> None:
        self.current -= 1
