"""Property tests: whatever the text, `nfv check` answers with positioned errors, never a crash.

Mutants of the shipped configs and of the valid conformance examples (tokens
deleted, duplicated, swapped, inserted; text truncated; characters replaced by
random unicode) go through the in-process API and, fewer of them, through the
CLI.  Only `NfvError`s may come out, and every `ConfigError` must point inside
the file.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CONFIGS, FILE, VALID_FILES, run_nfv
from nfv.errors import ConfigError, ConfigErrors, NfvError
from nfv.graph import build_graph
from nfv.lang.parser import parse_text

SOURCES = [p.read_text(encoding="utf-8") for p in CONFIGS + VALID_FILES]
SOURCES += [
    # small ones, so that mutations often land on the interesting parts
    "c :: Classifier(12/0800, -); FromDevice(0) -> c; c [0, 1] => Counter, Null -> Discard",
    "elementclass A { $x, KEY $k | input -> Paint($x) -> Strip($k) -> output || input -> output }\n"
    "FromDevice(0) -> a :: A(1, KEY 2) -> ( input -> output ) -> ToDevice(1)",
    'define($a 1)\nFromDevice(${a}) -> Print("q)" \'$a\' /* c */) -> Discard // end',
    '# 3 "x.click"\nrequire(package p) n1, n2 :: Idle; n1 -> [1] n2 [0] -> Discard; Idle -> [0] n2',
]

# Rough tokens: whitespace, words, parameters, multi-character punctuation, any other char.
_TOKEN = re.compile(r"\s+|[A-Za-z0-9_@/.]+|\$\{?\w*\}?|->|=>|::|\|\||\.\.\.|.", re.S)
INSERTS = ["->", "=>", "::", "(", ")", "[", "]", "{", "}", "|", "||", "...", ",", ";",
           "input", "output", "elementclass", "define", "require", "provide", "$x", "${y-1}",
           "/*", "*/", "//", '"', "'", "\\", "\n", "[0]", "[1,2]", "[²]", "0", "65536", "²",
           "Idle", "Counter", "Classifier", "x/1", "a/", "@", "#", "\n# 7 \"f\"\n", "\t"]

# Port numbers stay moderate on purpose: an absurd port number on an element with
# unbounded ports is a known way to make the checker slow (test_cli covers it with a
# timeout); here it would only make this test hang instead of fail.

_DIRECTIVE = re.compile(r"^[ \t]*#", re.M)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


@st.composite
def mutants(draw) -> str:
    tokens = tokenize(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "truncate",
                                   "unicode"]))
        if op == "delete":
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "insert":
            tokens.insert(i, draw(st.sampled_from(INSERTS)))
        elif op == "truncate":
            tokens = tokens[:i]
            text = "".join(tokens)
            if text:
                cut = draw(st.integers(0, len(text)))
                tokens = [text[:cut]]
        else:
            tok = tokens[i]
            if tok:
                k = draw(st.integers(0, len(tok) - 1))
                ch = draw(st.characters(blacklist_categories=("Cs",)))
                tokens[i] = tok[:k] + ch + tok[k + 1:]
    return "".join(tokens)


def check_in_process(text: str) -> None:
    """Build `text`; only NfvErrors may escape, and ConfigErrors must point inside the file."""
    try:
        build_graph(parse_text(text, FILE))
        return
    except ConfigErrors as e:
        errors = e.errors
        assert errors, "ConfigErrors without errors"
    except ConfigError as e:
        errors = [e]
    except NfvError:
        return
    nlines = text.count("\n") + 1
    renamed = bool(_DIRECTIVE.search(text))  # line directives may rename file and line
    for err in errors:
        assert isinstance(err, ConfigError)
        assert err.message and isinstance(err.message, str)
        assert err.pos is not None, f"error without a position: {err}"
        assert err.pos.col >= 1 and err.pos.line >= 1, str(err)
        if err.pos.file == FILE and not renamed:
            assert err.pos.line <= nlines + 1, f"{err} (file has {nlines} lines)"


@settings(max_examples=2000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutants())
def test_mutants_only_raise_positioned_config_errors(text):
    check_in_process(text)


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("ab(){}[]<>-=:;,|.$\"'/*\\#\n 01²@_") + INSERTS),
                max_size=40).map("".join))
def test_random_token_soup(text):
    check_in_process(text)


def test_every_source_is_valid_before_mutation():
    for text in SOURCES:
        build_graph(parse_text(text, FILE))


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.lists(mutants(), min_size=10, max_size=10))
def test_cli_on_mutants(texts):
    # One `nfv check` run over several mutant files keeps the subprocess count low.
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, text in enumerate(texts):
            path = Path(tmp, f"m{i}.click")
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        proc = run_nfv("check", *paths, timeout=120)
        assert proc.returncode in (0, 1), proc.stderr
        assert "internal error" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        for graph_format in ("click", "dot"):
            g = run_nfv("graph", paths[0], "--format", graph_format, timeout=120)
            assert g.returncode in (0, 1) and "internal error" not in g.stderr, g.stderr
