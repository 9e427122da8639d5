"""`nfv build` and the ahead-of-time compile: what a config becomes, and what it cannot.

The object file is checked with binutils (nm), independently of the code that
made it; build errors are checked for the words a user needs (what, where,
what to do), and the CLI for one clean line and a non-zero exit.
"""
from __future__ import annotations

import subprocess

import pytest

from nfv.element import Element, Kernel
from nfv.errors import ConfigErrors, NfvError

from conftest import NFV, ROOT

FIREWALL = str(ROOT / "configs" / "firewall.click")


def nm(path, *flags) -> list[str]:
    out = subprocess.run(["nm", *flags, str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split("\n")


def test_firewall_object_exports_only_the_entry_and_needs_nothing():
    from nfv.compile.aot import ENTRY, RUNTIME_SYMBOLS, compile_object
    from nfv.unikernel.build import build_plan

    obj = compile_object(build_plan(FIREWALL))
    undefined = {line.split()[-1] for line in nm(obj.path, "-u") if line.strip()}
    assert undefined <= RUNTIME_SYMBOLS
    exported = [line.split()[-1] for line in nm(obj.path, "-g", "--defined-only") if line.strip()]
    assert exported == [ENTRY]
    header = subprocess.run(["readelf", "-h", str(obj.path)], capture_output=True, text=True).stdout
    assert "X86-64" in header and "REL (Relocatable file)" in header


def test_object_has_no_instructions_beyond_sse2():
    """The guest CPU (QEMU's default model here) has SSE2 but not SSE3 or AVX."""
    from nfv.compile.aot import compile_object
    from nfv.unikernel.build import build_plan

    obj = compile_object(build_plan(FIREWALL))
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj.path)],
                          capture_output=True, text=True, check=True).stdout
    assert "%ymm" not in text and "%zmm" not in text
    # Not tzcnt: LLVM writes a non-zero count-trailing-zeros as `rep bsf`, which
    # objdump names tzcnt and which a CPU without BMI1 runs as plain bsf.
    for mnemonic in ("vmov", "vpadd", "pshufb", "pminud", "ptest", "lddqu", "haddp", "pblend",
                     "popcnt", "lzcnt", "shlx", "andn"):
        assert f"\t{mnemonic}" not in text, mnemonic


def test_build_reports_sections_and_fits_the_issue_budget(tmp_path):
    from nfv.unikernel.build import build_image

    out = tmp_path / "fw.elf"
    image = build_image(FIREWALL, output=out)
    assert out.exists() and out.stat().st_size == image.size
    assert image.size <= 64 * 1024
    assert image.nic_count == 2
    header = subprocess.run(["readelf", "-lW", str(out)], capture_output=True, text=True).stdout
    assert "NOTE" in header                    # the PVH note has its own program header
    assert " RWE " not in header               # no segment both writable and executable


def test_host_only_element_is_a_build_error_at_its_position():
    from nfv.unikernel.build import build_plan

    text = "FromDevice(0) -> ToDump(out.pcap);\n"
    with pytest.raises(ConfigErrors) as e:
        build_plan(text)
    [error] = e.value.errors
    assert "ToDump" in error.message and "host" in error.message
    assert (error.pos.line, error.pos.col) == (1, 18)


def test_more_than_eight_devices_is_a_build_error():
    from nfv.unikernel.build import build_plan

    text = "".join(f"FromDevice({n}) -> ToDevice({n});\n" for n in range(9))
    with pytest.raises(ConfigErrors) as e:
        build_plan(text)
    assert any("8" in err.message and "out of range" in err.message for err in e.value.errors)


def test_state_larger_than_memory_is_a_build_error():
    from nfv.unikernel.build import build_image

    # /32s in 20,000 different /24s: a third-level chunk (1 KiB) each, ~20 MiB in all.
    routes = ", ".join(f"10.{i >> 8}.{i & 255}.1/32 {i % 2}" for i in range(20000))
    text = (f"FromDevice(0) -> Strip(14) -> CheckIPHeader -> rt :: RadixIPLookup({routes});\n"
            "rt[0] -> ToDevice(0); rt[1] -> ToDevice(1);\n")
    with pytest.raises(NfvError) as e:
        build_image(text, memory="8M")
    message = str(e.value)
    assert "MiB of RAM" in message and "--memory" in message


class ExpWeight(Element, abstract=True):
    """A test element whose kernel needs the C maths library (exp)."""
    port_count = "1/1"

    def kernel(self):
        source = ("import math\n\n\n@kernel\ndef exp_weight(pool, meta, i):\n"
                  "    meta[i].paint = int(math.exp(float(meta[i].length) * 0.001)) & 255\n"
                  "    return 0\n")
        return Kernel("generated:exp_weight", source=source)


def test_undefined_symbol_names_the_element(monkeypatch):
    from nfv.compile.aot import compile_object
    from nfv.unikernel.build import build_plan

    monkeypatch.setitem(Element._registry, "ExpWeight", ExpWeight)
    plan = build_plan("FromDevice(0) -> weigh :: ExpWeight -> ToDevice(0);\n")
    with pytest.raises(NfvError) as e:
        compile_object(plan)
    message = str(e.value)
    assert "'exp'" in message and "weigh" in message and "unikernel" in message


def test_cli_build_prints_size_and_rejects_host_only(tmp_path):
    out = tmp_path / "fw.elf"
    ok = subprocess.run([str(NFV), "build", FIREWALL, "-o", str(out)], capture_output=True,
                        text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert f"{out.stat().st_size:,} bytes" in ok.stdout and ".text" in ok.stdout
    bad = tmp_path / "dump.click"
    bad.write_text("FromDump(in.pcap) -> ToDevice(0);\n")
    fail = subprocess.run([str(NFV), "build", str(bad)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert fail.returncode == 1
    assert f"{bad}:1:1: error:" in fail.stderr and "Traceback" not in fail.stderr
