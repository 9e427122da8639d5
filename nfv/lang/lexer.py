"""Tokens of the Click language, read on demand so that configuration strings can be taken raw.

Click's configuration strings do not follow the language's lexical rules: one
starts right after `(` and runs to the next unbalanced `)`, where parentheses
inside quotes or comments do not count.  So the parser pulls tokens one at a
time and, right after a class's `(`, asks for `config_string()` instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nfv.errors import ConfigError, Pos
from nfv.lang.config import ConfigArg, make_arg

KEYWORDS = {"elementclass", "require", "provide", "define"}

# Inside a configuration string only these matter for finding its end.
_CONFIG_STOP = re.compile(r'//|/\*|["\'()]')
_QUOTE_CLOSE = {'"': re.compile(r'\\.|"', re.S), "'": re.compile("'")}

# Longest first, so `||` wins over `|`, `...` over nothing.
_PUNCT = ["...", "->", "=>", "::", "||", ";", ",", "(", ")", "[", "]", "{", "}", "|"]


@dataclass(frozen=True)
class Token:
    """kind: 'ident', 'number', 'var', 'keyword', 'eof', or the punctuation itself."""

    kind: str
    text: str
    pos: Pos

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of file"
        if self.kind in ("ident", "number", "var", "keyword"):
            return f"{self.kind if self.kind != 'ident' else 'identifier'} '{self.text}'"
        return f"'{self.text}'"


_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
MAX_PORT = 65535  # port numbers beyond this are typos, and would make huge port lists


def _ident_char(ch: str) -> bool:
    """Click identifiers are ASCII (unicode digits like '²' must not pass as numbers)."""
    return ch in _ASCII_ALNUM or ch in "_@/"


def _is_number(word: str) -> bool:
    return word.isascii() and word.isdigit()


class Lexer:
    """Reads tokens from `text`; `file` names it in positions."""

    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.i = 0
        self.line = 1
        self.col = 1
        self.line_file = file  # changed by `# 12 "name"` line directives
        self._peeked: Token | None = None

    # -- position bookkeeping --------------------------------------------------------

    def _pos(self) -> Pos:
        return Pos(self.line_file, self.line, self.col)

    def _advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.i >= len(self.text):
                return
            if self.text[self.i] == "\n":
                self.line += 1
                self.col = 1
            else:
                self.col += 1
            self.i += 1

    def mark(self):
        """Save the state for backtracking (the parser looks two tokens ahead for formals)."""
        return (self.i, self.line, self.col, self.line_file, self._peeked)

    def reset(self, state) -> None:
        self.i, self.line, self.col, self.line_file, self._peeked = state

    # -- skipping ------------------------------------------------------------------------

    def _skip_space(self) -> None:
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == "#" and self._at_line_start():
                self._line_directive()
            elif ch.isspace():
                self._advance()
            elif text.startswith("//", self.i):
                while self.i < len(text) and text[self.i] != "\n":
                    self._advance()
            elif text.startswith("/*", self.i):
                start = self._pos()
                end = text.find("*/", self.i + 2)
                if end < 0:
                    raise ConfigError("unterminated comment", start, "close it with '*/'")
                self._advance(end + 2 - self.i)
            else:
                return

    def _at_line_start(self) -> bool:
        j = self.i - 1
        while j >= 0 and self.text[j] in " \t":
            j -= 1
        return j < 0 or self.text[j] == "\n"

    def _line_directive(self) -> None:
        """`# 12 "file"` or `#line 12 "file"` (C preprocessor style) renames the place that follows."""
        start = self._pos()
        end = self.text.find("\n", self.i)
        end = len(self.text) if end < 0 else end
        words = self.text[self.i + 1:end].split()
        if words and words[0] == "line":
            words = words[1:]
        if not words or not _is_number(words[0]):
            raise ConfigError("bad line directive", start, 'write # LINE "FILE" (or remove the #)')
        line = int(words[0])
        if line < 1:
            raise ConfigError("line directive: line numbers start at 1", start,
                              'write # LINE "FILE" with LINE >= 1')
        name = words[1].strip('"') if len(words) > 1 else self.line_file
        self._advance(end - self.i)
        if self.i < len(self.text):
            self._advance()  # the newline
        self.line, self.line_file = line, name

    # -- tokens --------------------------------------------------------------------------

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._read()
        return self._peeked

    def next(self) -> Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def _read(self) -> Token:
        self._skip_space()
        pos = self._pos()
        text = self.text
        if self.i >= len(text):
            return Token("eof", "", pos)
        for p in _PUNCT:
            if text.startswith(p, self.i):
                self._advance(len(p))
                return Token(p, p, pos)
        ch = text[self.i]
        if ch == "$":
            j = self.i + 1
            while j < len(text) and (text[j] in _ASCII_ALNUM or text[j] == "_"):
                j += 1
            if j == self.i + 1:
                raise ConfigError("'$' must start a parameter name like $dev", pos)
            word = text[self.i:j]
            self._advance(j - self.i)
            return Token("var", word, pos)
        if _ident_char(ch) and ch != "/":
            j = self.i
            while j < len(text) and _ident_char(text[j]) and not (
                    text.startswith("//", j) or text.startswith("/*", j)):
                j += 1
            word = text[self.i:j]
            self._advance(j - self.i)
            return self._classify_word(word, pos)
        raise ConfigError(f"unexpected character {ch!r}", pos,
                          "element names use letters, digits, '_', '@' and '/'")

    def _classify_word(self, word: str, pos: Pos) -> Token:
        if _is_number(word):
            if int(word) > MAX_PORT:
                raise ConfigError(f"port number {word} is too large", pos,
                                  f"ports are numbered 0 to {MAX_PORT}")
            return Token("number", word, pos)
        if word.endswith("/"):
            raise ConfigError(f"identifier '{word}' ends with '/'", pos,
                              "a '/' separates name components, as in outer/inner")
        if any(_is_number(part) for part in word.split("/")):
            raise ConfigError(f"identifier '{word}' has a component made only of digits", pos,
                              "Click names like 'x/1' are not allowed; use 'x/p1'")
        if word in KEYWORDS:
            return Token("keyword", word, pos)
        return Token("ident", word, pos)

    def config_string(self, open_pos: Pos) -> ConfigArg:
        """The raw text after a consumed `(` up to its balancing `)`, which is consumed too.

        Jumps between the characters that matter (regex search), so a config
        string of megabytes (a big route table) costs no Python work per byte.
        """
        assert self._peeked is None, "config_string needs the lexer right after '('"
        text = self.text
        begin, begin_pos = self.i, self._pos()
        depth, i = 0, self.i
        while True:
            m = _CONFIG_STOP.search(text, i)
            if m is None:
                self._advance_to(len(text))
                raise ConfigError("unterminated configuration string", open_pos,
                                  "this '(' has no matching ')'")
            tok, i = m.group(0), m.end()
            if tok in "\"'":
                close = _QUOTE_CLOSE[tok].search(text, i)
                while close is not None and close.group(0) != tok:
                    close = _QUOTE_CLOSE[tok].search(text, close.end())
                if close is None:
                    self._advance_to(m.start())
                    raise ConfigError("unterminated quoted string in configuration", self._pos(),
                                      f"this {tok} is never closed")
                i = close.end()
            elif tok == "//":
                nl = text.find("\n", i)
                i = len(text) if nl < 0 else nl
            elif tok == "/*":
                close = text.find("*/", i)
                i = len(text) if close < 0 else close + 2
            elif tok == "(":
                depth += 1
            elif depth:
                depth -= 1
            else:
                self._advance_to(i)
                return make_arg(text[begin:m.start()], begin_pos)

    def _advance_to(self, index: int) -> None:
        """Move to `index`, updating line and column from the newlines skipped."""
        segment = self.text[self.i:index]
        newlines = segment.count("\n")
        if newlines:
            self.line += newlines
            self.col = len(segment) - segment.rfind("\n")
        else:
            self.col += len(segment)
        self.i = index
