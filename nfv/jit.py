"""The one set of Numba options every dataplane function is compiled with.

    from nfv.jit import kernel

    @kernel
    def counter(pool, meta, i, counts): ...

- cache=True: compiled code is reused across processes (tests, `nfv run`).
- _nrt=False: no Numba runtime. Kernels may not allocate (DESIGN.md), and
  without NRT the compiler refuses any code that would, instead of calling
  reference-counting functions through pointers on every array argument
  (which cost ~10 ns per kernel call and are symbols a unikernel lacks).
- error_model="numpy": division by zero gives inf/0, never an exception.
Bounds checks follow NUMBA_BOUNDSCHECK (set to 1 for the checked test build).
"""
from numba import njit

OPTIONS = dict(cache=True, _nrt=False, error_model="numpy")

# Kernels are inlined into the pipeline at Numba-IR level: LLVM's own inliner
# leaves bigger kernels (CheckIPHeader's checksum loop) as calls that pass every
# array as a 7-word struct on the stack, which cost 20 ns a packet.
kernel = njit(inline="always", **OPTIONS)

# For kernels whose body is a large search (the classifiers' decision tables):
# inlining them at IR level into every path multiplies compile time; the call
# costs a few ns against tens of ns of work. Not cached on their own: Numba keys
# a cache entry by its function's file alone, so an edit to a kernel it calls
# (match.py) would leave a stale entry in use. The pipelines that call them are
# cached under a hash of every kernel file, and carry their machine code.
kernel_call = njit(**dict(OPTIONS, cache=False))
