"""Shared helpers for the language, graph, CLI and fuzz tests.

Error positions are never copied from nfv's output: a test writes its config
with a marker such as ``⟨here⟩`` (or ``⟨1⟩``, ``⟨2⟩`` for several) where the
error belongs; `locate` removes the markers and computes each one's line and
column (1-based, columns count characters) from its place in the text.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nfv.errors import ConfigError, ConfigErrors, NfvError

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CONFIGS = sorted((ROOT / "configs").glob("*.click"))
VALID_DIR = TESTS / "click" / "valid"
VALID_FILES = sorted(VALID_DIR.glob("*.click"))
NFV = ROOT / ".venv" / "bin" / "nfv"

FILE = "t.click"
_MARKER = re.compile(r"⟨([^⟩]*)⟩")


# -- markers ---------------------------------------------------------------------------


def locate(marked: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """Remove the ⟨name⟩ markers; return (clean text, {name: (line, col)})."""
    clean: list[str] = []
    where: dict[str, tuple[int, int]] = {}
    last = 0
    for m in _MARKER.finditer(marked):
        clean.append(marked[last:m.start()])
        before = "".join(clean)
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        assert m.group(1) not in where, f"marker ⟨{m.group(1)}⟩ used twice"
        where[m.group(1)] = (line, col)
        last = m.end()
    clean.append(marked[last:])
    return "".join(clean), where


def col_of(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """(line, col) of the nth occurrence of `needle` in `text`."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    before = text[:i]
    return before.count("\n") + 1, i - (before.rfind("\n") + 1) + 1


# -- the in-process API ----------------------------------------------------------------


def build(text: str, defines: dict[str, str] | None = None, file: str = FILE):
    """parse_text + build_graph; returns the Graph (errors propagate)."""
    from nfv.graph import build_graph
    from nfv.lang.parser import parse_text

    return build_graph(parse_text(text, file), defines=defines)


def errors_of(text: str, defines: dict[str, str] | None = None,
              file: str = FILE) -> list[ConfigError]:
    """The errors reported for `text` (fails the test if it is accepted)."""
    try:
        build(text, defines, file)
    except ConfigErrors as e:
        assert e.errors, "ConfigErrors with no errors"
        return list(e.errors)
    except ConfigError as e:
        return [e]
    pytest.fail(f"config was accepted but should fail:\n{text}")


def expect_error(marked: str, fragment: str, hint: str | None = None, *,
                 only: bool = True, marker: str = "here", file: str = FILE,
                 defines: dict[str, str] | None = None) -> ConfigError:
    """Assert an error containing `fragment` is reported at ⟨marker⟩.

    only: it must be the one and only error (one mistake, one message).
    hint: a fragment the error's hint must contain.
    """
    text, where = locate(marked)
    line, col = where[marker]
    errors = errors_of(text, defines, file)
    shown = "\n".join(f"  {e} (hint: {e.hint})" for e in errors)
    matching = [e for e in errors if fragment in e.message]
    assert matching, f"no error containing {fragment!r}; got:\n{shown}"
    at = [e for e in matching if e.pos is not None and
          (e.pos.file, e.pos.line, e.pos.col) == (file, line, col)]
    assert at, f"error {fragment!r} expected at {file}:{line}:{col}; got:\n{shown}"
    if only:
        assert len(errors) == 1, f"expected exactly one error; got:\n{shown}"
    err = at[0]
    if hint is not None:
        assert err.hint is not None and hint in err.hint, \
            f"hint {err.hint!r} does not contain {hint!r}"
    return err


def conns(graph) -> set[tuple[str, int, str, int]]:
    return {c.key for c in graph.connections}


def classes(graph) -> dict[str, str]:
    return {name: el.class_name for name, el in graph.elements.items()}


def args_of(graph, name: str) -> list[str]:
    return graph.elements[name].config_args()


def only_anon(graph, cls: str) -> str:
    """The name of the one element of class `cls` (anonymous, so its name is generated)."""
    names = [n for n, el in graph.elements.items() if el.class_name == cls]
    assert len(names) == 1, f"expected one {cls}, got {names}"
    return names[0]


def anon_names(graph, cls: str, prefix: str = "") -> list[str]:
    """Generated names of the anonymous `cls` elements under `prefix`, in graph order;
    checks Click's naming principle `prefix + cls@N` with N a number."""
    out = []
    for name, el in graph.elements.items():
        if el.class_name == cls and name.startswith(prefix + cls + "@"):
            suffix = name[len(prefix + cls) + 1:]
            assert suffix.isdigit() and suffix.isascii(), f"bad generated name {name!r}"
            out.append(name)
    return out


# -- the command line ------------------------------------------------------------------


def run_nfv(*args: str, cwd: Path | str = ROOT, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run the nfv CLI; never may a Python traceback reach the user."""
    cmd = [str(NFV)] if NFV.exists() else [sys.executable, "-m", "nfv.cli"]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(cmd + [str(a) for a in args], cwd=str(cwd), capture_output=True,
                          text=True, timeout=timeout, input=input, env=env,
                          encoding="utf-8", errors="replace")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout
    return proc


__all__ = [
    "ROOT", "CONFIGS", "VALID_FILES", "FILE", "NfvError", "locate", "col_of", "build",
    "errors_of", "expect_error", "conns", "classes", "args_of", "only_anon", "anon_names",
    "run_nfv",
]


# -- compiled network functions --------------------------------------------------------
#
# A compile costs Numba time, so every test that runs a config shares one NF per
# (config, defines) for the whole session.  Tests that need fresh counters use
# `fresh_nf`, which shares the compiled pipeline but gets its own arena.


@pytest.fixture(scope="session")
def nf_cache():
    return {}


@pytest.fixture
def nf_factory(nf_cache):
    """nf_factory(config_text_or_path, **defines) -> nfv.testing.NF with a fresh arena."""
    from nfv.testing import NF

    def make(config: str, **defines):
        key = (config, tuple(sorted(defines.items())))
        nf = nf_cache.get(key)
        if nf is None:
            nf = nf_cache[key] = NF(config, **defines)
        nf.reset()
        return nf

    return make
