"""Shared helpers for the language, graph, CLI and fuzz tests.

Error positions are never copied from nfv's output: a test writes its config
with a marker such as ``⟨here⟩`` (or ``⟨1⟩``, ``⟨2⟩`` for several) where the
error belongs; `locate` removes the markers and computes each one's line and
column (1-based, columns count characters) from its place in the text.
"""
from __future__ import annotations

import os
import re
import struct
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


# -- oracles --------------------------------------------------------------------------


def ones_sum(data: bytes) -> int:
    """One's-complement 16-bit sum (RFC 1071), written here for the tests: checksums
    are checked against this, never against nfv's own helpers."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


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


# tests/unikernel/conftest.py is a module named `conftest` too, and whichever was
# imported last is sys.modules["conftest"]: the test files here that import helpers
# from this one (`from conftest import ROOT`, at import time or inside a test) get it
# back before they are collected and before each of their tests runs.
_THIS = sys.modules[__name__]


def _this_conftest_for(path) -> None:
    if Path(str(path)).parent == TESTS:
        sys.modules["conftest"] = _THIS


def pytest_collectstart(collector):
    _this_conftest_for(getattr(collector, "path", ""))


def pytest_runtest_setup(item):
    _this_conftest_for(item.path)


__all__ = [
    "ones_sum", "ROOT", "CONFIGS", "VALID_FILES", "FILE", "NfvError", "locate", "col_of", "build",
    "errors_of", "expect_error", "conns", "classes", "args_of", "only_anon", "anon_names",
    "run_nfv",
]


# -- compiled network functions --------------------------------------------------------
#
# Every test that takes `nf_factory` runs once per target: `[host]` (the config
# compiled for the host, packets through the Cython driver) and `[unikernel]`
# (the config built into an image and booted under QEMU, packets over its NICs).
# Their expectations are the same, so a test passing on both is the two targets
# agreeing byte for byte.
#
# A compile costs Numba time (and the unikernel an ahead-of-time compile and a
# link), so the factory shares one NF per (target, config, defines) for the whole
# session; each hand-out resets it (a fresh arena on the host, a fresh boot in the
# VM). A booted VM busy-polls a CPU: at most one is alive at a time (handing out a
# unikernel NF stops every other one's VM), none outlives the test that booted it,
# and none outlives the session.
#
# Tests that cannot run in the VM are marked `@pytest.mark.host_only("why")` and
# run as `[host]` only; HOST_ONLY_ELSEWHERE below names those in files whose
# owners have not marked them yet.

TARGETS = ("host", "unikernel")

#: (test file, test function) -> why it runs on the host only. Prefer the marker in
#: the test file; this list is for tests in files this conftest does not own.
HOST_ONLY_ELSEWHERE = {
    ("test_print.py", "test_print_passes_packets_and_sees_each"):
        "reads Print's copies, which only the host collects to print them",
    ("test_classify_specialise.py", "test_replaced_rules_take_effect_without_recompiling"):
        "rewrites the classifier's tables in the host arena (nf.host.arena)",
    ("test_router_big.py", "test_big_table_with_warm_up_matches_the_oracle"):
        "reads the host pipeline's generated source (nf.host.pipeline.source)",
    ("test_malformed.py", "test_driver_path_with_the_same_frames"):
        "the host driver's path; its configs use ToDump, FromDump and sources, and its fuzz "
        "frames include a zero-length and an oversized one (the VM's NICs carry 1..1920 bytes)",
    ("test_malformed.py", "test_nf_send_with_the_same_frames"):
        "its fuzz frames include a zero-length and an oversized one (the VM's NICs carry "
        "1..1920 bytes)",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "host_only(reason): the test runs on the host target only "
                   "(nf_factory is not parametrized with the unikernel)")


def _host_only_reason(metafunc) -> str | None:
    marker = metafunc.definition.get_closest_marker("host_only")
    if marker is not None:
        return (marker.args[0] if marker.args else marker.kwargs.get("reason")) or "host only"
    return HOST_ONLY_ELSEWHERE.get((Path(metafunc.module.__file__).name,
                                    metafunc.function.__name__))


def unikernel_missing() -> str | None:
    """Why the unikernel target cannot run on this machine, or None."""
    import shutil

    for tool in ("qemu-system-x86_64", "gcc"):
        if shutil.which(tool) is None:
            return f"the unikernel target needs {tool}"
    return None


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc):
    """`target` is a parameter of every test using nf_factory: [host] and [unikernel]."""
    if "nf_factory" not in metafunc.fixturenames:
        return
    targets = ["host"] if _host_only_reason(metafunc) else list(TARGETS)
    metafunc.parametrize("target", targets, ids=targets, indirect=True)


@pytest.fixture
def target(request):
    """The target nf_factory compiles for ("host" when a test is not parametrized)."""
    name = getattr(request, "param", "host")
    if name == "unikernel":
        missing = unikernel_missing()
        if missing:
            pytest.skip(missing)
    return name


@pytest.fixture(scope="session")
def nf_cache():
    """{(target, config, defines): NF}; every unikernel VM is stopped at the session's end."""
    cache: dict = {}
    yield cache
    stop_vms(cache.values())


def stop_vms(nfs, keep=None) -> None:
    """Stop the VM of every unikernel NF in `nfs` except `keep` (the NFs stay usable:
    their next use boots a new VM)."""
    for nf in list(nfs):
        if nf is not keep and getattr(nf, "target", None) == "unikernel" and nf.host is not None:
            nf.host.close()


def new_nf(config: str, target: str, **defines):
    """nfv.testing.NF(config, target, **defines) (a unikernel gets the RAM its image
    needs: 8 MiB holds about 5 NICs, a config using devices up to 7 needs ~11 MiB)."""
    from nfv.testing import NF

    return NF(config, target=target, **defines)


@pytest.fixture
def nf_factory(nf_cache, target):
    """nf_factory(config_text_or_path, **defines) -> nfv.testing.NF for this test's
    target, with fresh state (host: a fresh arena; unikernel: a fresh boot)."""

    def make(config: str, **defines):
        key = (target, config, tuple(sorted(defines.items())))
        nf = nf_cache.get(key)
        if isinstance(nf, Exception):
            # a compile or build that failed once fails the same way: do not pay for it again
            pytest.fail(f"building this config for the {target} failed earlier in the "
                        f"session: {type(nf).__name__}: {nf}")
        if nf is None:
            try:
                nf = nf_cache[key] = new_nf(config, target, **defines)
            except Exception as e:
                nf_cache[key] = e
                raise
        stop_vms(nf_cache.values(), keep=nf)
        nf.reset()
        return nf

    yield make
    stop_vms(nf_cache.values())


# -- work started in the background -----------------------------------------------------
#
# Compiling is most of the suite's time, and a test mostly uses one core.  So when
# collection ends two background processes start on the other core, at nice 19 (a
# busy-polling VM under test must not starve):
#  - test_malformed.py's bounds-checked build (minutes of compiling in a subprocess
#    whose result only its tests read);
#  - tests/prebuild.py, which builds the network functions named by the collected
#    modules' PREBUILD lists, in test order, into nfv's cache.  A test module
#    declares what its tests will compile:
#        PREBUILD = [(CONFIG, "both")]       # or "host" / "unikernel"
#        PREBUILD = [(CONFIG, "host", {"NAME": "value"})]
#    nfv's build locks make a test that reaches a config being built wait for it,
#    then load it from the cache; nothing is compiled twice.

_BACKGROUND: list = []


def prebuild_jobs(items) -> list[dict]:
    jobs, seen = [], set()
    targets = {"both": TARGETS, "host": ("host",), "unikernel": ("unikernel",)}
    for item in items:
        module = getattr(item, "module", None)
        if module is None or module in seen:
            continue
        seen.add(module)
        for entry in getattr(module, "PREBUILD", ()):
            config, which = str(entry[0]), entry[1]
            defines = {k: str(v) for k, v in (entry[2] if len(entry) > 2 else {}).items()}
            for target in targets[which]:
                if target == "unikernel" and unikernel_missing():
                    continue
                jobs.append({"config": config, "target": target, "defines": defines})
    return jobs


class Prebuild:
    def __init__(self, jobs: list[dict], work: Path):
        import json

        (work / "jobs.json").write_text(json.dumps(jobs))
        self.log = work / "prebuild.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["nice", "-n", "19", sys.executable, str(TESTS / "prebuild.py"),
                 str(work / "jobs.json")],
                cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # with its AOT compile subprocesses
            self.proc.wait()


def pytest_collection_finish(session):
    factory = session.config._tmp_path_factory
    for item in session.items:
        if item.name == "test_checked_build_never_raises_or_reads_out_of_bounds":
            _BACKGROUND.append(item.module.start(factory))
            break
    jobs = prebuild_jobs(session.items)
    if jobs and os.environ.get("NFV_PREBUILD", "1") != "0":
        _BACKGROUND.append(Prebuild(jobs, factory.mktemp("prebuild")))


def pytest_sessionfinish(session):
    for job in _BACKGROUND:
        job.stop()
