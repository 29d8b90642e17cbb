"""An incremental JSON syntax checker: is this text the beginning of a JSON object?

Constrained decoding (:mod:`modelyard.runtime.handlers.structured`) asks it, for each candidate
token, whether appending the token's text keeps the output a valid prefix, and asks for the
shortest text that would finish the document when the token budget runs out. Pure Python, no
torch: states are small and cheap to copy.

Whitespace runs are capped at one character so that a model cannot pad forever.
"""

from __future__ import annotations

import copy

_WS = " \t\n\r"
_HEX = "0123456789abcdefABCDEF"
_DIGITS = "0123456789"

# modes
VALUE, OBJ_FIRST, OBJ_KEY, COLON, AFTER, STRING, ESC, UNICODE, NUMBER, LITERAL, DONE = range(11)
# number sub-states; the accepting ones may end the number
N_SIGN, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP = range(8)
_ACCEPTING = {N_ZERO, N_INT, N_FRAC, N_EXP}


class JsonPrefix:
    """Feed characters; ``feed`` returns False (and leaves garbage) on the first invalid one."""

    def __init__(self, *, top_level_object: bool = True) -> None:
        self.stack: list[str] = []  # "{" or "["
        self.mode = VALUE
        self.top_object = top_level_object
        self.in_key = False
        self.unicode_left = 0
        self.num = N_SIGN
        self.literal = ""
        self.ws_run = 0

    def copy(self) -> JsonPrefix:
        other = copy.copy(self)
        other.stack = list(self.stack)
        return other

    @property
    def done(self) -> bool:
        return self.mode == DONE

    def feed_text(self, text: str) -> bool:
        return all(self.feed(ch) for ch in text)

    def _value_done(self) -> None:
        self.mode = AFTER if self.stack else DONE

    def feed(self, ch: str) -> bool:
        mode = self.mode
        if mode in (VALUE, OBJ_FIRST, OBJ_KEY, COLON, AFTER, DONE) and ch in _WS:
            if self.ws_run >= 1 or (mode == VALUE and not self.stack and self.top_object):
                return False
            self.ws_run += 1
            return True
        self.ws_run = 0
        if mode == STRING:
            if ch == '"':
                if self.in_key:
                    self.in_key = False
                    self.mode = COLON
                else:
                    self._value_done()
            elif ch == "\\":
                self.mode = ESC
            elif ord(ch) < 0x20:
                return False
            return True
        if mode == ESC:
            if ch == "u":
                self.mode, self.unicode_left = UNICODE, 4
                return True
            if ch in '"\\/bfnrt':
                self.mode = STRING
                return True
            return False
        if mode == UNICODE:
            if ch not in _HEX:
                return False
            self.unicode_left -= 1
            if self.unicode_left == 0:
                self.mode = STRING
            return True
        if mode == NUMBER:
            return self._number(ch)
        if mode == LITERAL:
            if not self.literal or ch != self.literal[0]:
                return False
            self.literal = self.literal[1:]
            if not self.literal:
                self._value_done()
            return True
        if mode == VALUE:
            return self._value(ch)
        if mode in (OBJ_FIRST, OBJ_KEY):
            if ch == '"':
                self.mode, self.in_key = STRING, True
                return True
            if ch == "}" and mode == OBJ_FIRST:
                self.stack.pop()
                self._value_done()
                return True
            return False
        if mode == COLON:
            if ch == ":":
                self.mode = VALUE
                return True
            return False
        if mode == AFTER:
            top = self.stack[-1]
            if ch == ",":
                self.mode = OBJ_KEY if top == "{" else VALUE
                return True
            if (ch == "}" and top == "{") or (ch == "]" and top == "["):
                self.stack.pop()
                self._value_done()
                return True
            return False
        return False  # DONE: nothing but whitespace

    def _value(self, ch: str) -> bool:
        if not self.stack and self.top_object and ch != "{":
            return False
        if ch == "{":
            self.stack.append("{")
            self.mode = OBJ_FIRST
        elif ch == "[":
            self.stack.append("[")
            self.mode = VALUE
            self.literal = ""
        elif ch == '"':
            self.mode, self.in_key = STRING, False
        elif ch == "-":
            self.mode, self.num = NUMBER, N_SIGN
        elif ch in _DIGITS:
            self.mode, self.num = NUMBER, (N_ZERO if ch == "0" else N_INT)
        elif ch in "tfn":
            self.mode = LITERAL
            self.literal = {"t": "rue", "f": "alse", "n": "ull"}[ch]
        elif ch == "]" and self.stack and self.stack[-1] == "[":
            # an empty array: "[" then "]"
            self.stack.pop()
            self._value_done()
        else:
            return False
        return True

    def _number(self, ch: str) -> bool:
        n = self.num
        if ch in _DIGITS:
            if n == N_SIGN:
                self.num = N_ZERO if ch == "0" else N_INT
            elif n == N_ZERO:
                return False
            elif n == N_DOT:
                self.num = N_FRAC
            elif n in (N_E, N_ESIGN):
                self.num = N_EXP
            return True
        if ch == "." and n in (N_ZERO, N_INT):
            self.num = N_DOT
            return True
        if ch in "eE" and n in (N_ZERO, N_INT, N_FRAC):
            self.num = N_E
            return True
        if ch in "+-" and n == N_E:
            self.num = N_ESIGN
            return True
        if n not in _ACCEPTING:
            return False
        self._value_done()
        if self.mode == DONE:
            return ch in _WS
        return self.feed(ch)

    def completion(self) -> str:
        """The shortest text found that finishes the document from here."""
        out: list[str] = []
        state = self.copy()
        for _ in range(10_000):
            if state.mode == DONE:
                return "".join(out)
            step = _closing_step(state)
            if not state.feed_text(step):  # pragma: no cover - _closing_step is always valid
                raise AssertionError(f"closing step {step!r} rejected")
            out.append(step)
        raise AssertionError("no completion found")  # pragma: no cover


def _closing_step(state: JsonPrefix) -> str:
    mode = state.mode
    if mode == STRING:
        return '"'
    if mode == ESC:
        return "n"
    if mode == UNICODE:
        return "0"
    if mode == NUMBER:
        if state.num in _ACCEPTING:
            return "}" if state.stack[-1:] == ["{"] else ("]" if state.stack else " ")
        return "0"
    if mode == LITERAL:
        return state.literal[0]
    if mode == VALUE:
        if not state.stack and state.top_object:
            return "{"
        if state.stack[-1:] == ["["] and state.ws_run == 0:
            return "0"
        return "0"
    if mode == OBJ_FIRST:
        return "}"
    if mode == OBJ_KEY:
        return '"'
    if mode == COLON:
        return ":"
    if mode == AFTER:
        return "}" if state.stack[-1] == "{" else "]"
    raise AssertionError(f"mode {mode}")  # pragma: no cover
