# cython: language_level=3, boundscheck=False, wraparound=False
"""The host driver: feeds packets to a compiled pipeline in batches, collects what it sends.

    driver = HostDriver(pipeline.address, arena, batch_size=256)
    result = driver.run(PacketList.from_bytes(frames, ports=0))
    result.outputs[1]          # PacketList of the frames the pipeline sent to port 1
    result.drops               # {drop_reason: count}

The pipeline is a function with the prototype in pipeline_abi.h (a Numba
cfunc on the host); the driver calls it through its address, once per batch,
with the GIL released, so other Python threads (a control channel, another
driver) run meanwhile. Around each call the driver does what pipeline_abi.h
gives to drivers:

- the pool: ``pool_slots`` slots of NFV_BUF_STRIDE bytes. Input packet i of a
  batch goes to slot i, its data at NFV_HEADROOM into the slot; the slots after
  the batch's are spares for packets the pipeline makes.
- the metadata: one META_DTYPE record per packet, offset absolute from the
  pool start, out_port NFV_NO_PORT, net_offset NFV_NO_NET_HEADER, the rest 0.
- the free list in the arena header (struct nfv_arena_header, arena offset 0):
  refilled with the spare slots before every call, because every slot is free
  again once the driver has copied the previous batch's outputs away.

`run` copies every packet the pipeline sends out of the pool into
per-port PacketLists. `loop` is the benchmark's version: the same work per
batch, outputs discarded, with no Python between batches.

Clock: packets keep the timestamps they were recorded with and the pipeline's
now_ns is the newest one in the batch, so replaying a capture is deterministic
(timeouts follow capture time). Passing `now_ns` instead stamps every packet
with it and hands it to every call.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset
from cython.view cimport array as cvarray
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import operator

import numpy as np

from nfv.dataplane.packet cimport (
    nfv_pkt_meta, NFV_BUF_STRIDE, NFV_HEADROOM, NFV_MAX_BATCH, NFV_NO_PORT, NFV_NO_NET_HEADER,
    NFV_DROP_EMPTY,
)
from nfv.dataplane.pcap cimport PacketList
from nfv.dataplane.packet import META_DTYPE
from nfv.errors import NfvError

cdef extern from *:
    void __builtin_prefetch(const void *addr) noexcept nogil

cdef extern from "pipeline_abi.h":
    ctypedef int32_t (*nfv_pipeline_fn)(uint8_t *pool, int64_t pool_len,
                                        nfv_pkt_meta *meta, int32_t n, int32_t meta_cap,
                                        uint8_t *arena, int64_t arena_len,
                                        uint64_t now_ns) noexcept nogil
    enum:
        NFV_MAX_DEVICES
        NFV_FIRST_SOURCE
        NFV_FIRST_SINK
        NFV_FREE_CAP

    cdef struct nfv_arena_header:
        uint32_t free_count
        uint32_t reserved
        uint32_t free_slots[NFV_FREE_CAP]

__all__ = ["HostDriver", "RunResult", "DriverError", "FREE_CAP", "ARENA_HEADER_SIZE",
           "DATA_ROOM", "MAX_DEVICES", "FIRST_SOURCE", "FIRST_SINK"]

FREE_CAP = NFV_FREE_CAP
ARENA_HEADER_SIZE = sizeof(nfv_arena_header)
# Largest frame a slot holds: what follows the headroom.
DATA_ROOM = NFV_BUF_STRIDE - NFV_HEADROOM
MAX_DEVICES = NFV_MAX_DEVICES
FIRST_SOURCE = NFV_FIRST_SOURCE
FIRST_SINK = NFV_FIRST_SINK


class DriverError(NfvError):
    """The pipeline reported an internal error or broke the calling convention."""


class RunResult:
    """What one `HostDriver.run` produced.

    outputs: {out_port: PacketList} of the packets the pipeline sent, in the
        order the pipeline left their records (in each batch: the inputs in
        order, then the packets it made); each list's `ports` holds the
        out_port, its timestamps are the records' timestamp_ns.
    drops: {drop_reason: count} of the records the pipeline left at NFV_NO_PORT.
    oversize: input frames longer than a slot holds (DATA_ROOM), dropped by the
        driver before the pipeline saw them.
    batches: calls of the pipeline. packets: input packets it was given.
    created: records it added after the inputs (Tee copies, ICMP errors, ...).
    """

    __slots__ = ("outputs", "drops", "oversize", "batches", "packets", "created")

    def __init__(self, outputs, drops, oversize, batches, packets, created):
        self.outputs = outputs
        self.drops = drops
        self.oversize = oversize
        self.batches = batches
        self.packets = packets
        self.created = created

    def __repr__(self):
        sent = {port: len(p) for port, p in self.outputs.items()}
        return (f"RunResult(sent={sent}, drops={self.drops}, oversize={self.oversize}, "
                f"batches={self.batches}, packets={self.packets}, created={self.created})")


cdef object _owned_array(void *memory, Py_ssize_t count, Py_ssize_t itemsize, fmt, dtype):
    """A numpy array over malloc'd `memory` that frees it when the array goes
    (no copy); `memory` is freed here at once if there is nothing to wrap."""
    if count == 0:
        free(memory)
        return np.zeros(0, dtype)
    cdef cvarray owner = cvarray(shape=(count,), itemsize=itemsize, format=fmt,
                                 mode="c", allocate_buffer=False)
    owner.data = <char *>memory
    owner.callback_free_data = free
    return np.asarray(owner)


cdef class _PortOutput:
    """The packets a run sends to one port, packed as they come.

    Plain malloc'd buffers grown with realloc, which for big blocks remaps
    pages instead of copying them, and handed to numpy without a copy at the
    end: a frame is copied once, from the pool to here.
    """

    cdef uint8_t port
    cdef uint8_t *data
    cdef int32_t *lengths
    cdef uint64_t *timestamps
    cdef Py_ssize_t count, capacity, nbytes, byte_capacity

    def __cinit__(self, uint8_t port, Py_ssize_t packets_hint, Py_ssize_t bytes_hint):
        self.port = port
        self.capacity = max(packets_hint, 64)
        self.byte_capacity = max(bytes_hint, 4096)
        self.data = <uint8_t *>malloc(self.byte_capacity)
        self.lengths = <int32_t *>malloc(self.capacity * sizeof(int32_t))
        self.timestamps = <uint64_t *>malloc(self.capacity * sizeof(uint64_t))
        if not self.data or not self.lengths or not self.timestamps:
            raise MemoryError()

    def __dealloc__(self):
        free(self.data)
        free(self.lengths)
        free(self.timestamps)

    cdef int add(self, const uint8_t *packet, uint32_t length, uint64_t timestamp) except -1:
        cdef void *grown
        cdef Py_ssize_t want
        if self.count == self.capacity:
            want = 2 * self.capacity
            grown = realloc(self.lengths, want * sizeof(int32_t))
            if not grown:
                raise MemoryError()
            self.lengths = <int32_t *>grown
            grown = realloc(self.timestamps, want * sizeof(uint64_t))
            if not grown:
                raise MemoryError()
            self.timestamps = <uint64_t *>grown
            self.capacity = want
        if self.nbytes + length > self.byte_capacity:
            want = max(2 * self.byte_capacity, self.nbytes + length)
            grown = realloc(self.data, want)
            if not grown:
                raise MemoryError()
            self.data = <uint8_t *>grown
            self.byte_capacity = want
        if length:
            memcpy(self.data + self.nbytes, packet, length)
        self.lengths[self.count] = length
        self.timestamps[self.count] = timestamp
        self.count += 1
        self.nbytes += length
        return 0

    cdef PacketList finish(self):
        """Hand the buffers over to a PacketList (this object is empty afterwards)."""
        # Give back what the doubling over-reserved; shrinking never fails in practice,
        # and if it does the bigger block is still valid.
        cdef void *shrunk = realloc(self.data, max(self.nbytes, 1))
        if shrunk:
            self.data = <uint8_t *>shrunk
        data = _owned_array(self.data, self.nbytes, 1, "B", np.uint8)
        self.data = NULL
        lengths = _owned_array(self.lengths, self.count, sizeof(int32_t), "i", np.int32)
        self.lengths = NULL
        timestamps = _owned_array(self.timestamps, self.count, sizeof(uint64_t), "Q", np.uint64)
        self.timestamps = NULL
        offsets = np.zeros(self.count, np.int64)
        if self.count > 1:
            np.cumsum(lengths[:self.count - 1], out=offsets[1:])
        return PacketList(data, offsets, lengths, timestamps, self.port)


cdef class HostDriver:
    """Runs one compiled pipeline on the host (see the module docstring).

    entry_address: address of the pipeline function (a Numba cfunc's `.address`),
        with the prototype of nfv_pipeline_fn in pipeline_abi.h.
    arena: the pipeline's state, a C-contiguous, writable uint8 array that the
        caller owns and may read and write between runs; it starts with struct
        nfv_arena_header (ARENA_HEADER_SIZE bytes), which the driver fills.
    batch_size: most input packets per call, 1..NFV_MAX_BATCH.
    pool_slots: buffer slots; default batch_size + FREE_CAP. The slots after the
        first batch_size ones (at most FREE_CAP of them) are offered to the
        pipeline on the free list before each call.

    A driver runs one batch at a time: calling it from a second thread while a
    run is in progress raises DriverError (use one driver per thread).
    """

    cdef nfv_pipeline_fn _entry
    cdef readonly object entry_address
    cdef readonly int batch_size
    cdef readonly int pool_slots
    cdef readonly int spare_slots
    cdef readonly int meta_capacity
    cdef readonly object pool       # read-only view of the pool, for inspection
    cdef readonly object meta       # read-only view of the metadata records
    cdef readonly object arena
    cdef object _pool_array, _meta_array
    cdef uint8_t[::1] _arena_view   # holds a buffer export: the arena cannot be resized away
    cdef uint8_t *_pool_ptr
    cdef nfv_pkt_meta *_meta_ptr
    cdef uint8_t *_arena_ptr
    cdef int64_t _pool_len
    cdef int64_t _arena_len
    cdef uint32_t _free_template[NFV_FREE_CAP]
    cdef int32_t _dirty             # records that may hold data from the previous call
    cdef bint _busy

    def __init__(self, entry_address, arena, batch_size=256, pool_slots=None):
        entry_address = operator.index(entry_address)
        if entry_address <= 0:
            raise ValueError(f"entry_address must be a function address, got {entry_address}")
        batch_size = operator.index(batch_size)
        if not 1 <= batch_size <= NFV_MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{NFV_MAX_BATCH}, got {batch_size}")
        pool_slots = batch_size + NFV_FREE_CAP if pool_slots is None else operator.index(pool_slots)
        if pool_slots < batch_size:
            raise ValueError(f"pool_slots ({pool_slots}) must hold at least a batch ({batch_size})")
        if <uint64_t>pool_slots * NFV_BUF_STRIDE > 0xFFFFFFFF:
            raise ValueError(f"pool_slots ({pool_slots}) too large: offsets are 32 bits")
        if not isinstance(arena, np.ndarray) or arena.dtype != np.uint8 or arena.ndim != 1:
            raise TypeError("arena must be a one-dimensional numpy uint8 array")
        if not arena.flags.c_contiguous or not arena.flags.writeable:
            raise ValueError("arena must be C-contiguous and writable")
        if len(arena) < <Py_ssize_t>sizeof(nfv_arena_header):
            raise ValueError(f"arena has {len(arena)} bytes; it must hold at least the "
                             f"{sizeof(nfv_arena_header)}-byte arena header")

        self.entry_address = entry_address
        self._entry = <nfv_pipeline_fn><uintptr_t>entry_address
        self.batch_size = batch_size
        self.pool_slots = pool_slots
        self.spare_slots = min(pool_slots - batch_size, NFV_FREE_CAP)
        self.meta_capacity = batch_size + NFV_FREE_CAP

        self._pool_array = np.zeros(pool_slots * NFV_BUF_STRIDE, np.uint8)
        self._meta_array = np.zeros(self.meta_capacity, META_DTYPE)
        self._pool_ptr = <uint8_t *><uintptr_t>self._pool_array.ctypes.data
        self._meta_ptr = <nfv_pkt_meta *><uintptr_t>self._meta_array.ctypes.data
        self._pool_len = len(self._pool_array)
        self.pool = self._pool_array.view()
        self.pool.flags.writeable = False
        self.meta = self._meta_array.view()
        self.meta.flags.writeable = False

        self.arena = arena
        self._arena_view = arena
        self._arena_ptr = &self._arena_view[0]
        self._arena_len = len(arena)

        # Pops take free_slots[free_count - 1], so the first spare slot is
        # handed out first and a pipeline's new packets go to ascending slots.
        cdef int k
        for k in range(self.spare_slots):
            self._free_template[k] = batch_size + self.spare_slots - 1 - k
        self._dirty = 0
        self._busy = False

    # -- the per-batch work, shared by run and loop ---------------------------------

    cdef int32_t _fill(self, const uint8_t *data, Py_ssize_t data_len, const int64_t *offsets,
                       const int32_t *lengths, const uint64_t *timestamps,
                       const uint8_t *ports, Py_ssize_t count, Py_ssize_t *pos,
                       bint wrap, bint use_now, uint64_t now, uint64_t *newest,
                       int64_t *oversize) noexcept nogil:
        """Copy inputs from *pos on into the pool and fill their records, up to a
        batch; skip (and count) frames too big for a slot. With `wrap`, start
        again at 0 at the end of the inputs (the caller makes sure one fits).
        Returns the records filled; *pos is where the next batch starts."""
        cdef int32_t n = 0
        cdef Py_ssize_t i
        cdef uint32_t length, start
        cdef nfv_pkt_meta *m
        while n < self.batch_size:
            if pos[0] >= count:
                if not wrap:
                    break
                pos[0] = 0
            i = pos[0]
            pos[0] += 1
            if i + 16 < count:
                __builtin_prefetch(data + offsets[i + 16])
            length = <uint32_t>lengths[i]
            if length > NFV_BUF_STRIDE - NFV_HEADROOM:
                oversize[0] += 1
                continue
            start = <uint32_t>n * NFV_BUF_STRIDE + NFV_HEADROOM
            if length <= 64 and offsets[i] + 64 <= data_len:
                # a constant size: the compiler copies inline (a call to memcpy for a
                # small frame cost more than the copy); the bytes past the frame land
                # in the slot's unused tail
                memcpy(self._pool_ptr + start, data + offsets[i], 64)
            elif length:
                memcpy(self._pool_ptr + start, data + offsets[i], length)
            m = &self._meta_ptr[n]
            m.timestamp_ns = now if use_now else timestamps[i]
            m.offset = start
            m.net_offset = NFV_NO_NET_HEADER
            m.dst_ip = 0
            m.length = <uint16_t>length
            m.in_port = ports[i]
            m.out_port = NFV_NO_PORT
            m.paint = 0
            m.drop_reason = 0
            m.reserved0 = 0
            m.reserved1 = 0
            if m.timestamp_ns > newest[0]:
                newest[0] = m.timestamp_ns
            n += 1
        return n

    cdef int32_t _call(self, int32_t n, uint64_t now) noexcept nogil:
        """Clear the records past the batch, refill the free list, call the pipeline."""
        if self._dirty > n:
            memset(&self._meta_ptr[n], 0, (self._dirty - n) * sizeof(nfv_pkt_meta))
        cdef nfv_arena_header *header = <nfv_arena_header *>self._arena_ptr
        header.free_count = self.spare_slots
        memcpy(header.free_slots, self._free_template, self.spare_slots * sizeof(uint32_t))
        cdef int32_t ret = self._entry(self._pool_ptr, self._pool_len, self._meta_ptr, n,
                                       self.meta_capacity, self._arena_ptr, self._arena_len, now)
        # Whatever it returned, the records up to the capacity may be written.
        self._dirty = self.meta_capacity
        if 0 <= ret <= self.meta_capacity:
            self._dirty = max(ret, n)
        return ret

    cdef _check_return(self, int32_t ret, int32_t n, int64_t batch):
        if ret < 0:
            raise DriverError(f"pipeline reported internal error {ret} in batch {batch}")
        if ret < n:
            raise DriverError(f"pipeline returned {ret} records for a batch of {n} in batch "
                              f"{batch}: it must return at least n (pipeline_abi.h)")
        if ret > self.meta_capacity:
            raise DriverError(f"pipeline returned {ret} records in batch {batch}, more than "
                              f"the metadata capacity {self.meta_capacity}")

    def _claim(self):
        if self._busy:
            raise DriverError("this driver is already running in another thread; "
                              "use one HostDriver per thread")
        self._busy = True

    # -- public ---------------------------------------------------------------------

    def run(self, PacketList inputs not None, now_ns=None):
        """Run `inputs` through the pipeline in batches of batch_size, in order.

        now_ns: None replays the inputs' own timestamps (the pipeline's clock is
        the newest timestamp in each batch); a number stamps every packet with
        it and is the clock of every call. Returns a RunResult; raises
        DriverError if the pipeline fails or breaks pipeline_abi.h.
        """
        cdef bint use_now = now_ns is not None
        cdef uint64_t now = 0
        if use_now:
            if not 0 <= operator.index(now_ns) < 2**64:
                raise ValueError(f"now_ns must be a uint64 count of nanoseconds, got {now_ns}")
            now = operator.index(now_ns)
        self._claim()
        try:
            return self._run(inputs, use_now, now)
        finally:
            self._busy = False

    cdef _run(self, PacketList inputs, bint use_now, uint64_t now):
        cdef Py_ssize_t count = len(inputs)
        cdef const uint8_t[::1] data = inputs.data
        cdef const int64_t[::1] offsets = inputs.offsets
        cdef const int32_t[::1] lengths = inputs.lengths
        cdef const uint64_t[::1] timestamps = inputs.timestamps
        cdef const uint8_t[::1] ports = inputs.ports
        # An empty data buffer has no &data[0]; any valid pointer does, as no byte is read.
        cdef const uint8_t *data_ptr = &data[0] if data.shape[0] else <const uint8_t *>self._pool_ptr
        cdef Py_ssize_t pos = 0
        cdef int64_t oversize = 0, batches = 0, packets = 0, created = 0
        cdef int64_t drops[256]
        cdef int32_t n, ret, i
        cdef uint64_t newest, clock
        cdef nfv_pkt_meta *m
        memset(drops, 0, sizeof(drops))
        # One output per port that receives packets, made when the first one arrives
        # and sized for all the inputs (a guess: most configs send most packets one way).
        cdef list outputs = [None] * 256
        cdef _PortOutput out
        cdef Py_ssize_t input_bytes = int(inputs.lengths.sum(dtype=np.int64))

        while pos < count:
            newest = 0
            n = self._fill(data_ptr, data.shape[0], &offsets[0], &lengths[0], &timestamps[0], &ports[0],
                           count, &pos, False, use_now, now, &newest, &oversize)
            if n == 0:
                break  # only oversize frames were left
            clock = now if use_now else newest
            with nogil:
                ret = self._call(n, clock)
            self._check_return(ret, n, batches)
            batches += 1
            packets += n
            created += ret - n
            for i in range(ret):
                m = &self._meta_ptr[i]
                if m.out_port == NFV_NO_PORT:
                    drops[m.drop_reason] += 1
                    continue
                if m.length == 0 and m.out_port < NFV_FIRST_SINK:
                    # Nothing to put on a wire (Strip took it all): counted as a drop,
                    # as the unikernel's driver does, rather than sent as an empty frame.
                    drops[NFV_DROP_EMPTY] += 1
                    continue
                if <int64_t>m.offset + m.length > self._pool_len:
                    raise DriverError(
                        f"pipeline sent record {i} of batch {batches - 1} to port {m.out_port} "
                        f"with offset {m.offset} and length {m.length}, past the end of the "
                        f"{self._pool_len}-byte pool")
                if outputs[m.out_port] is None:
                    outputs[m.out_port] = _PortOutput(m.out_port, count, input_bytes)
                out = <_PortOutput>outputs[m.out_port]
                out.add(self._pool_ptr + m.offset, m.length, m.timestamp_ns)

        return RunResult({port: (<_PortOutput>out_).finish()
                          for port, out_ in enumerate(outputs) if out_ is not None},
                         {r: drops[r] for r in range(256) if drops[r]},
                         oversize, batches, packets, created)

    def loop(self, PacketList inputs not None, double seconds, now_ns=0):
        """Cycle through `inputs` in batches for `seconds`, discarding outputs.

        Each batch costs what it costs in `run` (copy into the pool, fill the
        records, refill the free list, call the pipeline) but nothing is copied
        out and no Python runs between batches; the clock is read every few
        batches, so it overruns `seconds` by at most that much. The pipeline's
        clock starts at now_ns and advances with real time; packets are stamped
        with it. Returns (packets processed, elapsed ns).
        """
        cdef Py_ssize_t count = len(inputs)
        if count == 0:
            raise ValueError("loop needs at least one input packet")
        if not (inputs.lengths <= NFV_BUF_STRIDE - NFV_HEADROOM).any():
            raise ValueError(f"every input frame is longer than a slot holds "
                             f"({NFV_BUF_STRIDE - NFV_HEADROOM} bytes)")
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        if not 0 <= operator.index(now_ns) < 2**64:
            raise ValueError(f"now_ns must be a uint64 count of nanoseconds, got {now_ns}")
        cdef uint64_t start_clock = operator.index(now_ns)
        cdef const uint8_t[::1] data = inputs.data
        cdef const int64_t[::1] offsets = inputs.offsets
        cdef const int32_t[::1] lengths = inputs.lengths
        cdef const uint64_t[::1] timestamps = inputs.timestamps
        cdef const uint8_t[::1] ports = inputs.ports
        cdef const uint8_t *data_ptr = &data[0] if data.shape[0] else <const uint8_t *>self._pool_ptr
        # Read the clock about every 4096 packets: tens of microseconds apart.
        cdef int check_every = max(1, 4096 // self.batch_size)
        cdef int64_t budget = <int64_t>(seconds * 1e9)
        cdef int64_t processed = 0, batches = 0, oversize = 0, elapsed = 0, t0
        cdef Py_ssize_t pos = 0
        cdef uint64_t newest = 0, clock = start_clock
        cdef int32_t n = 0, ret = 0
        cdef int k
        cdef bint failed = False
        cdef timespec ts
        self._claim()
        try:
            with nogil:
                clock_gettime(CLOCK_MONOTONIC, &ts)
                t0 = ts.tv_sec * 1000000000 + ts.tv_nsec
                while not failed:
                    for k in range(check_every):
                        n = self._fill(data_ptr, data.shape[0], &offsets[0], &lengths[0], &timestamps[0],
                                       &ports[0], count, &pos, True, True, clock, &newest,
                                       &oversize)
                        ret = self._call(n, clock)
                        if ret < n or ret > self.meta_capacity:
                            failed = True
                            break
                        processed += n
                        batches += 1
                    clock_gettime(CLOCK_MONOTONIC, &ts)
                    elapsed = ts.tv_sec * 1000000000 + ts.tv_nsec - t0
                    clock = start_clock + <uint64_t>elapsed
                    if elapsed >= budget:
                        break
            if failed:
                self._check_return(ret, n, batches)
        finally:
            self._busy = False
        return processed, elapsed
