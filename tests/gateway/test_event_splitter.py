"""Server-sent events are relayed whole, and one event may not outgrow ``--max-event-bytes``."""

from __future__ import annotations

import pytest

from modelyard.gateway import sse

EVENTS = b'data: {"a": 1}\n\n: keepalive\n\ndata: {"b": "x\\ny"}\r\n\r\ndata: [DONE]\n\n'
WHOLE = EVENTS.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, len(EVENTS)])
def test_events_come_out_whole_however_the_bytes_are_cut(size: int) -> None:
    splitter = sse.EventSplitter(1024)
    out = b""
    for start in range(0, len(EVENTS), size):
        events = splitter.feed(EVENTS[start : start + size])
        assert events == b"" or events.endswith(b"\n\n")
        out += events
    assert out == WHOLE and splitter.pending == b""


def test_an_event_larger_than_the_limit_is_refused_naming_it() -> None:
    splitter = sse.EventSplitter(100)
    assert splitter.feed(b"data: " + b"x" * 90) == b""
    with pytest.raises(sse.EventTooLarge, match=r"larger than 100 bytes \(--max-event-bytes\)"):
        splitter.feed(b"x" * 20)


def test_complete_events_within_the_limit_pass_however_many() -> None:
    splitter = sse.EventSplitter(100)
    many = b"data: 12345\n\n" * 1000
    assert splitter.feed(many) == many


@pytest.mark.timeout(120)
def test_an_event_trickled_in_tiny_pieces_costs_linear_time() -> None:
    # before: every piece copied and searched all the bytes held (4 MiB in 4-byte pieces: 2 TB)
    splitter = sse.EventSplitter(8 * 1024 * 1024)
    for _ in range(1024 * 1024):
        assert splitter.feed(b"xxxx") == b""
    assert splitter.feed(b"\n\n") == b"x" * (4 * 1024 * 1024) + b"\n\n"
