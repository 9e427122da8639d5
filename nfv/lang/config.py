"""Configuration strings: splitting into arguments and reading keywords, by Click's rules.

A configuration string is the text between the parentheses of `Class(...)`.
Click splits it at top-level commas; commas inside quotes, parentheses,
brackets and braces stay in their argument, comments are dropped, and
whitespace around each argument is trimmed.

Every piece keeps a map back to the source, so an error found deep inside an
argument (a bad port in an IPFilter rule) points at the exact line and
column.  The map is a short list of runs rather than a position per
character: a config of a million routes must not cost a million objects per
byte.  Scanning uses regular expressions to jump between the few characters
that matter (quotes, brackets, commas, comment starts).
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

from nfv.errors import Pos

# (offset in text, source position of that character, advances?) -- in an advancing
# run the characters that follow move through the source as written (a newline
# starts the next line); in a fixed run they all map to one place (the `$name` a
# value was substituted for, the comment a space replaced).
Run = tuple[int, Pos, bool]


@dataclass(frozen=True)
class ConfigArg:
    """Text from a configuration string and the map of where each character came from."""

    text: str
    runs: tuple[Run, ...]
    fallback: Pos

    @property
    def pos(self) -> Pos:
        """Where the argument starts."""
        return self.pos_at(0)

    @cached_property
    def _starts(self) -> list[int]:
        return [r[0] for r in self.runs]

    @cached_property
    def _newlines(self) -> list[int]:
        return [m.start() for m in re.finditer("\n", self.text)]

    def pos_at(self, offset: int | None) -> Pos:
        """Source position of character `offset` (None or out of range: the start/end)."""
        if not self.runs:
            return self.fallback
        if offset is None or not self.text:
            offset = 0
        offset = max(0, min(offset, len(self.text) - 1 if self.text else 0))
        k = bisect_right(self._starts, offset) - 1
        start, pos, advances = self.runs[max(k, 0)]
        if not advances or offset <= start:
            return pos
        nl = self._newlines
        first = bisect_right(nl, start - 1)     # newlines at or after the run start
        last = bisect_right(nl, offset - 1)     # ... and before offset
        if last == first:
            return Pos(pos.file, pos.line, pos.col + offset - start)
        return Pos(pos.file, pos.line + last - first, offset - nl[last - 1])

    def slice(self, start: int, end: int | None = None) -> "ConfigArg":
        """The sub-argument text[start:end], with its map."""
        end = len(self.text) if end is None else max(start, min(end, len(self.text)))
        first = self.pos_at(start)
        if start >= end:
            return ConfigArg("", (), first)
        if len(self.runs) == 1:  # the usual case: text as written, one run
            return ConfigArg(self.text[start:end], ((0, first, self.runs[0][2]),), first)
        k = max(bisect_right(self._starts, start) - 1, 0)
        runs = [(0, first, self.runs[k][2])] if self.runs else []
        for offset, pos, advances in self.runs[k + 1:]:
            if offset >= end:
                break
            runs.append((offset - start, pos, advances))
        return ConfigArg(self.text[start:end], tuple(runs), first)

    def strip(self) -> "ConfigArg":
        """The argument without leading and trailing whitespace."""
        left = len(self.text) - len(self.text.lstrip())
        right = len(self.text.rstrip())
        return self.slice(left, max(left, right))


def make_arg(text: str, start: Pos) -> ConfigArg:
    """A ConfigArg for text as written in the source starting at `start`."""
    return ConfigArg(text, ((0, start, True),), start)


def fixed_arg(text: str, pos: Pos) -> ConfigArg:
    """Text that did not come from the source as written: every character maps to `pos`."""
    return ConfigArg(text, ((0, pos, False),) if text else (), pos)


def concat(pieces: list[ConfigArg], fallback: Pos) -> ConfigArg:
    """Join pieces into one ConfigArg, keeping each piece's map."""
    text, runs, at = [], [], 0
    for piece in pieces:
        if not piece.text:
            continue
        text.append(piece.text)
        runs.extend((at + offset, pos, adv) for offset, pos, adv in piece.runs)
        at += len(piece.text)
    return ConfigArg("".join(text), tuple(runs), fallback)


_COMMENT_OR_QUOTE = re.compile(r'//|/\*|"|\'')
_QUOTE_END = {'"': re.compile(r'\\.|"', re.S), "'": re.compile("'")}


def strip_comments(arg: ConfigArg) -> ConfigArg:
    """Remove `//` and `/* */` comments outside quotes (each comment becomes one space)."""
    text = arg.text
    if "/" not in text:
        return arg
    pieces, keep_from, i = [], 0, 0
    while True:
        m = _COMMENT_OR_QUOTE.search(text, i)
        if m is None:
            break
        tok = m.group(0)
        if tok in "\"'":
            i = _skip_quote(text, m.end(), tok)
            continue
        end = text.find("\n", m.end()) if tok == "//" else text.find("*/", m.end())
        end = len(text) if end < 0 else (end if tok == "//" else end + 2)
        pieces.append(arg.slice(keep_from, m.start()))
        pieces.append(fixed_arg(" ", arg.pos_at(m.start())))
        keep_from = i = end
    if not pieces:
        return arg
    pieces.append(arg.slice(keep_from))
    return concat(pieces, arg.fallback)


def _skip_quote(text: str, i: int, quote: str) -> int:
    """Index just past the quote that closes one opened before `i` (or the end)."""
    pattern = _QUOTE_END[quote]
    while True:
        m = pattern.search(text, i)
        if m is None:
            return len(text)
        if m.group(0) == quote:
            return m.end()
        i = m.end()  # a backslash escape inside double quotes


_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_SPLIT_STOP = re.compile(r'[,"\'()\[\]{}]')


def split_args(config: ConfigArg) -> list[ConfigArg]:
    """Split a configuration string into trimmed arguments at top-level commas.

    An empty (all-blank) string has no arguments.  As in Click, one empty
    argument after a final comma is dropped, so `Class(a, b,)` has two.
    """
    config = strip_comments(config)
    text = config.text
    if not text.strip():
        return []
    pieces, start, depth, i = [], 0, [], 0
    while True:
        m = _SPLIT_STOP.search(text, i)
        if m is None:
            break
        ch = m.group(0)
        i = m.end()
        if ch in "\"'":
            i = _skip_quote(text, i, ch)
        elif ch in _CLOSERS:
            depth.append(_CLOSERS[ch])
        elif depth and ch == depth[-1]:
            depth.pop()
        elif ch == "," and not depth:
            pieces.append(config.slice(start, m.start()).strip())
            start = i
    last = config.slice(start).strip()
    if last.text or not pieces:
        pieces.append(last)
    return pieces


_KEYWORD = re.compile(r"[A-Z_][A-Z0-9_]*(?=\s|$)")


def split_keyword(arg: ConfigArg) -> tuple[str, ConfigArg] | None:
    """If `arg` is `KEYWORD value` (Click's all-caps keyword rule), return (KEYWORD, value)."""
    m = _KEYWORD.match(arg.text)
    if not m:
        return None
    return m.group(0), arg.slice(m.end()).strip()


_WORD = re.compile(r"""(?:[^\s"']|"(?:\\.|[^"\\])*"?|'[^']*'?)+""", re.S)


def split_words(arg: ConfigArg) -> list[ConfigArg]:
    """Split an argument at whitespace outside quotes (e.g. `10.0.0.0/8 1.2.3.4 1`)."""
    return [arg.slice(m.start(), m.end()) for m in _WORD.finditer(arg.text)]
