"""Link a compiled pipeline and its generated C with the unikernel runtime.

    info = link_image(Path("pipeline.o"), Path("glue.c"), Path("fw.elf"))
    info["sections"]   # {".text": 12345, ".rodata": ..., ".data": ..., ".bss": ...}
    info["file_size"]  # bytes of the stripped image

The runtime (dataplane/unikernel: C and asm) is compiled once per set of
sources and flags and its objects cached under `nfv.compile.cache_dir()`; the
generated C is compiled every time (it is small); ld places everything with
nfv.ld and the result is stripped. A copy with symbols is kept, by default
beside the output as `<output>.sym` (`symbols=` names another path, e.g. the
final name when the output is a temporary file renamed afterwards), to turn a
fault's RIP into a function name (`addr2line -f -e fw.elf.sym 0x...`). Any gcc
or ld failure becomes an NfvError carrying the tool's own message.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import struct
import subprocess
from pathlib import Path

from nfv.errors import NfvError

#: Flags for all runtime C and asm. -mgeneral-regs-only because boot, fault
#: and any code they call run at CPL0, where an SSE instruction kills the VM
#: under nested KVM (it costs the runtime nothing: it does integer work only).
#: No libc, fixed addresses (linked at 1 MiB, small code model), no red zone
#: (an exception at CPL0 would write over it), no unwind tables (discarded),
#: and no loop-to-memcpy rewriting (lib.c implements memcpy). Optimisation is
#: per file: see HOT_SOURCES.
CFLAGS = [
    "-std=gnu11", "-march=x86-64", "-mtune=generic",
    "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie", "-mcmodel=small",
    "-mno-red-zone", "-mgeneral-regs-only", "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fcf-protection=none",
    "-fno-tree-loop-distribute-patterns", "-fno-common",
    "-Wall", "-Wextra",
]
#: Runtime sources on the packet path, compiled for speed (-O2); the rest (boot,
#: console, commands, discovery, faults) and the generated C for size (-Os),
#: which takes about 4 KB off a 35 KB firewall image. Boot code in the hot files
#: is marked `cold`, which gcc also optimises for size.
HOT_SOURCES = frozenset({"main.c", "virtio_net.c", "sources.c", "lib.c"})


def _optimisation(source: Path) -> str:
    return "-O2" if source.name in HOT_SOURCES else "-Os"


LDFLAGS = ["-m", "elf_x86_64", "-nostdlib", "-static", "--build-id=none", "-n",
           "-z", "max-page-size=0x1000", "-z", "noexecstack"]
LINKER_SCRIPT = "nfv.ld"
#: Sections reported by link_image (others are merged into these by nfv.ld).
SECTIONS = (".note.pvh", ".text", ".rodata", ".data", ".bss", ".arena_init")


def runtime_dir() -> Path:
    """dataplane/unikernel, wherever nfv.dataplane is installed."""
    import nfv.dataplane
    return Path(nfv.dataplane.__file__).resolve().parent / "unikernel"


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise NfvError(f"{what}: '{cmd[0]}' is not installed (the unikernel build needs gcc "
                       f"and binutils)") from None
    except subprocess.TimeoutExpired:
        raise NfvError(f"{what}: '{cmd[0]}' took over 120 s") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip()
        raise NfvError(f"{what} failed:\n{message}")


@functools.lru_cache(maxsize=None)   # one subprocess per tool and process
def _tool_version(tool: str) -> str:
    try:
        return subprocess.run([tool, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def _runtime_sources() -> list[Path]:
    root = runtime_dir()
    return sorted(p for p in root.iterdir() if p.suffix in (".c", ".S"))


def _include_flags() -> list[str]:
    root = runtime_dir()
    return [f"-I{root}", f"-I{root.parent}"]


def runtime_digest() -> str:
    """A hash of everything the runtime adds to an image: every source and header,
    the linker script, the compiler and linker flags and the compiler version."""
    root = runtime_dir()
    digest = hashlib.sha256(" ".join(CFLAGS + LDFLAGS + sorted(HOT_SOURCES)).encode()
                            + _tool_version("gcc").encode())
    inputs = sorted(p for p in root.iterdir() if p.suffix in (".c", ".S", ".h", ".ld"))
    inputs += [root.parent / "pipeline_abi.h", root.parent / "packet_layout.h"]
    for path in inputs:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def runtime_objects() -> list[Path]:
    """The runtime's objects, compiled on first use and cached by `runtime_digest`."""
    from nfv.compile import cache_dir

    out = cache_dir().parent / "unikernel-runtime" / runtime_digest()
    sources = _runtime_sources()
    objects = [out / (src.name + ".o") for src in sources]
    if all(o.exists() for o in objects):
        return objects
    # Build in a private directory, then rename: a concurrent build of the
    # same runtime never sees a half-written object.
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for src in sources:
            _run(["gcc", *CFLAGS, _optimisation(src), *_include_flags(), "-c", str(src),
                  "-o", str(tmp / (src.name + ".o"))],
                 f"compiling the unikernel runtime ({src.name})")
        try:
            tmp.rename(out)
        except OSError:             # another process won the race: use its objects
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return objects


def section_sizes(elf: Path) -> dict[str, int]:
    """Sizes of the named sections of an ELF64 file (read from its section headers)."""
    data = elf.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise NfvError(f"{elf}: not an ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = headers[shstrndx][4]
    sizes = {}
    for name_off, _type, _flags, _addr, _off, size, *_ in headers:
        end = data.index(b"\0", strtab_off + name_off)
        name = data[strtab_off + name_off:end].decode()
        if name in SECTIONS:
            sizes[name] = size
    return {name: sizes.get(name, 0) for name in SECTIONS}


def link_image(pipeline_object: Path, generated_c: Path, output: Path,
               symbols: Path | None = None) -> dict:
    """Compile `generated_c`, link it, `pipeline_object` and the runtime into a
    stripped PVH image at `output` (the unstripped one at `symbols`, default
    `<output>.sym`); return its section sizes, file size and symbols path."""
    pipeline_object, generated_c, output = Path(pipeline_object), Path(generated_c), Path(output)
    for path, what in ((pipeline_object, "pipeline object"), (generated_c, "generated C")):
        if not path.exists():
            raise NfvError(f"unikernel link: {what} {path} does not exist")
    objects = runtime_objects()
    symbols = Path(symbols) if symbols is not None else output.with_name(output.name + ".sym")
    glue_object = output.with_name(output.name + ".glue.o")
    try:
        _run(["gcc", *CFLAGS, "-Os", *_include_flags(), "-c", str(generated_c), "-o", str(glue_object)],
             f"compiling {generated_c.name}")
        _run(["ld", *LDFLAGS, "-T", str(runtime_dir() / LINKER_SCRIPT), "-o", str(symbols),
              *map(str, objects), str(glue_object), str(pipeline_object)],
             "linking the unikernel image")
        _run(["strip", "--strip-all", "-o", str(output), str(symbols)], "stripping the unikernel image")
    finally:
        glue_object.unlink(missing_ok=True)
    return {"sections": section_sizes(output), "file_size": output.stat().st_size, "symbols": symbols}
