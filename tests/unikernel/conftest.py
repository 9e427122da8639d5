"""Images for the unikernel runtime tests, built once per session.

The pipeline is tests/unikernel/swap_pipeline.c, not a Numba object: these
tests are about the runtime (boot, driver, memory, console, exits), and a C
stand-in keeps them fast and independent of the compiler.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nfv.unikernel.link import link_image

HERE = Path(__file__).resolve().parent
DATAPLANE = HERE.parent.parent / "dataplane"

@pytest.fixture(scope="session")
def pipeline_object(tmp_path_factory) -> Path:
    """The test pipeline, compiled like a userland object (SSE allowed, as Numba's is)."""
    out = tmp_path_factory.mktemp("uk") / "swap_pipeline.o"
    subprocess.run(["gcc", "-O2", "-march=x86-64", "-ffreestanding", "-fno-pic", "-fno-pie",
                    "-mcmodel=small", "-fno-asynchronous-unwind-tables", f"-I{DATAPLANE}",
                    "-c", str(HERE / "swap_pipeline.c"), "-o", str(out)], check=True)
    return out


def _image(tmp_path_factory, pipeline_object, config: str) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("uk") / f"{config}.elf"
    info = link_image(pipeline_object, HERE / f"{config}.c", out)
    return out, info


@pytest.fixture(scope="session")
def swap_image(tmp_path_factory, pipeline_object):
    return _image(tmp_path_factory, pipeline_object, "swap_config")


@pytest.fixture(scope="session")
def source_image(tmp_path_factory, pipeline_object):
    return _image(tmp_path_factory, pipeline_object, "source_config")
