"""Live NICs for a config on the host: TAP devices and AF_PACKET sockets.

    nfv run configs/router.click --nic 0=tap:rta --nic 1=tap:rtb

Each `--nic DEV=KIND:NAME` binds a device of the config (a number, or the name
FromDevice/ToDevice give it) to a live interface:

  tap:NAME        the TAP device NAME (IFF_TAP | IFF_NO_PI), created if it does
                  not exist, as QEMU does, or attached to an existing one; it is
                  brought up. What the kernel sends out of the tap reaches the
                  config's FromDevice, and what the config sends to ToDevice is
                  received by the kernel on the tap.
  af_packet:NAME  an existing interface (one end of a veth pair, a NIC) through
                  an AF_PACKET raw socket; brought up, and put in promiscuous
                  mode if the config's FromDevice says PROMISC true. Turn off
                  the peer's checksum and segmentation offloads (`ethtool -K
                  PEER tx off tso off gso off`): a raw socket sees frames as
                  the stack left them, with TCP/UDP checksums unfinished and
                  segments of up to 64 KB, which a slot cannot hold.

The loop: wait until a NIC has frames (poll, with a short timeout), read up to
a batch from every ready NIC (non-blocking), push them through the pipeline as
one PacketList with now_ns = time.monotonic_ns(), and write each output frame
to the NIC of its device. SIGINT or SIGTERM stops it; the counters are printed
as `nfv run` prints them, with each NIC's frames in and out.

It is plain Python (os.read/os.write, one system call per frame), which is
enough for tests and tens of thousands of frames per second (see README.md,
"Live NICs", for a measurement), not for line rate.

For tests, `LiveHost` runs `nfv run --nic` as a child process (optionally in a
network namespace) and waits for its ready line:

    with LiveHost("configs/router.click", {0: "tap:rta", 1: "tap:rtb"}, netns="rt") as nf:
        ...                      # the taps exist now, in namespace rt
    nf.report                    # the run's JSON report, once stopped
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from nfv.errors import NfvError

KINDS = ("tap", "af_packet")
IFNAMSIZ = 16                  # interface names are at most 15 bytes and a NUL

# <linux/if_tun.h>, <linux/sockios.h>, <linux/if.h>, <linux/if_packet.h>
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_IGNORE_OUTGOING = 23    # Linux 4.20
PACKET_OUTGOING = 4            # pkttype of frames this host sent

# Read errors that mean the interface was deleted under us (a tap fd then polls as
# ready with POLLERR forever, so the loop must stop rather than spin).
GONE = (errno.EBADFD, errno.ENODEV, errno.ENXIO)
POLL_MS = 100                  # how long the loop sleeps with no traffic and no signal
READY = re.compile(r": ready on the host\b")


# -- the command line's --nic -------------------------------------------------------------


@dataclass
class NicSpec:
    """One `--nic DEV=KIND:NAME`."""

    dev: int | str             # the config's device: a number or a FromDevice/ToDevice name
    kind: str                  # "tap" or "af_packet"
    name: str                  # the interface
    text: str                  # as the user wrote it, for messages

    def __str__(self) -> str:
        return f"{self.dev}={self.kind}:{self.name}"


def parse_nic(text: str) -> NicSpec:
    """`0=tap:nfv0` -> NicSpec(0, 'tap', 'nfv0'); NfvError with the fix otherwise."""
    usage = "write --nic DEVICE=tap:NAME or --nic DEVICE=af_packet:IFNAME, e.g. --nic 0=tap:nfv0"
    dev, sep, spec = text.partition("=")
    if not sep or not dev or not spec:
        raise NfvError(f"--nic {text}: {usage}")
    kind, colon, name = spec.partition(":")
    if not colon:
        raise NfvError(f"--nic {text}: '{spec}' has no kind: {usage}")
    if kind not in KINDS:
        raise NfvError(f"--nic {text}: unknown kind '{kind}'; use tap:NAME (a TAP device, "
                       "created if missing) or af_packet:IFNAME (an existing interface)")
    if not name:
        raise NfvError(f"--nic {text}: give the interface's name ({kind}:NAME)")
    if len(name.encode()) >= IFNAMSIZ or "/" in name or name in (".", "..") or \
            any(c.isspace() for c in name):
        raise NfvError(f"--nic {text}: '{name}' is not a valid interface name "
                       f"(at most {IFNAMSIZ - 1} bytes, no '/' or spaces)")
    return NicSpec(int(dev) if dev.isdigit() else dev, kind, name, text)


def parse_nics(items: list[str]) -> list[NicSpec]:
    specs = [parse_nic(item) for item in items]
    for k, spec in enumerate(specs):
        for other in specs[:k]:
            if other.dev == spec.dev:
                raise NfvError(f"--nic {spec.text}: device {spec.dev} is already bound "
                               f"by --nic {other.text}")
            if other.name == spec.name:
                raise NfvError(f"--nic {spec.text}: interface {spec.name} is already used "
                               f"by --nic {other.text}")
    return specs


# -- opening interfaces -----------------------------------------------------------------


def _why(e: OSError, needs: str = "CAP_NET_ADMIN") -> str:
    if e.errno == errno.EPERM or e.errno == errno.EACCES:
        how = ("; or attach to a persistent tap you own (ip tuntap add NAME mode tap user YOU)"
               if needs == "CAP_NET_ADMIN" else "")
        return f"permission denied: this needs root ({needs}), e.g. run it with sudo{how}"
    return e.strerror or str(e)


def open_tap(name: str) -> int:
    """A non-blocking fd on TAP device `name` (created if missing), frames without a header."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NfvError("there is no /dev/net/tun: load the tun module (modprobe tun)") from None
    except OSError as e:
        raise NfvError(f"cannot open /dev/net/tun: {_why(e)}") from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError as e:
        os.close(fd)
        if e.errno == errno.EBUSY:
            raise NfvError(f"tap {name} is in use by another program") from None
        if e.errno == errno.EINVAL:
            raise NfvError(f"cannot attach to {name}: it exists and is not a tap "
                           "(for an existing interface use af_packet:NAME)") from None
        raise NfvError(f"cannot create or attach tap {name}: {_why(e)}") from None
    return fd


def set_up(name: str) -> None:
    """Bring interface `name` up (what `ip link set NAME up` does).

    Without the right to (a user's own persistent tap), say so and go on: it may
    be brought up later by someone who has it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH", name.encode(), 0))
            flags = struct.unpack("16sH", ifr[:18])[1]
            if not flags & IFF_UP:
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", name.encode(), flags | IFF_UP))
        except PermissionError:
            print(f"nfv: note: {name} is down and bringing it up needs CAP_NET_ADMIN: "
                  f"ip link set {name} up", file=sys.stderr)
        except OSError as e:
            raise NfvError(f"cannot bring {name} up: {_why(e)}") from None


def open_af_packet(name: str, promisc: bool = False) -> tuple[socket.socket, bool]:
    """A non-blocking raw socket on existing interface `name`, all protocols.

    Returns (socket, True if the kernel already hides the frames we send; else the
    reader must skip PACKET_OUTGOING frames itself)."""
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except OSError as e:
        raise NfvError(f"cannot open a raw socket for {name}: {_why(e, 'CAP_NET_RAW')}") from None
    try:
        s.bind((name, 0))
    except OSError as e:
        s.close()
        if e.errno == errno.ENODEV:
            raise NfvError(f"there is no interface {name} (af_packet needs an existing "
                           "interface; tap:NAME creates one)") from None
        raise NfvError(f"cannot bind a raw socket to {name}: {_why(e)}") from None
    if promisc:
        index = socket.if_nametoindex(name)
        s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                     struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b""))
    try:
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        hides_outgoing = True
    except OSError:
        hides_outgoing = False
    s.setblocking(False)
    return s, hides_outgoing


# -- one NIC ---------------------------------------------------------------------------


@dataclass
class Nic:
    """A bound, open interface and its counters."""

    spec: NicSpec
    in_port: int | None        # in_port of the frames it receives (None: the config reads none)
    out_port: int | None       # out_port the config sends to it on (None: it sends none)
    fd: int = -1
    sock: socket.socket | None = None
    hides_outgoing: bool = True
    rx: int = 0                # frames read
    tx: int = 0                # frames written
    tx_errors: int = 0         # frames the interface refused (down, queue full, too big)
    rx_errors: int = 0         # failed reads (af_packet: the interface went down)
    gone: str | None = None    # why the interface is no more (deleted), if it is not
    errors: dict[str, int] = field(default_factory=dict)

    def open(self, promisc: bool) -> None:
        name = self.spec.name
        try:
            if self.spec.kind == "tap":
                self.fd = open_tap(name)
            else:
                self.sock, self.hides_outgoing = open_af_packet(name, promisc)
                self.fd = self.sock.fileno()
            set_up(name)
        except NfvError as e:
            self.close()
            raise NfvError(f"--nic {self.spec.text}: {e}") from None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        elif self.fd >= 0:
            os.close(self.fd)
        self.sock, self.fd = None, -1

    def receive(self, frames: list, limit: int, size: int) -> int:
        """Append up to `limit` frames that are waiting (reads stop at `size` bytes)."""
        n = 0
        try:
            if self.sock is None:
                read, fd = os.read, self.fd
                while n < limit:
                    frames.append(read(fd, size))
                    n += 1
            elif self.hides_outgoing:
                recv = self.sock.recv
                while n < limit:
                    frames.append(recv(size))
                    n += 1
            else:
                recvfrom = self.sock.recvfrom
                while n < limit:
                    data, addr = recvfrom(size)
                    if addr[2] != PACKET_OUTGOING:
                        frames.append(data)
                        n += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            if e.errno in GONE:
                self.gone = e.strerror or str(e)
            else:   # ENETDOWN and the like: the interface may come back
                self.rx_errors += 1
                self._count_error(e)
        self.rx += n
        return n

    def send(self, packets) -> None:
        """Write every frame of a PacketList; refusals are counted, never raised."""
        write = os.write if self.sock is None else None
        send = self.sock.send if self.sock is not None else None
        fd = self.fd
        for frame in packets.to_list():
            try:
                if write is not None:
                    write(fd, frame)
                else:
                    send(frame)
                self.tx += 1
            except OSError as e:  # EIO: tap down; ENOBUFS/EAGAIN: queue full; EMSGSIZE
                self.tx_errors += 1
                self._count_error(e)

    def _count_error(self, e: OSError) -> None:
        key = errno.errorcode.get(e.errno, str(e.errno))
        self.errors[key] = self.errors.get(key, 0) + 1


# -- the loop ----------------------------------------------------------------------------


class LiveLoop:
    """Frames from the NICs through a HostNF and back out, until stop().

    stop() may be called from another thread or a signal handler: it wakes the
    loop through a pipe, so stopping takes one batch at most, not a poll timeout.
    """

    def __init__(self, nf, nics: list[Nic], on_sink=None):
        from nfv.dataplane.driver import DATA_ROOM

        self.nf = nf
        self.nics = nics
        self.batch = nf.driver.batch_size
        # One byte more than a slot holds: a longer frame arrives too long (the driver
        # counts it as oversize) instead of cut to a plausible-looking shorter one.
        self.read_size = DATA_ROOM + 1
        self.by_out_port = {nic.out_port: nic for nic in nics if nic.out_port is not None}
        self.on_sink = on_sink or (lambda port, packets: None)
        self.packets = 0
        self.batches = 0
        self.outputs: dict[int, int] = {}
        self.drops: dict[int, int] = {}
        self.oversize = 0
        self.unbound = 0       # frames sent to a device with no --nic
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def stop(self) -> None:
        self._stopping = True
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass   # the pipe is full (already woken) or closed (already stopped)

    def run(self) -> None:
        from nfv.dataplane.pcap import PacketList

        poller = select.poll()
        readers = {nic.fd: nic for nic in self.nics if nic.in_port is not None}
        for fd in readers:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self._stopping:
                ready = poller.poll(POLL_MS)
                frames: list[bytes] = []
                ports: list[int] = []
                for fd, _ in ready:
                    nic = readers.get(fd)
                    if nic is None:
                        continue
                    n = nic.receive(frames, self.batch, self.read_size)
                    ports += [nic.in_port] * n
                    if nic.gone is not None:
                        print(f"nfv: --nic {nic.spec.text}: the interface is gone ({nic.gone}); "
                              "stopping", file=sys.stderr, flush=True)
                        self._stopping = True
                if frames:
                    self._push(PacketList.from_bytes(frames, ports=ports))
        finally:
            wake_r, wake_w = self._wake_r, self._wake_w
            self._wake_r = self._wake_w = -1      # stop() after this writes nowhere
            os.close(wake_r)
            os.close(wake_w)

    def _push(self, packets) -> None:
        result = self.nf.run(packets, now_ns=time.monotonic_ns())
        self.packets += len(packets)
        self.batches += result.batches
        self.oversize += result.oversize
        for reason, n in result.drops.items():
            self.drops[reason] = self.drops.get(reason, 0) + n
        for port, plist in result.outputs.items():
            self.outputs[port] = self.outputs.get(port, 0) + len(plist)
            nic = self.by_out_port.get(port)
            if nic is not None:
                nic.send(plist)
            elif self.nf.sink_element(port) is not None:
                self.on_sink(port, plist)
            else:
                self.unbound += len(plist)


# -- `nfv run --nic` ---------------------------------------------------------------------


def _port(lookup, dev):
    try:
        return lookup(dev)
    except NfvError:
        return None


def bind(nf, specs: list[NicSpec]) -> list[Nic]:
    """A Nic per spec, with the in/out ports its device has in `nf`; NfvError if the
    config neither reads nor writes a device."""
    nics = []
    for spec in specs:
        in_port = _port(nf.input_port, spec.dev)
        out_port = _port(nf.output_port, spec.dev)
        if in_port is None and out_port is None:
            used = sorted({str(nf._devname(name)) for name in nf.plan.device_numbers
                           if nf.graph.elements[name].instance.role in ("device", "device_out")})
            raise NfvError(f"--nic {spec.text}: the config has no device {spec.dev!r}"
                           + (f" (its devices: {', '.join(used)})" if used else
                              " (it has no FromDevice or ToDevice)"))
        nics.append(Nic(spec, in_port, out_port))
    return nics


def _promisc(nf, in_port: int | None) -> bool:
    if in_port is None:
        return False
    return bool(nf.graph.elements[nf.plan.entries[in_port]].instance.conf.get("PROMISC"))


def run(config: str, defines: dict[str, str], nic_items: list[str], stats: str = "table",
        boundscheck: bool = False, out=sys.stdout, batch_size: int = 256) -> int:
    """`nfv run CONFIG --nic ...`: run until SIGINT/SIGTERM, then print the counters."""
    from nfv import drops
    from nfv.dataplane.pcap import PacketList, write_pcap
    from nfv.host import HostNF
    from nfv.run import print_report

    specs = parse_nics(nic_items)
    t0 = time.monotonic()
    nf = HostNF(config, defines, boundscheck, batch_size=batch_size)
    if nf.plan.sources:
        names = ", ".join(f"{s} ({nf.graph.elements[s].class_name})" for s in nf.plan.sources)
        raise NfvError(f"nfv run --nic does not run source elements: {names}; "
                       "run the config on pcaps (--in/--out) instead, or feed it from a NIC")
    nics = bind(nf, specs)
    bound_outs = {nic.out_port for nic in nics}
    unbound = sorted({str(nf._devname(name)) for name, num in nf.plan.device_numbers.items()
                      if nf.graph.elements[name].instance.role == "device_out"
                      and num not in bound_outs})
    sinks: dict[int, list] = {}

    def on_sink(port, plist):
        inst = nf.graph.elements[nf.sink_element(port)].instance
        if inst.class_name == "Print":
            for data, stamp in zip(plist.to_list(), plist.timestamps):
                print(inst.line(data, int(stamp)), file=sys.stderr, flush=True)
        else:   # ToDump: kept, written at the end as `nfv run` writes it
            sinks.setdefault(port, []).append(plist)

    loop = LiveLoop(nf, nics, on_sink)
    old_handlers = {}
    try:
        for nic in nics:
            nic.open(_promisc(nf, nic.in_port))
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, lambda *_: loop.stop())
        if unbound:
            print(f"nfv: note: no --nic for device {', '.join(unbound)}: what the config "
                  "sends there is counted and dropped", file=sys.stderr)
        print(f"{config}: ready on the host in {(time.monotonic() - t0) * 1000:.0f} ms, "
              f"{len(nics)} NIC{'s' if len(nics) != 1 else ''}: "
              + ", ".join(str(nic.spec) for nic in nics), file=sys.stderr, flush=True)
        loop.run()
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        for nic in nics:
            nic.close()

    written = {}
    for k, element in enumerate(nf.plan.sinks):
        inst = nf.graph.elements[element].instance
        if inst.class_name == "Print":
            continue
        lists = sinks.get(nf.plan.device_numbers[element], [])
        plist = PacketList.concat(lists) if lists else PacketList.from_bytes([])
        path = inst.conf["FILENAME"]
        write_pcap(path, plist, snaplen=inst.conf.get("SNAPLEN") or 65535)
        written[path] = len(plist)
    report = {
        "packets": loop.packets,
        "outputs": {str(nf.sink_element(p) or p): n for p, n in sorted(loop.outputs.items())},
        "files": written,
        "drops": {drops.name(r): n for r, n in sorted(loop.drops.items())},
        "oversize": loop.oversize,
        "elements": nf.counters(),
        "nics": {str(nic.spec.dev): {"interface": f"{nic.spec.kind}:{nic.spec.name}",
                                     "rx": nic.rx, "tx": nic.tx, "rx_errors": nic.rx_errors,
                                     "tx_errors": nic.tx_errors, "errors": nic.errors}
                 for nic in nics},
        "unbound": loop.unbound,
    }
    if stats == "json":
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        print_report(report, out)
        for dev, row in report["nics"].items():
            problems = [f"{row['tx_errors']} refused"] if row["tx_errors"] else []
            problems += [f"{row['rx_errors']} failed reads"] if row["rx_errors"] else []
            problems += [f"{k} {v}" for k, v in row["errors"].items()]
            out.write(f"NIC {dev} ({row['interface']}): {row['rx']} in, {row['tx']} out"
                      + (f" ({', '.join(problems)})" if problems else "") + "\n")
        if loop.unbound:
            out.write(f"{loop.unbound} sent to devices with no --nic\n")
    return 0


# -- for tests: `nfv run --nic` as a child process --------------------------------------------


class LiveHost:
    """`nfv run CONFIG --nic ...` in a child process, optionally inside a network namespace.

    start() returns once the child's NICs are open (its ready line), so a test
    can then move or configure the interfaces; stop() sends SIGTERM and keeps the
    JSON report in `report`. The child gets SIGKILL if the thread that started it
    dies (setpriv --pdeathsig), so no runner outlives its test.
    """

    def __init__(self, config: str, nics: dict[int | str, str], defines: dict[str, str] | None = None,
                 *, netns: str | None = None, ready_timeout: float = 120.0):
        self.config = str(config)
        self.nics = dict(nics)
        self.defines = dict(defines or {})
        self.netns = netns
        self.ready_timeout = ready_timeout
        self.report: dict | None = None
        self.stderr: list[str] = []
        self.ready_line: str | None = None
        self._proc: subprocess.Popen | None = None
        self._cond = threading.Condition()
        self._readers: list[threading.Thread] = []
        self._stderr_done = False
        self._stdout: list[str] = []

    def __enter__(self) -> "LiveHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def command_line(self) -> list[str]:
        cmd = [sys.executable, "-m", "nfv.cli", "run", self.config, "--stats", "json"]
        for name, value in self.defines.items():
            cmd += ["-D", f"{name}={value}"]
        for dev, spec in self.nics.items():
            cmd += ["--nic", f"{dev}={spec}"]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        if shutil.which("setpriv"):
            cmd = ["setpriv", "--pdeathsig", "KILL", "--"] + cmd
        return cmd

    def start(self) -> "LiveHost":
        if self._proc is not None:
            raise NfvError("this LiveHost was already started")
        self._proc = subprocess.Popen(self.command_line(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        # Both pipes are drained by threads, so neither can fill up and stall the child.
        self._readers = [threading.Thread(target=self._read_stderr, daemon=True),
                         threading.Thread(target=self._read_stdout, daemon=True)]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + self.ready_timeout
        with self._cond:
            while self.ready_line is None and not self._stderr_done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
        if self.ready_line is None:
            self._kill()
            raise NfvError("nfv run --nic did not get ready: "
                           + ("\n".join(self.stderr[-20:]) or "(no output)"))
        return self

    def _read_stderr(self) -> None:
        for line in self._proc.stderr:
            with self._cond:
                self.stderr.append(line.rstrip("\n"))
                if self.ready_line is None and READY.search(line):
                    self.ready_line = line.strip()
                self._cond.notify_all()
        with self._cond:
            self._stderr_done = True
            self._cond.notify_all()

    def _read_stdout(self) -> None:
        self._stdout.append(self._proc.stdout.read())

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> dict | None:
        """SIGTERM, wait for the report; kill the child if it does not stop in time."""
        if self._proc is None:
            return self.report
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise NfvError(f"nfv run --nic did not stop within {timeout:g} s of SIGTERM") from None
        finally:
            for reader in self._readers:
                reader.join(timeout=2.0)
            self._readers = []
        stdout = "".join(self._stdout)
        try:
            self.report = json.loads(stdout) if stdout.strip() else None
        except json.JSONDecodeError:
            self.report = None
        return self.report

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        for reader in self._readers:
            reader.join(timeout=2.0)
        self._readers = []
