"""User-facing errors with source positions, and their compiler-style rendering.

Everything a user can get wrong (a config, an argument, a command line) is
reported as a `ConfigError` carrying a `Pos`; the CLI renders it as
``file:line:col: error: message`` with the source line and a caret.  A Python
traceback is never the answer to bad input.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pos:
    """A place in a source file; line and col are 1-based, col counts characters."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class NfvError(Exception):
    """Base of every error nfv reports to a user (never shown as a traceback)."""


class ArgError(ValueError):
    """An argument value did not parse.

    Raised by the value parsers in `nfv.argtypes`. `offset` is the character
    index inside the argument text where the problem is (None: the whole
    argument); the caller turns it into a `Pos` in the config file.
    """

    def __init__(self, message: str, offset: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


class ConfigError(NfvError):
    """One problem in a config, at a position, with an optional hint."""

    def __init__(self, message: str, pos: Pos | None = None, hint: str | None = None,
                 severity: str = "error"):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint
        self.severity = severity

    def __str__(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        return f"{where}{self.severity}: {self.message}"


class ConfigErrors(NfvError):
    """Several problems found in one pass (the checker reports them all at once)."""

    def __init__(self, errors: list[ConfigError]):
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def render(error: ConfigError, sources: dict[str, str] | None = None) -> str:
    """Render one error the way compilers do: location, message, source line, caret, hint.

    `sources` maps file names to their text, used to quote the offending line.
    """
    lines = [str(error)]
    text = (sources or {}).get(error.pos.file) if error.pos else None
    if text is not None:
        source_lines = text.splitlines()
        if 1 <= error.pos.line <= len(source_lines):
            line = source_lines[error.pos.line - 1].replace("\t", " ")
            lines.append(f"    {line}")
            lines.append("    " + " " * max(error.pos.col - 1, 0) + "^")
    if error.hint:
        lines.append(f"  hint: {error.hint}")
    return "\n".join(lines)
