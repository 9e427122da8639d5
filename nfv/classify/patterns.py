"""Click `Classifier` patterns: byte-offset / value / mask clauses.

A pattern is one configuration argument of `Classifier(...)`: space-separated
clauses, all of which must hold (AND)::

    12/0800             bytes 12-13 equal 08 00 (an IPv4 ethertype)
    12/0806 20/0001     ARP request
    12/86dd%ffff        value with an explicit mask (only 1-bits are compared)
    12/08??             '?' is a don't-care nibble
    !12/0800            the clause must NOT match
    -                   matches every packet (must be the whole pattern)

OFFSET is a decimal byte offset into the packet; VALUE and MASK are hex with
the same even number of digits.  `!` may be glued to the clause or stand
alone before it.

`parse_pattern` returns a `ClassifierPattern` whose clauses carry the value
already ANDed with the effective mask (explicit mask, with `?` nibbles
cleared), so a compiler tests ``packet[offset + i] & mask[i] == value[i]``.
A packet too short to hold a clause's bytes does not match that clause (as in
Click); whether a negated clause then matches is the compiler's decision.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nfv.errors import ArgError

__all__ = ["Clause", "ClassifierPattern", "MAX_OFFSET", "parse_pattern", "describe"]

#: Largest accepted byte offset; no packet is longer than an IP datagram's 64 KiB.
MAX_OFFSET = 65535

_HEX = "0123456789abcdefABCDEF"
_EXAMPLE = "e.g. 12/0800 (decimal offset, hex value) or 12/86dd%ffff"


@dataclass(frozen=True)
class Clause:
    """One `OFFSET/VALUE%MASK` clause: `packet[offset:offset+len(value)] & mask == value`.

    `value` is already masked; `mask` has the same length as `value`.
    `negated` is True for a clause written with a leading `!`.
    """

    offset: int
    value: bytes
    mask: bytes
    negated: bool = False


@dataclass(frozen=True)
class ClassifierPattern:
    """A whole Classifier pattern: every clause must hold; `match_all` is the `-` pattern."""

    clauses: tuple[Clause, ...]
    match_all: bool = False


def parse_pattern(text: str) -> ClassifierPattern:
    """Parse one Classifier configuration argument; raise ArgError with an offset into `text`."""
    words = [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]
    if not words:
        raise ArgError("empty pattern", len(text), "use '-' to match every packet")
    if len(words) == 1 and words[0][1] == "-":
        return ClassifierPattern((), match_all=True)
    clauses: list[Clause] = []
    pending_not: int | None = None      # position of a free-standing '!' waiting for its clause
    for pos, word in words:
        if word == "-":
            raise ArgError("'-' must be the whole pattern", pos,
                           "remove '-', or remove the other clauses")
        if word == "!":
            if pending_not is not None:
                raise ArgError("'!' given twice", pos, "one '!' negates the clause after it")
            pending_not = pos
            continue
        clauses.append(_clause(word, pos, pending_not is not None))
        pending_not = None
    if pending_not is not None:
        raise ArgError("'!' needs a clause after it", pending_not, _EXAMPLE)
    return ClassifierPattern(tuple(clauses))


def _clause(word: str, pos: int, negated: bool) -> Clause:
    """One clause `[!]OFFSET/VALUE[%MASK]` found at `pos` in the argument."""
    start = 0
    if word.startswith("!"):
        if negated or word.startswith("!!"):
            raise ArgError("'!' given twice", pos + word.startswith("!!"),
                           "one '!' negates the clause after it")
        negated, start = True, 1
    slash = word.find("/", start)
    if slash < 0:
        raise ArgError(f"expected OFFSET/VALUE, got {_show(word[start:])}", pos + start, _EXAMPLE)
    offset = _offset(word[start:slash], pos + start)
    value_text, percent, mask_text = word[slash + 1:].partition("%")
    value_pos = pos + slash + 1
    mask_pos = value_pos + len(value_text) + 1
    values, care = _nibbles(value_text, value_pos, "value", allow_dont_care=True)
    if percent:
        mask_nibbles, _ = _nibbles(mask_text, mask_pos, "mask", allow_dont_care=False)
        if len(mask_nibbles) != len(values):
            raise ArgError(f"mask has {len(mask_nibbles)} hex digits but value has {len(values)}",
                           mask_pos, "give VALUE and MASK the same number of hex digits")
        care = [c & m for c, m in zip(care, mask_nibbles)]
    value = _pack([v & c for v, c in zip(values, care)])
    return Clause(offset, value, _pack(care), negated)


def _offset(text: str, pos: int) -> int:
    """The decimal OFFSET before '/'."""
    if not text:
        raise ArgError("missing offset before '/'", pos, _EXAMPLE)
    for i, ch in enumerate(text):
        if ch not in "0123456789":
            raise ArgError(f"offset {_show(text)} is not a decimal number", pos + i,
                           "offsets are decimal byte counts, e.g. 12/0800")
    # Compare the digit count first: int() refuses very long digit strings.
    if len(text.lstrip("0")) > 5 or int(text) > MAX_OFFSET:
        raise ArgError(f"offset {_show(text)[1:-1]} out of range 0-{MAX_OFFSET}", pos)
    return int(text)


def _nibbles(text: str, pos: int, what: str, allow_dont_care: bool) -> tuple[list[int], list[int]]:
    """Hex digits of a VALUE or MASK as (nibble values, nibble care-masks)."""
    if not text:
        sep = "/" if what == "value" else "%"
        raise ArgError(f"missing {what} after '{sep}'", pos, _EXAMPLE)
    values, care = [], []
    for i, ch in enumerate(text):
        if ch == "?" and allow_dont_care:
            values.append(0)
            care.append(0)
        elif ch in _HEX:
            values.append(int(ch, 16))
            care.append(0xF)
        else:
            hint = ("'?' (don't care) is allowed in the value, not the mask" if ch == "?" else
                    "use hex digits 0-9 a-f" + (" and '?'" if allow_dont_care else ""))
            raise ArgError(f"{_show(ch)} is not a hex digit in {what} {_show(text)}", pos + i, hint)
    if len(values) % 2:
        raise ArgError(f"{what} {_show(text)} has an odd number of hex digits", pos,
                       "each byte is two hex digits, e.g. 08 rather than 8")
    return values, care


def _pack(nibbles: list[int]) -> bytes:
    """Pairs of nibbles (high first) as bytes."""
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _show(text: str) -> str:
    """Quote user text for a message, shortened and with unprintable characters escaped."""
    if len(text) > 24:
        text = text[:21] + "..."
    return "'" + "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text) + "'"


def describe(pattern: ClassifierPattern) -> str:
    """Print a pattern back in canonical Click syntax (parses back to an equal pattern).

    Whole-nibble masks are written with '?' (`12/08??`); any other mask as `%MASK`.
    """
    if pattern.match_all:
        return "-"
    return " ".join(_describe_clause(c) for c in pattern.clauses)


def _describe_clause(clause: Clause) -> str:
    bang = "!" if clause.negated else ""
    mask_nibbles = [n for b in clause.mask for n in (b >> 4, b & 0xF)]
    if all(n in (0, 0xF) for n in mask_nibbles):
        digits = "".join(f"{b:02x}" for b in clause.value)
        text = "".join(d if n else "?" for d, n in zip(digits, mask_nibbles))
        return f"{bang}{clause.offset}/{text}"
    return f"{bang}{clause.offset}/{clause.value.hex()}%{clause.mask.hex()}"
