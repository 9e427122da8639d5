"""The compiler: a checked element graph becomes one native pipeline function.

    pipeline = compile_graph(graph)          # host target, Numba cfunc
    arena = pipeline.new_arena()
    HostDriver(pipeline.address, arena).run(packets)

The generated source is written to a cache directory named by its hash, so
Numba's on-disk cache (`cache=True`) makes a second compile of the same config
load in well under a second.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nfv
from nfv.compile.codegen import generate
from nfv.compile.plan import Plan, make_plan
from nfv.graph import Graph


def cache_dir() -> Path:
    """Where generated pipelines and Numba's cache live ($NFV_CACHE, else ~/.cache/nfv)."""
    root = os.environ.get("NFV_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nfv")
    path = Path(root) / "pipelines"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def build_lock(path: Path):
    """Hold an exclusive lock on `path`.lock while building what `path` names, so a
    second process compiling the same thing waits and then finds it in the cache
    (instead of compiling it again beside the first)."""
    import fcntl

    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """A hash of every source file the generated pipeline compiles in.

    Numba's cache checks only the cached function's own file, so a pipeline
    that inlines a kernel must change name when any kernel changes.
    """
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import nfv.classify
        import nfv.elements._kernels
        import nfv.tables

        roots = [Path(nfv.elements._kernels.__file__).parent, Path(nfv.tables.__file__).parent,
                 Path(nfv.classify.__file__).parent, Path(__file__).parent,
                 Path(nfv.__file__).parent / "jit.py"]
        digest = hashlib.sha256(nfv.__version__.encode())
        for root in roots:
            for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
                digest.update(path.read_bytes())
        _FINGERPRINT = digest.hexdigest()[:16]
    return _FINGERPRINT


@dataclass
class Pipeline:
    """A compiled pipeline: its plan, generated source, and the C address of its entry."""

    plan: Plan
    source: str
    address: int
    module: object  # keeps the cfunc (and so the machine code) alive

    def new_arena(self) -> np.ndarray:
        return self.plan.new_arena()

    def read(self, arena: np.ndarray, element: str, handler: str) -> str:
        """Read handler `element.handler` from an arena (the element's or a generic one)."""
        return self.plan.read(arena, element, handler)


def compile_graph(graph: Graph, target: str = "host", boundscheck: bool = False) -> Pipeline:
    """Plan, generate and compile; ConfigErrors for graphs that cannot be compiled."""
    plan = make_plan(graph, target)
    source = f"# nfv {nfv.__version__}, kernels {code_fingerprint()}\n" + generate(plan, boundscheck)
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    path = cache_dir() / f"pipeline_{digest}.py"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(source)
        tmp.replace(path)  # atomic: concurrent compiles of one config never see half a file
    name = f"nfv_pipeline_{digest}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        # Registered before running: Numba's cache records the defining module by name.
        sys.modules[name] = module
        try:
            with build_lock(path):  # running it compiles (or loads Numba's cache entry)
                spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return Pipeline(plan, source, module.pipeline.address, module)
