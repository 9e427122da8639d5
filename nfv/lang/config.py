"""Configuration strings: splitting into arguments and reading keywords, by Click's rules.

A configuration string is the text between the parentheses of `Class(...)`.
Click splits it at top-level commas; commas inside quotes, parentheses,
brackets and braces stay in their argument, comments are dropped, and
whitespace around each argument is trimmed.  Every piece keeps the source
position of each of its characters, so an error found deep inside an argument
(a bad port in an IPFilter rule) points at the exact line and column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nfv.errors import Pos


@dataclass(frozen=True)
class ConfigArg:
    """One argument of a configuration string: its text and where each character came from.

    `positions[i]` is the source position of `text[i]`; text produced by
    `$variable` expansion maps to the position of the `$variable`.
    """

    text: str
    positions: tuple[Pos, ...]
    fallback: Pos

    @property
    def pos(self) -> Pos:
        """Where the argument starts."""
        return self.positions[0] if self.positions else self.fallback

    def pos_at(self, offset: int | None) -> Pos:
        """Source position of character `offset` (None or out of range: the start)."""
        if offset is None or not self.positions:
            return self.pos
        offset = max(0, min(offset, len(self.positions) - 1))
        return self.positions[offset]

    def slice(self, start: int, end: int | None = None) -> "ConfigArg":
        """The sub-argument text[start:end], with its positions."""
        end = len(self.text) if end is None else end
        return ConfigArg(self.text[start:end], self.positions[start:end], self.pos_at(start))

    def strip(self) -> "ConfigArg":
        """The argument without leading and trailing whitespace."""
        left = len(self.text) - len(self.text.lstrip())
        right = len(self.text.rstrip())
        return self.slice(left, max(left, right))


def make_arg(text: str, start: Pos) -> ConfigArg:
    """A ConfigArg for text that starts at `start` in the source (tabs count as one column)."""
    positions = []
    line, col = start.line, start.col
    for ch in text:
        positions.append(Pos(start.file, line, col))
        if ch == "\n":
            line, col = line + 1, 1
        else:
            col += 1
    return ConfigArg(text, tuple(positions), start)


_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def strip_comments(arg: ConfigArg) -> ConfigArg:
    """Remove `//` and `/* */` comments outside quotes (each comment becomes one space)."""
    text, out_chars, out_pos = arg.text, [], []
    i, quote = 0, None
    while i < len(text):
        ch = text[i]
        if quote:
            out_chars.append(ch); out_pos.append(arg.positions[i])
            if ch == "\\" and quote == '"' and i + 1 < len(text):
                out_chars.append(text[i + 1]); out_pos.append(arg.positions[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in "\"'":
            quote = ch
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out_chars.append(" "); out_pos.append(arg.positions[i])
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = len(text) if end < 0 else end + 2
            out_chars.append(" "); out_pos.append(arg.positions[i])
            i = end
            continue
        out_chars.append(ch); out_pos.append(arg.positions[i])
        i += 1
    return ConfigArg("".join(out_chars), tuple(out_pos), arg.fallback)


def split_args(config: ConfigArg) -> list[ConfigArg]:
    """Split a configuration string into trimmed arguments at top-level commas.

    An empty (all-blank) string has no arguments.  As in Click, one empty
    argument after a final comma is dropped, so `Class(a, b,)` has two.
    """
    config = strip_comments(config)
    text = config.text
    if not text.strip():
        return []
    pieces, start, depth, quote = [], 0, [], None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in _CLOSERS:
            depth.append(_CLOSERS[ch])
        elif depth and ch == depth[-1]:
            depth.pop()
        elif ch == "," and not depth:
            pieces.append(config.slice(start, i).strip())
            start = i + 1
        i += 1
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


def split_words(arg: ConfigArg) -> list[ConfigArg]:
    """Split an argument at whitespace outside quotes (e.g. `10.0.0.0/8 1.2.3.4 1`)."""
    words, start, quote = [], None, None
    text = arg.text
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch.isspace():
            if start is not None:
                words.append(arg.slice(start, i))
                start = None
            continue
        if start is None:
            start = i
        if ch in "\"'":
            quote = ch
    if start is not None:
        words.append(arg.slice(start))
    return words
