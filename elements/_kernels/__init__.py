"""Packet kernels of the element library: Numba functions the compiler fuses.

The kernel convention (see nfv/compile/codegen.py):

    kernel(pool, meta, i, *state_arrays, *constants) -> int

`pool` is the uint8 buffer pool, `meta` the record array of packet metadata
(nfv.dataplane.packet.META_DTYPE), `i` the packet's record.  The return value
is the output port the packet leaves by, or minus a reason code from
`nfv.drops` to drop it.  Kernels never allocate, raise, or read a clock: they
must compile into a freestanding object for the unikernel too, and a
malformed packet is a return value, not an exception.
"""
