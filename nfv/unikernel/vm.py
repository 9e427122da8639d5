"""Boot a unikernel image under QEMU microvm and talk to it.

    with VM("fw.elf", nics=["tcp", "tcp"], memory="8M") as vm:
        vm.send(0, frame_bytes)
        out = vm.recv(1, timeout=1.0)         # bytes, or None after the timeout
        vm.command("nics")                    # ['nic 0 rx=1 tx=0 ...', 'nic 1 ...']
        counters = vm.read_arena(1088, 64)
        with vm.held():                       # no batch runs inside: a change lands whole
            vm.write_arena(1088, bytes(16))
    # leaving the block sends `quit`, then kills QEMU if it has not exited

NICs, in order (NIC 0 is the first):
  "tcp" / "tcp:PORT"  a QEMU `-netdev stream` server on 127.0.0.1 (a free port
                      when none is given) that this object connects to; frames
                      travel as a 4-byte big-endian length and the bytes.
                      QEMU does not wait for the connection: the guest boots at
                      once and what it sends before we connect is lost, so the
                      connection is made before waiting for `ready`.
  "tap:NAME"          QEMU creates tap NAME (vhost off: there is no
                      /dev/vhost-net here); with `netns=` QEMU runs inside that
                      network namespace (`ip netns exec`), so the tap appears
                      there. send/recv use an AF_PACKET socket on the tap.

With `connect=False` the NICs are left to someone else (`nfv boot`: the
user's traffic tool connects to QEMU's stream server at `vm.nics[i].port`,
or uses the tap, which is still brought up): this object opens no socket,
and send/recv raise NfvError. QEMU's stream server discards what the guest
sends on a NIC while no client is connected to it.

Flow control: the guest takes a frame only when every NIC's transmit ring has
room for it, so over a stream netdev nothing is lost, however fast frames are
sent: when a transmit side is slow, QEMU stops reading the other sockets and
`send` blocks (the reader threads keep draining what the guest sends, so a
sender never deadlocks against its own replies).

The guest's console is COM1 on QEMU's stdio: a reader thread keeps its lines
(`console`), `ready` is read from it (never from stderr, where QEMU prints a CPU
feature warning), and commands go to QEMU's stdin. Every wait has a timeout.
QEMU is never left behind: `stop()` kills it after a short grace period, the
object's finalizer and an atexit hook kill it too, and the child asks the
kernel to SIGKILL it if the thread that started it dies (PR_SET_PDEATHSIG, set
by util-linux `setpriv`; create VMs from a thread that outlives them).
"""
from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import os
import queue
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from nfv.errors import NfvError
from nfv.unikernel import EXIT_NORMAL, exit_meaning

QEMU = "qemu-system-x86_64"
READ_CHUNK = 4096        # the guest's limit for one `read` command
WRITE_CHUNK = 4096       # the guest's limit for one `write` command (8192 hex digits)
_READY = re.compile(r"^ready\b(.*)$")
_PACKET_OUTGOING = 4     # AF_PACKET pkttype of frames the host itself sent


@dataclass
class _Nic:
    index: int
    kind: str                      # "tcp" or "tap"
    port: int | None = None        # tcp
    auto_port: bool = False
    ifname: str | None = None      # tap
    sock: socket.socket | None = None
    frames: queue.Queue = field(default_factory=queue.Queue)
    reader: threading.Thread | None = None


def _parse_nic(index: int, spec: str) -> _Nic:
    kind, _, arg = spec.partition(":")
    if kind == "tcp":
        if arg and not arg.isdigit():
            raise NfvError(f"NIC {index} '{spec}': the port must be a number (tcp:PORT)")
        return _Nic(index, "tcp", int(arg) if arg else None, auto_port=not arg)
    if kind == "tap":
        if not arg or len(arg) > 15:
            raise NfvError(f"NIC {index} '{spec}': give the tap's name, at most 15 characters (tap:NAME)")
        return _Nic(index, "tap", ifname=arg)
    raise NfvError(f"NIC {index} '{spec}': unknown kind; use tcp, tcp:PORT or tap:NAME")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvm_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


# Every running VM, so the atexit hook can kill what is left.
_LIVE: "weakref.WeakSet[VM]" = weakref.WeakSet()


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@atexit.register
def _kill_all() -> None:
    for vm in list(_LIVE):
        if vm._proc is not None:
            _kill(vm._proc)


class VM:
    """One QEMU microvm running an nfv image (see the module docstring)."""

    def __init__(self, image: str | Path, nics=("tcp", "tcp"), memory: str | int = "8M", *,
                 netns: str | None = None, accel: str | None = None, ready_timeout: float = 10.0,
                 append: str = "", qemu: str = QEMU, extra_args=(), connect: bool = True):
        self.image = Path(image)
        if not self.image.exists():
            raise NfvError(f"unikernel image {self.image} does not exist")
        self.nic_specs = list(nics)
        self.memory = f"{memory // (1 << 20)}M" if isinstance(memory, int) else str(memory)
        self.netns = netns
        self.accel = accel or ("kvm" if kvm_usable() else "tcg")
        self.ready_timeout = ready_timeout
        self.append = append
        self.qemu = qemu
        self.extra_args = list(extra_args)
        self.connect = connect
        self.nics: list[_Nic] = []
        self.launch_to_ready_ms: float | None = None
        self.boot_us: int | None = None
        self.ready_line: str | None = None
        self.config_name: str | None = None
        self.guest_nics: int | None = None
        self.status: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lines: list[str] = []
        self._line_times: list[float] = []
        self._cond = threading.Condition()
        self._eof = False
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._command_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------------

    def __enter__(self) -> "VM":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def command_line(self) -> list[str]:
        cmd = [self.qemu, "-M", "microvm,acpi=off", "-global", "virtio-mmio.force-legacy=false",
               "-m", self.memory, "-display", "none", "-serial", "stdio", "-monitor", "none",
               "-no-reboot", "-nodefaults", "-kernel", str(self.image),
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        cmd += ["-enable-kvm"] if self.accel == "kvm" else ["-accel", "tcg"]
        if self.append:
            cmd += ["-append", self.append]
        for nic in self.nics:
            if nic.kind == "tcp":
                netdev = (f"stream,id=n{nic.index},server=on,addr.type=inet,"
                          f"addr.host=127.0.0.1,addr.port={nic.port}")
            else:
                netdev = f"tap,id=n{nic.index},ifname={nic.ifname},script=no,downscript=no,vhost=off"
            cmd += ["-netdev", netdev, "-device", f"virtio-net-device,netdev=n{nic.index}"]
        cmd += self.extra_args
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        if shutil.which("setpriv"):
            # QEMU gets SIGKILL if the thread that started it dies (util-linux setpriv;
            # the death signal survives the exec of ip and QEMU).
            cmd = ["setpriv", "--pdeathsig", "KILL", "--"] + cmd
        return cmd

    def start(self) -> "VM":
        """Launch QEMU, connect the NICs and wait for the guest's `ready` line."""
        if self._proc is not None:
            raise NfvError("this VM was already started")
        if shutil.which(self.qemu) is None:
            raise NfvError(f"{self.qemu} is not installed (Debian: apt-get install qemu-system-x86)")
        self.nics = [_parse_nic(i, spec) for i, spec in enumerate(self.nic_specs)]
        for attempt in range(3):
            for nic in self.nics:
                if nic.auto_port:
                    nic.port = _free_port()
            try:
                self._launch()
                return self
            except NfvError as e:
                # A free port picked for us can be taken before QEMU binds it: retry.
                if "in use" not in str(e) or not any(n.auto_port for n in self.nics) or attempt == 2:
                    raise
                self._reset()
        return self

    def _reset(self) -> None:
        self._kill_and_close()
        self._proc = None
        self._lines, self._line_times, self._eof, self.status = [], [], False, None
        self._stderr.clear()
        for nic in self.nics:
            nic.sock, nic.frames = None, queue.Queue()

    def _launch(self) -> None:
        t0 = time.monotonic()
        # No preexec_fn: it would make Python fork() (copying a big test process's
        # page tables, ~5 ms) instead of vfork(); setpriv sets the death signal.
        self._proc = subprocess.Popen(self.command_line(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        _LIVE.add(self)
        weakref.finalize(self, _kill, self._proc)
        self._spawn(self._read_console)
        self._spawn(self._read_stderr)
        deadline = t0 + self.ready_timeout
        for nic in self.nics:
            if nic.kind == "tcp" and self.connect:
                self._connect(nic, deadline)
        index, line = self._wait_line(lambda l: _READY.match(l), 0, deadline, "the guest's ready line")
        # When the line arrived (the reader thread's clock), not when this thread,
        # busy connecting NICs, got round to it.
        self.launch_to_ready_ms = (self._line_times[index] - t0) * 1000
        self.ready_line = line
        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        self.boot_us = int(fields["boot_us"]) if fields.get("boot_us", "").isdigit() else None
        self.guest_nics = int(fields["nics"]) if fields.get("nics", "").isdigit() else len(self.nics)
        self.config_name = line.split("config=", 1)[1] if "config=" in line else None
        for nic in self.nics:
            if nic.kind == "tap":
                self._open_tap(nic)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _connect(self, nic: _Nic, deadline: float) -> None:
        """QEMU listens before the guest starts, but not before exec: retry briefly."""
        while True:
            try:
                nic.sock = self._in_netns(lambda: socket.create_connection(("127.0.0.1", nic.port),
                                                                           timeout=1.0))
                break
            except OSError:
                if self._proc.poll() is not None:
                    self._raise_exited(f"connecting NIC {nic.index} (tcp port {nic.port})")
                if time.monotonic() > deadline:
                    raise NfvError(f"NIC {nic.index}: could not connect to QEMU on 127.0.0.1:{nic.port} "
                                   f"within {self.ready_timeout:g} s") from None
                time.sleep(0.001)
        nic.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nic.sock.settimeout(None)
        self._spawn(self._read_tcp, nic)

    def stop(self, timeout: float = 2.0) -> int | None:
        """Ask the guest to quit, then kill QEMU if it has not exited; returns its status."""
        if self._proc is None:
            return self.status
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write(b"quit\n")
                self._proc.stdin.flush()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill_and_close()
        return self.status

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for QEMU to exit by itself (a source-only config's `done`); returns its status."""
        try:
            self.status = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_and_close()
            raise NfvError(f"the guest did not exit within {timeout:g} s; console tail:\n"
                           + self._tail()) from None
        self._kill_and_close()
        return self.status

    def _kill_and_close(self) -> None:
        if self._proc is not None:
            _kill(self._proc)
            self.status = self._proc.returncode
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
        for nic in self.nics:
            if nic.sock is not None:
                try:
                    nic.sock.close()
                except OSError:
                    pass
        for thread in self._threads:
            thread.join(timeout=1.0)
        self._threads = []
        _LIVE.discard(self)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- console ------------------------------------------------------------------

    @property
    def console(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    # The reader threads end at EOF, or when _kill_and_close closes the pipe under a
    # readline (ValueError from the closed buffer, seen once in a suite run): the same.

    def _read_console(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(self._proc.stdout.readline, b""):
                with self._cond:
                    self._line_times.append(time.monotonic())
                    self._lines.append(raw.decode("ascii", "replace").rstrip("\r\n"))
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(self._proc.stderr.readline, b""):
                self._stderr.append(raw.decode("utf-8", "replace").rstrip())

    def _tail(self, lines: int = 15) -> str:
        with self._cond:
            tail = self._lines[-lines:]
        text = "\n".join(f"  | {l}" for l in tail) or "  (no console output)"
        errors = [l for l in self._stderr if "CPUID" not in l]     # the known feature warning
        if errors:
            text += "\n  QEMU stderr:\n" + "\n".join(f"  ! {l}" for l in errors[-8:])
        return text

    def _raise_exited(self, doing: str):
        try:
            self.status = self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.status = self._proc.poll()
        for thread in self._threads[:2]:        # console and stderr readers: every last line
            thread.join(timeout=1.0)
        raise NfvError(f"QEMU exited while {doing}: status {self.status} ({exit_meaning(self.status)}); "
                       f"console tail:\n{self._tail()}")

    def _wait_line(self, match, start: int, deadline: float, what: str) -> tuple[int, str]:
        """First console line at index >= start that `match` accepts."""
        with self._cond:
            i = start
            while True:
                while i < len(self._lines):
                    if match(self._lines[i]):
                        return i, self._lines[i]
                    i += 1
                if self._eof:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NfvError(f"timed out waiting for {what}; console tail:\n{self._tail()}")
                self._cond.wait(min(left, 0.2))
        self._raise_exited(f"waiting for {what}")

    def wait_line(self, prefix: str, timeout: float = 5.0) -> str:
        """The first console line (from the start of the run) beginning with prefix."""
        return self._wait_line(lambda l: l.startswith(prefix), 0, time.monotonic() + timeout,
                               f"a line starting '{prefix}'")[1]

    def command(self, text: str, timeout: float = 5.0) -> list[str]:
        """Send one console command; return its response lines (see control.c)."""
        if "\n" in text:
            raise NfvError("one command per call, without a newline")
        word = text.split()[0] if text.split() else ""
        expected = {"read": 1, "stats": 1, "drops": 1, "nics": self.guest_nics or 0}.get(word, 1)
        prefixes = ("data ", "nic ", "stats ", "drops", "error ", "ok")
        with self._command_lock:
            with self._cond:
                start = len(self._lines)
            if self._proc.poll() is not None:
                self._raise_exited(f"sending '{text}'")
            try:
                self._proc.stdin.write(text.encode() + b"\n")
                self._proc.stdin.flush()
            except OSError:
                self._raise_exited(f"sending '{text}'")
            deadline = time.monotonic() + timeout
            lines: list[str] = []
            while len(lines) < expected:
                start, line = self._wait_line(lambda l: l.startswith(prefixes), start, deadline,
                                              f"the answer to '{text}'")
                start += 1
                lines.append(line)
                if line.startswith("error "):
                    break
            return lines

    def read_arena(self, offset: int, length: int) -> bytes:
        """Bytes of the guest's arena (element state), read through the console."""
        out = bytearray()
        while len(out) < length:
            n = min(READ_CHUNK, length - len(out))
            line = self.command(f"read {offset + len(out)} {n}")[0]
            if not line.startswith("data "):
                raise NfvError(f"reading the arena at {offset + len(out)}+{n}: {line}")
            out += bytes.fromhex(line[5:])
        return bytes(out)

    def write_arena(self, offset: int, data: bytes) -> None:
        """Copy bytes into the guest's arena (element state), through the console.

        Each `write` command lands between two batches; a change that takes more
        than one command (over WRITE_CHUNK bytes) is only whole to the pipeline
        inside `held()`."""
        data = bytes(data)
        for start in range(0, len(data), WRITE_CHUNK):
            chunk = data[start:start + WRITE_CHUNK]
            line = self.command(f"write {offset + start} {chunk.hex()}")[0]
            if line != "ok":
                raise NfvError(f"writing the arena at {offset + start}+{len(chunk)}: {line}")

    @contextlib.contextmanager
    def held(self):
        """No batch runs in the guest inside this block (`hold` ... `release`): reads and
        writes made in it see and leave the state between the same two batches. The
        guest resumes by itself after 2 s without a command."""
        line = self.command("hold")[0]
        if line != "ok":
            raise NfvError(f"hold: {line}")
        try:
            yield self
        finally:
            if self.running:
                line = self.command("release")[0]
                if line != "ok":
                    raise NfvError(f"release: {line}")

    # -- frames ----------------------------------------------------------------------

    def _nic(self, index: int) -> _Nic:
        if not 0 <= index < len(self.nics):
            raise NfvError(f"NIC {index}: this VM has NICs 0..{len(self.nics) - 1}")
        nic = self.nics[index]
        if nic.sock is None:
            if not self.connect:
                where = (f"127.0.0.1:{nic.port}" if nic.kind == "tcp" else f"tap {nic.ifname}")
                raise NfvError(f"NIC {index}: this VM was started with connect=False, so it has no "
                               f"socket of its own; send and receive through {where} yourself")
            raise NfvError(f"NIC {index}: not connected (start the VM first)")
        return nic

    def send(self, nic: int, frame: bytes) -> None:
        """Put one Ethernet frame on the wire of NIC `nic`, towards the guest."""
        n = self._nic(nic)
        frame = bytes(frame)
        if not frame and n.kind == "tcp":
            # Measured on QEMU 7.2: the stream netdev queues a zero-length frame
            # that virtio-net never accepts, and then stops reading the socket.
            raise NfvError(f"NIC {nic}: a zero-length frame would stall QEMU's stream netdev "
                           "(it is never delivered and blocks every frame after it)")
        try:
            if n.kind == "tcp":
                n.sock.sendall(struct.pack(">I", len(frame)) + frame)
            else:
                n.sock.send(frame)
        except OSError as e:
            if self._proc.poll() is not None:
                self._raise_exited(f"sending on NIC {nic}")
            raise NfvError(f"sending on NIC {nic} (tcp port {n.port}): {e}; QEMU is still "
                           f"running; its console and stderr:\n{self._tail()}") from None

    def recv(self, nic: int, timeout: float = 1.0) -> bytes | None:
        """The next frame the guest sent on NIC `nic`, or None after `timeout` seconds."""
        n = self._nic(nic)
        try:
            frame = n.frames.get(timeout=timeout)
        except queue.Empty:
            if self._proc.poll() is not None:
                self._raise_exited(f"receiving on NIC {nic}")
            return None
        if frame is None:       # the reader saw the connection close
            n.frames.put(None)
            self._raise_exited(f"receiving on NIC {nic}")
        return frame

    def _read_tcp(self, nic: _Nic) -> None:
        buf = bytearray()
        try:
            while True:
                data = nic.sock.recv(65536)
                if not data:
                    break
                buf += data
                while len(buf) >= 4:
                    size, = struct.unpack_from(">I", buf)
                    if len(buf) < 4 + size:
                        break
                    nic.frames.put(bytes(buf[4:4 + size]))
                    del buf[:4 + size]
        except OSError:
            pass
        nic.frames.put(None)

    # -- tap ---------------------------------------------------------------------------

    def _open_tap(self, nic: _Nic) -> None:
        """Bring the tap up and open an AF_PACKET socket on it (inside the netns if any)."""
        ip = ["ip"] + (["-n", self.netns] if self.netns else [])
        proc = subprocess.run(ip + ["link", "set", nic.ifname, "up"], capture_output=True, text=True,
                              timeout=10)
        if proc.returncode != 0:
            raise NfvError(f"NIC {nic.index}: cannot bring tap {nic.ifname} up: {proc.stderr.strip()}")
        if not self.connect:
            return

        def opener() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))   # ETH_P_ALL
            s.bind((nic.ifname, 0))
            return s

        try:
            nic.sock = self._in_netns(opener)
        except OSError as e:
            raise NfvError(f"NIC {nic.index}: cannot open tap {nic.ifname}: {e}") from None
        self._spawn(self._read_tap, nic)

    def _in_netns(self, make_socket):
        """make_socket() run inside the VM's network namespace, if it has one.

        setns changes only the calling thread's namespace, and a socket keeps
        the namespace it was made in, so a short-lived thread does the work."""
        if not self.netns:
            return make_socket()
        result: dict = {}

        def work():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                with open(f"/var/run/netns/{self.netns}") as ns:
                    if libc.setns(ns.fileno(), 0x40000000) != 0:        # CLONE_NEWNET
                        raise OSError(ctypes.get_errno(), f"setns into netns {self.netns}")
                result["value"] = make_socket()
            except OSError as e:
                result["error"] = e

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(timeout=10)
        if "value" not in result:
            raise result.get("error") or OSError(f"no answer from netns {self.netns}")
        return result["value"]

    def _read_tap(self, nic: _Nic) -> None:
        try:
            while True:
                data, addr = nic.sock.recvfrom(65536)
                if addr[2] != _PACKET_OUTGOING:     # skip what we (or the host) sent
                    nic.frames.put(data)
        except OSError:
            pass
        nic.frames.put(None)


def boot_and_quit(image: str | Path, **kwargs) -> VM:
    """Boot, wait for ready, quit: a VM whose figures (launch_to_ready_ms, boot_us) are set."""
    vm = VM(image, **kwargs)
    vm.start()
    status = vm.stop()
    if status != EXIT_NORMAL:
        raise NfvError(f"{image}: quit ended with status {status} ({exit_meaning(status)})")
    return vm
