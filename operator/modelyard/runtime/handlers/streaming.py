"""Stop strings over a growing text: what may be sent to a streaming client, and when to stop.

A generation is decoded again after every token; :class:`StopTracker` compares the text with
the stop strings. It holds back the tail that could still become a stop string (and a
half-decoded character, up to 3 replacement characters), so a client never sees a stop string
or part of one, and it says
when a stop string has appeared so the generation loop can end.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopTracker:
    def __init__(self, stop: Sequence[str] | None) -> None:
        self.stop = [s for s in (stop or []) if s]
        self.emitted = ""
        self.stopped = False
        self.text = ""

    def _cut(self, text: str) -> str:
        """``text`` up to the earliest stop string; sets ``stopped`` when one is found."""
        first = -1
        for s in self.stop:
            i = text.find(s)
            if i != -1 and (first == -1 or i < first):
                first = i
        if first != -1:
            self.stopped = True
            return text[:first]
        return text

    def _holdback(self, text: str) -> int:
        keep = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:k]):
                    keep = max(keep, k)
                    break
        if text.endswith("\ufffd"):
            # an unfinished UTF-8 sequence (at most 3 bytes) may still become one character
            keep = max(keep, min(3, len(text) - len(text.rstrip("\ufffd"))))
        return keep

    def _delta(self, safe: str) -> str:
        # Text already sent cannot be taken back; if decoding changed it, go on from its length.
        if len(safe) <= len(self.emitted):
            return ""
        delta = safe[len(self.emitted) :]
        self.emitted = safe
        return delta

    def update(self, text: str) -> str:
        """The new text that is safe to send, given everything decoded so far."""
        if self.stopped:
            return ""
        cut = self._cut(text)
        self.text = cut
        if self.stopped:
            return self._delta(cut)
        return self._delta(cut[: len(cut) - self._holdback(cut)])

    def finish(self, text: str) -> str:
        """The generation ended: flush what was held back (never a stop string)."""
        if not self.stopped:
            self.text = self._cut(text)
        return self._delta(self.text)
