"""Classifier patterns turned into straight-line code mean what the decision table means.

The generated kernel is run as plain Python here (its decorator replaced by the
identity) against the reference evaluator `decide.reference_classifier`, on
random patterns and packets; the compiled path is covered by the element tests.
"""
from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from nfv import drops
from nfv.classify.decide import reference_classifier
from nfv.classify.patterns import parse_pattern
from nfv.elements.classify import pattern_source


def run_generated(patterns, packet: bytes) -> int:
    scope = {"kernel": lambda f: f}
    exec(pattern_source("k", patterns), scope)
    meta = [SimpleNamespace(offset=3, length=len(packet))]
    return scope["k"](b"\0\0\0" + packet, meta, 0)


def expected(patterns, packet: bytes) -> int:
    port = reference_classifier(patterns, packet)
    return port if port >= 0 else -drops.FILTERED


def test_ethertype_dispatch():
    patterns = [parse_pattern(t) for t in ("12/0806", "12/0800", "-")]
    assert run_generated(patterns, bytes(12) + b"\x08\x06") == 0
    assert run_generated(patterns, bytes(12) + b"\x08\x00" + bytes(20)) == 1
    assert run_generated(patterns, bytes(12) + b"\x86\xdd") == 2
    assert run_generated(patterns, b"\x08") == 2  # too short for 12/0806: falls to '-'


def test_negation_on_a_short_packet_matches():
    patterns = [parse_pattern("!20/11")]
    assert run_generated(patterns, bytes(10)) == 0
    assert run_generated(patterns, bytes(20) + b"\x11") == -drops.FILTERED


clause = st.builds(
    lambda neg, off, val, mask: f"{'!' if neg else ''}{off}/{val.hex()}%{mask.hex()}",
    st.booleans(), st.integers(0, 24),
    st.binary(min_size=1, max_size=3), st.binary(min_size=3, max_size=3))


@st.composite
def pattern_text(draw):
    if draw(st.integers(0, 9)) == 0:
        return "-"
    clauses = draw(st.lists(clause, min_size=1, max_size=3))
    fixed = []
    for c in clauses:  # the mask must be as long as the value
        head, _, mask = c.partition("%")
        value = head.split("/")[1]
        fixed.append(f"{head}%{mask[:len(value)]}")
    return " ".join(fixed)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(pattern_text(), min_size=1, max_size=4), st.binary(max_size=40))
def test_generated_code_agrees_with_the_reference(texts, packet):
    patterns = [parse_pattern(t) for t in texts]
    assert run_generated(patterns, packet) == expected(patterns, packet)
