"""`nfv build`: a config becomes a bootable unikernel image.

    image = build_image("configs/firewall.click", output="fw.elf")
    image.sections, image.size, image.plan

The plan is made for the "unikernel" target (host-only elements are errors),
its pipeline compiled ahead of time (nfv.compile.aot), the glue C written
(nfv.unikernel.glue) and everything linked with the runtime in
dataplane/unikernel. Images are cached by the hash of all their inputs, so a
second build of a config, and every test after the first, costs a file copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nfv.compile import build_lock
from nfv.compile.plan import Plan, make_plan
from nfv.errors import NfvError

MiB = 1 << 20
#: Guest RAM when none is given: the issue's target, enough for the shipped configs.
DEFAULT_MEMORY = 8 * MiB
#: What the runtime takes besides the image and the arena (estimate, checked in the guest
#: too): per NIC two 256-entry rings of 2 KiB buffers, a spare batch of buffers for the
#: pipeline and sources, and the first MiB of RAM below the image.
PER_NIC = 2 * 256 * 2048 + 64 * 1024
FIXED = 1 * MiB + 2 * 256 * 2048 + 256 * 1024


@dataclass
class Image:
    path: Path
    plan: Plan
    size: int                                   # file bytes
    sections: dict[str, int] = field(default_factory=dict)
    nic_count: int = 0
    memory_needed: int = 0
    cached: bool = False


def parse_memory(text: str | int) -> int:
    """'8M', '512K', '1G' or a byte count."""
    if isinstance(text, int):
        return text
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise NfvError(f"memory size '{text}': write it as 8M, 512K or 1G") from None


def memory_needed(image_bytes: int, arena_len: int, nics: int) -> int:
    return FIXED + image_bytes + arena_len + nics * PER_NIC


def _runtime_digest() -> str:
    """The runtime's part of an image's cache key, and how its glue is written."""
    from nfv.unikernel.link import runtime_digest

    glue = (Path(__file__).parent / "glue.py").read_bytes()
    return runtime_digest() + hashlib.sha256(glue).hexdigest()[:16]


def build_plan(config: str, defines: dict[str, str] | None = None) -> Plan:
    from nfv.host import load_graph

    return make_plan(load_graph(config, defines), "unikernel")


def build_image(config: str, defines: dict[str, str] | None = None,
                output: str | Path | None = None, memory: int | str = DEFAULT_MEMORY) -> Image:
    """Build (or take from the cache) the image of a config; copy it to `output` if given."""
    from nfv.compile import cache_dir
    from nfv.compile.aot import compile_object
    from nfv.unikernel.glue import glue_source, nic_count
    from nfv.unikernel.link import link_image

    plan = build_plan(config, defines)
    memory = parse_memory(memory)
    nics = nic_count(plan)
    arena = plan.new_arena()
    arena_bytes = arena.tobytes()
    aot = compile_object(plan)
    root = cache_dir().parent / "images"
    root.mkdir(parents=True, exist_ok=True)
    arena_digest = hashlib.sha256(arena_bytes).hexdigest()[:20]
    arena_path = root / f"arena_{arena_digest}.bin"
    if not arena_path.exists():
        _write_atomically(arena_path, arena_bytes)
    glue = glue_source(plan, aot, arena_path, len(arena_bytes))
    key = hashlib.sha256(glue.encode() + aot.path.read_bytes()
                         + _runtime_digest().encode()).hexdigest()[:20]
    image_path, info_path = root / f"image_{key}.elf", root / f"image_{key}.json"
    cached = image_path.exists() and info_path.exists()
    if not cached:
        # Locked: a concurrent build of the same image (the test suite's background
        # prebuild, say) would write the same symbols file under this one's strip.
        with build_lock(image_path):
            if not (image_path.exists() and info_path.exists()):
                glue_path = root / f"glue_{key}.c"
                _write_atomically(glue_path, glue.encode())
                tmp = image_path.with_suffix(f".tmp{os.getpid()}")
                info = link_image(aot.path, glue_path, tmp,
                                  symbols=image_path.with_name(image_path.name + ".sym"))
                tmp.replace(image_path)
                _write_atomically(info_path, json.dumps(
                    {"sections": info["sections"], "config": str(config)}).encode())
    sections = json.loads(info_path.read_text())["sections"]
    size = image_path.stat().st_size
    needed = memory_needed(size, len(arena_bytes), nics)
    if needed > memory:
        raise NfvError(f"{config}: the unikernel needs about {needed / MiB:.1f} MiB of RAM "
                       f"(element state {len(arena_bytes) / MiB:.1f} MiB, {nics} NICs) but has "
                       f"{memory / MiB:g} MiB; give --memory {-(-needed // MiB)}M or more")
    if output is not None and Path(output).resolve() != image_path.resolve():
        shutil.copyfile(image_path, output)
        image_path = Path(output)
    return Image(image_path, plan, size, sections, nics, needed, cached)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a file of this process's own and a rename: a concurrent build of the
    same config never reads half a file."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
