"""Ahead-of-time compilation: the fused pipeline as a freestanding x86-64 object.

    obj = compile_object(plan)      # -> AotObject(path, return_c_type, ...)

The unikernel links the same batch function the host runs (`run_batch` of the
generated module), so both targets forward byte-identical packets. Steps:

1. the generated source without the host's cfunc wrapper (which needs Numba's
   runtime) is compiled by Numba in a child process whose CPU is plain `x86-64`
   (NUMBA_CPU_NAME/FEATURES are read once, at import: the host process keeps
   its own CPU) and whose Numba cache is empty, so the LLVM IR of every
   function is at hand (a cache load has machine code only);
2. the IR module keeps `run_batch` as the one external symbol `nfv_run_batch`;
   everything else becomes internal and global dead-code elimination drops
   the Python wrappers and whatever they alone referenced;
3. llvmlite emits an object for x86_64-unknown-none-elf, static relocation
   (NFV_AOT_RELOC=pic makes one a host process can load, to compare the builds),
   small code model (the image is linked at 1 MiB);
4. undefined symbols other than the runtime's memcpy/memset/memmove are an
   error naming the element (and kernel line) that pulled them in.

The object is cached by the hash of the generated source, like host pipelines.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nfv.compile.codegen import generate
from nfv.compile.plan import Plan
from nfv.errors import NfvError

ENTRY = "nfv_run_batch"
TRIPLE = "x86_64-unknown-none-elf"
CPU = "x86-64"
#: Symbols the unikernel runtime defines; LLVM may call them for block copies.
RUNTIME_SYMBOLS = frozenset({"memcpy", "memset", "memmove"})

# C types of the batch function's possible return types (its `count`).
_C_TYPES = {"int64": "int64_t", "int32": "int32_t", "uint64": "uint64_t", "uint32": "uint32_t",
            "intp": "int64_t"}


@dataclass
class AotObject:
    path: Path           # the relocatable object defining ENTRY
    return_c_type: str   # C type of run_batch's result, written through its retptr
    source: Path         # the generated Python it was compiled from
    size: int


def compile_object(plan: Plan, timeout: float = 600) -> AotObject:
    """The plan's pipeline as an object for the unikernel (cached)."""
    import nfv
    from nfv.compile import build_lock, cache_dir, code_fingerprint

    source = (f"# nfv {nfv.__version__}, kernels {code_fingerprint()}, aot {TRIPLE} {CPU}\n"
              + generate(plan, entry=False))
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    root = cache_dir()
    src, obj, info = (root / f"aot_{digest}.py", root / f"aot_{digest}.o",
                      root / f"aot_{digest}.json")
    with build_lock(obj):  # a concurrent build of the same object waits for this one
        if obj.exists() and info.exists():
            meta = json.loads(info.read_text())
            return AotObject(obj, meta["return_c_type"], src, obj.stat().st_size)
        src.write_text(source)
        tmp = obj.with_suffix(f".tmp{os.getpid()}")
        result = _run_worker(src, tmp, timeout)
        if result.get("undefined"):
            tmp.unlink(missing_ok=True)
            raise NfvError(_undefined_message(plan, src, result["undefined"], timeout))
        tmp.replace(obj)
        info.write_text(json.dumps({"return_c_type": result["return_c_type"]}))
        return AotObject(obj, result["return_c_type"], src, obj.stat().st_size)


def _run_worker(src: Path, out: Path, timeout: float, debug: bool = False,
                reloc: str = "static") -> dict:
    with tempfile.TemporaryDirectory(prefix="nfv-aot-") as numba_cache:
        env = dict(os.environ, NUMBA_CPU_NAME=CPU, NUMBA_CPU_FEATURES="",
                   NUMBA_CACHE_DIR=numba_cache, NUMBA_BOUNDSCHECK="0")
        if debug:
            env["NUMBA_DEBUGINFO"] = "1"
        env["NFV_AOT_RELOC"] = reloc
        try:
            proc = subprocess.run([sys.executable, "-m", "nfv.compile.aot", str(src), str(out)],
                                  env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NfvError(f"ahead-of-time compile of {src.name} took over {timeout:g} s") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise NfvError(f"ahead-of-time compile failed (internal error):\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _undefined_message(plan: Plan, src: Path, undefined: list[str], timeout: float) -> str:
    """Name where each undefined symbol comes from: a debug-info compile maps its calls
    back to kernel source lines, and those to the elements whose kernels they are."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            where = _run_worker(src, Path(tmp) / "debug.o", timeout, debug=True).get("where", {})
        except NfvError:
            where = {}
    lines = []
    for symbol in undefined:
        places = where.get(symbol, [])
        elements = sorted({e for f, line in places for e in _elements_at(plan, src, f, line)})
        at = ", ".join(f"{Path(f).name}:{line}" for f, line in places[:3])
        who = f"element {', '.join(elements)}" if elements else "an element kernel"
        lines.append(f"'{symbol}' is needed by {who}" + (f" ({at})" if at else ""))
    return ("the pipeline cannot run in the unikernel: it calls functions the unikernel does "
            "not have:\n  " + "\n  ".join(lines) +
            "\n  hint: kernels may use only arithmetic, arrays and other kernels "
            "(no math library, no Python objects)")


def _elements_at(plan: Plan, src: Path, file: str, line: int) -> list[str]:
    """Elements whose kernel (shared, or generated for them) contains file:line."""
    import importlib
    import inspect

    found = []
    for name, spec in plan.kernels.items():
        if spec is None:
            continue
        module, _, func = spec.function.partition(":")
        try:
            fn = getattr(importlib.import_module(f"nfv.elements._kernels.{module}"), func)
            code = getattr(fn, "py_func", fn).__code__
        except (ImportError, AttributeError):
            continue
        start = code.co_firstlineno
        if os.path.exists(file) and os.path.samefile(code.co_filename, file):
            length = len(inspect.getsourcelines(code)[0])
            if start <= line < start + length:
                found.append(name)
    if not found and os.path.exists(file) and os.path.samefile(file, src):
        # A kernel generated for this config: the def enclosing the line names it.
        for row in reversed(src.read_text().splitlines()[:line]):
            m = re.match(r"def (\w+)\(", row)
            if m:
                found += [name for name, spec in plan.kernels.items()
                          if spec is not None and spec.function == f"generated:{m.group(1)}"]
                break
    return found


# -- the child process --------------------------------------------------------------


def _worker(src: Path, out: Path) -> dict:
    import importlib.util

    import llvmlite.binding as llvm
    import numba
    from numba import types

    from nfv.dataplane.packet import META_DTYPE

    spec = importlib.util.spec_from_file_location("nfv_aot_pipeline", src)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    buffer = types.Array(types.uint8, 1, "C")
    signature = (buffer, types.Array(numba.from_dtype(META_DTYPE), 1, "C"), types.int32,
                 types.int32, buffer, types.uint64)
    batch = module.run_batch
    batch.compile(signature)
    overload = batch.overloads[signature]
    returns = str(overload.signature.return_type)
    if returns not in _C_TYPES:
        raise SystemExit(f"run_batch returns {returns}, which the C runtime cannot take")
    ir = overload.library.get_llvm_str()
    core = overload.fndesc.mangled_name

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    mod = llvm.parse_assembly(ir)
    for fn in mod.functions:
        if fn.name == core:
            fn.name = ENTRY
            fn.linkage = "external"
        elif not fn.is_declaration:
            fn.linkage = "internal"
    for var in mod.global_variables:
        if not var.is_declaration:
            var.linkage = "internal"
    mod.triple = TRIPLE
    machine = llvm.Target.from_triple(TRIPLE).create_target_machine(
        cpu=CPU, features="", opt=3, reloc=os.environ.get("NFV_AOT_RELOC", "static"),
        codemodel="small")
    builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=3))
    passes = llvm.create_new_module_pass_manager()
    passes.add_global_dead_code_eliminate_pass()
    passes.add_strip_dead_prototype_pass()
    passes.run(mod, builder)

    text = str(mod)
    out.write_bytes(machine.emit_object(mod))
    # The object, not the IR: instruction selection may add calls (memcpy for a copy).
    nm = subprocess.run(["nm", "-u", str(out)], capture_output=True, text=True, check=True)
    undefined = sorted({line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
                       - RUNTIME_SYMBOLS)
    return {"return_c_type": _C_TYPES[returns], "undefined": undefined,
            "where": _call_sites(text, undefined)}


def _call_sites(text: str, symbols: list[str]) -> dict[str, list[tuple[str, int]]]:
    """file:line of the calls to each symbol, from debug info when it was compiled in."""
    files = {m.group(1): (m.group(3), m.group(2)) for m in re.finditer(
        r'^(!\d+) = !DIFile\(filename: "([^"]*)", directory: "([^"]*)"', text, re.M)}
    scopes = {}
    for m in re.finditer(r"^(!\d+) = distinct !DISubprogram\(.*?file: (!\d+)", text, re.M):
        scopes[m.group(1)] = m.group(2)
    locations = {m.group(1): (int(m.group(2)), m.group(3)) for m in re.finditer(
        r"^(!\d+) = !DILocation\(line: (\d+),.*?scope: (!\d+)", text, re.M)}
    where: dict[str, list[tuple[str, int]]] = {}
    for symbol in symbols:
        # The call is to the symbol itself, or to the LLVM intrinsic that instruction
        # selection turns into it (math.exp is @llvm.exp.f64 in the IR, `exp` in the object).
        callee = rf"@(?:{re.escape(symbol)}|llvm\.{re.escape(symbol)}\.[\w.]+)\("
        for m in re.finditer(rf"{callee}.*?!dbg (!\d+)", text):
            line, scope = locations.get(m.group(1), (0, ""))
            directory, name = files.get(scopes.get(scope, ""), ("", ""))
            if name:
                where.setdefault(symbol, []).append((os.path.join(directory, name), line))
    return where


if __name__ == "__main__":
    print(json.dumps(_worker(Path(sys.argv[1]), Path(sys.argv[2]))))
