"""The generated C that joins one config's compiled pipeline to the unikernel runtime.

    text = glue_source(plan, aot_object, arena_path)

It defines what `dataplane/unikernel/nfv_image.h` declares:
- `nfv_pipeline`, the entry of pipeline_abi.h, as a call of Numba's `run_batch`
  in Numba's calling convention: a pointer for the result, a pointer for an
  exception record, then every argument flattened, each 1-D array as its seven
  struct fields (meminfo, parent, nitems, itemsize, data, shape, stride);
- `nfv_config`: the config's name, NIC count and packet sources;
- `nfv_arena`: the element state, zero in the image (.bss); its initial
  bytes (tables, constants; mostly zeros) go in packed (`encode_arena`, the
  format of dataplane/unikernel/arena.c) and the runtime unpacks them at
  boot. The packed bytes are a file beside the arena's (`packed_arena_file`)
  pulled in with `.incbin`, so a table of megabytes costs the compiler nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nfv.compile.aot import ENTRY, AotObject
from nfv.compile.plan import Plan
from nfv.dataplane.packet import META_DTYPE

# RatedSource's interval is 1 s / RATE; InfiniteSource has none.
_NS = 1_000_000_000


def _c_string(text: str) -> str:
    out = []
    for ch in text.encode():
        out.append(chr(ch) if 32 <= ch < 127 and ch not in b'"\\?' else f"\\{ch:03o}")
    return '"' + "".join(out) + '"'


def _c_bytes(data: bytes) -> str:
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + 16]) for i in range(0, len(data), 16)]
    return "{\n    " + ",\n    ".join(rows) + "\n}" if rows else "{0}"


# -- the arena's initial state, packed (decoder: dataplane/unikernel/arena.c) ------------

#: Bumped whenever encode_arena's output changes: part of the packed file's name.
ARENA_FORMAT = 1
_SKIP, _LITERAL, _COPY, _END = 0, 1, 2, 3
#: Copies reach this far back: repeated fields of records up to 16 bytes.
MAX_DISTANCE = 16
MIN_COPY = 4        # a copy costs two bytes or more; shorter repeats go literal
MIN_SKIP = 2        # one zero inside a literal costs what a skip would


def _number(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each i, how many entries from i on are True."""
    n = len(mask)
    index = np.arange(n, dtype=np.int64)
    stop = np.where(mask, n, index)
    return np.minimum.accumulate(stop[::-1])[::-1] - index


def encode_arena(data: bytes) -> bytes:
    """The arena's bytes as skip / literal / copy operations (see arena.c).

    Greedy, one operation at a time: a run of zeros is skipped, else the
    longest repeat of the bytes 1..MAX_DISTANCE back is copied, else bytes are
    taken literally up to where a skip or copy pays. Run lengths are computed
    with numpy, so the Python loop runs once per operation, not per byte."""
    b = np.frombuffer(bytes(data), np.uint8)
    n = len(b)
    out = bytearray()
    if n:
        zeros = _run_lengths(b == 0)
        best = np.zeros(n, np.int64)
        back = np.zeros(n, np.int64)
        for d in range(1, min(MAX_DISTANCE, n - 1) + 1):
            same = np.zeros(n, bool)
            same[d:] = b[d:] == b[:-d]
            length = _run_lengths(same)
            longer = length > best
            best[longer], back[longer] = length[longer], d
        pays = (zeros >= MIN_SKIP) | (best >= MIN_COPY)
        # next_pays[i]: the first position >= i where a skip or copy pays (n: none)
        index = np.arange(n, dtype=np.int64)
        next_pays = np.minimum.accumulate(np.where(pays, index, n)[::-1])[::-1]
        i = 0
        while i < n:
            if zeros[i] >= MIN_SKIP:
                run = int(zeros[i])
                if i + run < n:                 # trailing zeros need no operation
                    out += _number(run << 2 | _SKIP)
                i += run
            elif best[i] >= MIN_COPY:
                out += _number(int(best[i]) << 2 | _COPY) + _number(int(back[i]))
                i += int(best[i])
            else:
                j = int(next_pays[i])
                out += _number((j - i) << 2 | _LITERAL) + b[i:j].tobytes()
                i = j
    out += _number(_END)
    return bytes(out)


def decode_arena(packed: bytes, length: int) -> bytes:
    """encode_arena's inverse, in Python (for tests; the guest has arena.c)."""
    out = bytearray(length)
    at = pos = 0

    def number() -> int:
        nonlocal pos
        v = shift = 0
        while True:
            byte = packed[pos]
            pos += 1
            v |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return v

    while True:
        v = number()
        kind, count = v & 3, v >> 2
        if kind == _END:
            return bytes(out)
        if count > length - at:
            raise ValueError("packed arena longer than the arena")
        if kind == _SKIP:
            at += count
        elif kind == _LITERAL:
            out[at:at + count] = packed[pos:pos + count]
            pos += count
            at += count
        else:
            distance = number()
            for _ in range(count):
                out[at] = out[at - distance]
                at += 1


def packed_arena_file(arena_path: Path) -> Path:
    """The packed form of the arena file at `arena_path`, written beside it
    on first use (named after it and the format, so it is never stale)."""
    arena_path = Path(arena_path)
    packed = arena_path.with_name(f"{arena_path.stem}.packed{ARENA_FORMAT}")
    if not packed.exists():
        tmp = packed.with_name(f"{packed.name}.tmp{os.getpid()}")
        tmp.write_bytes(encode_arena(arena_path.read_bytes()))
        tmp.replace(packed)
    return packed


def source_settings(plan: Plan, name: str) -> dict:
    """What the runtime needs to make a source element's packets."""
    conf = plan.graph.elements[name].instance.conf
    data = bytes(conf["DATA"])
    length = conf.get("LENGTH")
    if length is not None:  # Click: DATA cut or padded with zeros to LENGTH
        data = data[:length] + bytes(max(0, length - len(data)))
    active = conf.get("ACTIVE", True)
    limit = conf["LIMIT"] if conf["LIMIT"] is not None else -1
    rate = conf.get("RATE")
    return {
        "data": data,
        "burst": int(conf.get("BURST") or 1),
        "limit": 0 if not active else int(limit),
        "interval_ns": _NS // int(rate) if rate else 0,
    }


_CONTENTS = {"NONE": 0, "HEX": 1, "ASCII": 2}


def sink_settings(plan: Plan, name: str) -> dict:
    """How the runtime prints a Print element's copies (the only sink a unikernel has)."""
    inst = plan.graph.elements[name].instance
    if inst.class_name != "Print":
        raise ValueError(f"{name}: {inst.class_name} has no unikernel form")  # make_plan rejects
    conf = inst.conf
    return {"label": conf["LABEL"] or "", "maxlength": int(conf["MAXLENGTH"]),
            "contents": _CONTENTS[conf["CONTENTS"]], "timestamp": int(bool(conf["TIMESTAMP"]))}


def nic_count(plan: Plan) -> int:
    """Devices the config uses: 0..highest device number it reads or writes."""
    numbers = [n for n in plan.device_numbers.values() if n < 8]
    return max(numbers) + 1 if numbers else 0


def glue_source(plan: Plan, aot: AotObject, arena_path: Path, arena_len: int) -> str:
    meta_stride = META_DTYPE.itemsize
    sources = [source_settings(plan, s) for s in plan.sources]
    out = [
        f"/* Generated by nfv from {plan.graph.file}; do not edit. */",
        '#include "nfv_image.h"',
        '#include "pipeline_abi.h"',
        "",
        "/* run_batch(pool, meta, n, meta_cap, arena, now) as Numba compiled it. */",
        f"extern int32_t {ENTRY}({aot.return_c_type} *result, void **exception,",
        "    void *pool_meminfo, void *pool_parent, int64_t pool_nitems, int64_t pool_itemsize,",
        "    uint8_t *pool_data, int64_t pool_shape, int64_t pool_stride,",
        "    void *meta_meminfo, void *meta_parent, int64_t meta_nitems, int64_t meta_itemsize,",
        "    struct nfv_pkt_meta *meta_data, int64_t meta_shape, int64_t meta_stride,",
        "    int32_t n, int32_t meta_cap,",
        "    void *arena_meminfo, void *arena_parent, int64_t arena_nitems, int64_t arena_itemsize,",
        "    uint8_t *arena_data, int64_t arena_shape, int64_t arena_stride,",
        "    uint64_t now_ns);",
        "",
        "_Static_assert(sizeof(struct nfv_pkt_meta) == %d, \"META_DTYPE and packet_layout.h differ\");"
        % meta_stride,
        "",
        "int32_t nfv_pipeline(uint8_t *pool, int64_t pool_len, struct nfv_pkt_meta *meta,",
        "                     int32_t n, int32_t meta_cap, uint8_t *arena, int64_t arena_len,",
        "                     uint64_t now_ns)",
        "{",
        f"    {aot.return_c_type} result = 0;",
        "    void *exception = 0;",
        f"    int32_t status = {ENTRY}(&result, &exception,",
        "        0, 0, pool_len, 1, pool, pool_len, 1,",
        f"        0, 0, meta_cap, {meta_stride}, meta, meta_cap, {meta_stride},",
        "        n, meta_cap,",
        "        0, 0, arena_len, 1, arena, arena_len, 1,",
        "        now_ns);",
        "    /* Nonzero: a Numba exception (an arena view that did not fit); never a",
        "       packet's fault, so the runtime stops and reports it. */",
        "    if (status != 0)",
        "        return -1000 - (status < 0 ? -status : status);",
        "    return (int32_t)result;",
        "}",
        "",
    ]
    out.append("extern const uint8_t nfv_arena_init[];   /* below: section .arena_init */")
    for k, s in enumerate(sources):
        out.append(f"static const uint8_t source{k}_data[{max(1, len(s['data']))}] = "
                   f"{_c_bytes(s['data'])};")
    if sources:
        out.append("static const struct nfv_source sources[] = {")
        for k, s in enumerate(sources):
            out.append(f"    {{ source{k}_data, {len(s['data'])}u, {s['burst']}u, "
                       f"{s['limit']}LL, {s['interval_ns']}ull }},  /* {plan.sources[k]} */")
        out.append("};")
    sinks = [sink_settings(plan, s) for s in plan.sinks]
    if sinks:
        out.append("static const struct nfv_sink sinks[] = {")
        for k, s in enumerate(sinks):
            out.append(f"    {{ {_c_string(s['label'])}, {s['maxlength']}, {s['contents']}u, "
                       f"{s['timestamp']}u }},  /* {plan.sinks[k]} */")
        out.append("};")
    out += [
        "",
        "const struct nfv_image_config nfv_config = {",
        f"    .name = {_c_string(Path(plan.graph.file).name)},",
        f"    .nic_count = {nic_count(plan)}u,",
        f"    .source_count = {len(sources)}u,",
        f"    .sources = {'sources' if sources else '0'},",
        f"    .arena_len = {arena_len}ull,",
        "    .arena_init = nfv_arena_init,",
        f"    .sink_count = {len(sinks)}u,",
        f"    .sinks = {'sinks' if sinks else '0'},",
        "};",
        "",
        "/* The arena: zero in the image, filled at boot from its packed initial",
        "   state, which nfv.ld loads where the allocator later takes over. */",
        f"uint8_t nfv_arena[{max(1, arena_len)}] __attribute__((aligned(64)));",
        "__asm__(\".section .arena_init, \\\"a\\\"\\n\"",
        "        \"nfv_arena_init:\\n\"",
        f"        \".incbin \\\"{packed_arena_file(arena_path)}\\\"\\n\"",
        "        \".previous\\n\");",
        "",
    ]
    return "\n".join(out)
