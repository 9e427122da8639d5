"""The link step: section sizes, and gcc/ld failures reported as NfvError."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nfv.errors import NfvError
from nfv.unikernel.link import link_image, section_sizes

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("gcc") is None,
                                reason="needs qemu-system-x86_64 and gcc")


def test_image_layout(swap_image):
    path, info = swap_image
    assert info["file_size"] == path.stat().st_size
    assert info["sections"] == section_sizes(path)
    assert set(info["sections"]) == {".note.pvh", ".text", ".rodata", ".data", ".bss", ".arena_init"}
    assert info["sections"][".note.pvh"] == 20
    # A PT_NOTE (how QEMU finds the PVH entry) and no segment both writable and executable.
    phdrs = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True).stdout
    assert "NOTE" in phdrs and " RWE " not in phdrs
    symbols = path.with_name(path.name + ".sym")
    assert info["symbols"] == symbols
    assert symbols.exists() and symbols.stat().st_size > path.stat().st_size


def test_image_has_no_padding_or_page_tables(swap_image):
    """The file is headers, section bytes and a few bytes of alignment: the
    page tables and the arena are .bss, and segments are not page-aligned."""
    path, info = swap_image
    s = info["sections"]
    assert s[".data"] < 256                     # GDT and pointers only
    payload = s[".note.pvh"] + s[".text"] + s[".rodata"] + s[".data"] + s[".arena_init"]
    headers = 64 + 5 * 56 + 8 * 64 + 64         # ELF header, program and section headers, names
    assert path.stat().st_size <= payload + headers + 256


def test_symbols_path_can_be_given(tmp_path, pipeline_object):
    """A caller linking to a temporary name (then renaming) names the .sym file."""
    out = tmp_path / "image.tmp"
    info = link_image(pipeline_object, HERE / "swap_config.c", out, symbols=tmp_path / "image.elf.sym")
    assert info["symbols"] == tmp_path / "image.elf.sym" and info["symbols"].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.elf.sym", "image.tmp"]


def test_undefined_symbol_is_an_nfv_error(tmp_path):
    src = tmp_path / "bad.c"
    src.write_text("int helper(void);\nint nfv_pipeline(void) { return helper(); }\n")
    obj = tmp_path / "bad.o"
    subprocess.run(["gcc", "-O2", "-fno-pic", "-fno-pie", "-c", str(src), "-o", str(obj)], check=True)
    with pytest.raises(NfvError, match="undefined reference to `helper'"):
        link_image(obj, HERE / "swap_config.c", tmp_path / "bad.elf")


def test_generated_c_error_is_an_nfv_error(tmp_path, pipeline_object):
    glue = tmp_path / "glue.c"
    glue.write_text('#include "nfv_image.h"\nconst struct nfv_image_config nfv_config = { .nope = 1 };\n')
    with pytest.raises(NfvError, match="compiling glue.c failed"):
        link_image(pipeline_object, glue, tmp_path / "x.elf")
