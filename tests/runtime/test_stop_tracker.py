"""Streaming never shows a stop string, or part of one, and stops where it appears."""

from __future__ import annotations

from modelyard.runtime.handlers import streaming


def _feed(stop: list[str], pieces: list[str]) -> tuple[str, streaming.StopTracker]:
    tracker = streaming.StopTracker(stop)
    text, sent = "", ""
    for piece in pieces:
        text += piece
        sent += tracker.update(text)
    sent += tracker.finish(text)
    return sent, tracker


def test_text_before_the_stop_string_is_sent_and_nothing_after() -> None:
    sent, tracker = _feed(["END"], ["hello ", "wor", "ld E", "N", "D and more"])
    assert sent == "hello world "
    assert tracker.stopped


def test_a_partial_stop_string_is_held_back_then_released() -> None:
    tracker = streaming.StopTracker(["STOP"])
    assert tracker.update("abc ST") == "abc "
    assert tracker.update("abc STa") == "STa"
    assert not tracker.stopped


def test_without_stop_strings_everything_flows() -> None:
    sent, tracker = _feed([], ["a", "b", "c"])
    assert sent == "abc" and not tracker.stopped


def test_unfinished_characters_wait_for_their_bytes() -> None:
    tracker = streaming.StopTracker(None)
    assert tracker.update("caf\ufffd") == "caf"
    assert tracker.update("café") == "é"
