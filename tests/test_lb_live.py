"""End to end through configs/lb.click with real Linux stacks.

    client (netns "cl")            LB (netns "lb")                 backends (netns "be")
    10.0.0.2/24           <->  NIC 0 [lb.click] NIC 1  <->  10.1.0.11, .12, .13 (and .14)
    connects to VIP 10.0.0.100:80                               route to clients via 10.1.0.1

Each backend address runs a tiny TCP service answering every line with its own
address.  Checked, on both targets: a few hundred short connections to the VIP
spread over the three backends (each within a stated tolerance of a third), the
client only ever talks to the VIP, and backends see the client's own address.
In the unikernel, a backend is then added through the `lb.backends` write handler
while connections are open: none of them breaks or changes backend, and new
connections reach the new backend too.  (The host runner has no control channel
yet, so that part runs on the unikernel.)
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from netns import host_side, missing_tools, namespaces, ping, sh

LB = str(ROOT / "configs" / "lb.click")
# compiled in the background while earlier tests run (tests/conftest.py)
PREBUILD = [(LB, "both")]
VIP, CLIENT, BACK_IP = "10.0.0.100", "10.0.0.2", "10.1.0.1"
BACKENDS = ["10.1.0.11", "10.1.0.12", "10.1.0.13"]
NEW_BACKEND = "10.1.0.14"
SHORT = 300                   # short connections for the spread
TOLERANCE = 0.4               # each backend gets a third of them, +-40 % (binomial: ~5 sigma)

why = missing_tools("ping", "qemu-system-x86_64")
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")

BACKEND_SERVICE = textwrap.dedent("""
    import socketserver, sys, threading
    class Answer(socketserver.StreamRequestHandler):
        def handle(self):
            me = self.server.server_address[0]
            for line in self.rfile:
                self.wfile.write(f"{me} {self.client_address[0]}\\n".encode())
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    servers = [socketserver.ThreadingTCPServer((a, 80), Answer) for a in sys.argv[1:]]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
""")

CLIENT_PROGRAM = textwrap.dedent("""
    import json, socket, sys
    VIP = sys.argv[1]
    def ask(sock):
        sock.sendall(b"who\\n")
        answer = b""
        while not answer.endswith(b"\\n"):
            chunk = sock.recv(100)
            if not chunk:
                raise ConnectionError("closed")
            answer += chunk
        return answer.decode().split()
    held = []
    for line in sys.stdin:
        cmd, n = line.split()
        n = int(n)
        if cmd == "spread":          # n short connections: {backend: count}, peers seen
            counts, peers = {}, set()
            for _ in range(n):
                with socket.create_connection((VIP, 80), timeout=5) as s:
                    backend, peer = ask(s)
                    counts[backend] = counts.get(backend, 0) + 1
                    peers.add(peer)
            print(json.dumps({"counts": counts, "peers": sorted(peers)}), flush=True)
        elif cmd == "open":          # n connections kept open: their backends
            for _ in range(n):
                s = socket.create_connection((VIP, 80), timeout=5)
                held.append(s)
            print(json.dumps([ask(s)[0] for s in held]), flush=True)
        elif cmd == "check":         # ask again on every held connection
            out = []
            for s in held:
                try:
                    out.append(ask(s)[0])
                except OSError as e:
                    out.append(f"broken: {e}")
            print(json.dumps(out), flush=True)
""")


class Client:
    """The client program in its namespace, driven line by line."""

    def __init__(self, ns: str):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                      CLIENT_PROGRAM, VIP], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __call__(self, command: str):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the client program died during {command!r}"
        return json.loads(line)

    def close(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(params=["host", "unikernel"])
def lb(request):
    """(namespaces, the running LB: a UnikernelNF on taps, or a LiveHost)."""
    with namespaces("lb", "cl", "be") as ns:
        if request.param == "unikernel":
            from nfv.unikernel.target import UnikernelNF

            runner = UnikernelNF(LB, nics=["tap:lbfront", "tap:lbback"], netns=ns["lb"])
            runner.boot()
        else:
            from nfv.live import LiveHost

            runner = LiveHost(LB, {0: "tap:lbfront", 1: "tap:lbback"}, netns=ns["lb"],
                              ready_timeout=600).start()
        service = None
        try:
            host_side(ns["lb"], "lbfront", ns["cl"], "02:00:00:00:0c:02", CLIENT, "10.0.0.1")
            host_side(ns["lb"], "lbback", ns["be"], "02:00:00:00:be:01", BACKENDS[0], BACK_IP)
            for extra in BACKENDS[1:] + [NEW_BACKEND]:
                sh("ip", "-n", ns["be"], "addr", "add", f"{extra}/24", "dev", "lbback")
            service = subprocess.Popen(["ip", "netns", "exec", ns["be"], sys.executable, "-c",
                                        BACKEND_SERVICE, *BACKENDS, NEW_BACKEND],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert service.stdout.readline().strip() == "ready"
            yield request.param, ns, runner
        finally:
            if service is not None:
                service.kill()
                service.wait()
            (runner.close if request.param == "unikernel" else runner.stop)()


def test_connections_spread_over_the_backends(lb):
    target, ns, runner = lb
    answer = ping(ns["cl"], "-c", "2", "-i", "0.2", "-W", "3", VIP)
    assert answer.returncode == 0 and f"from {VIP}" in answer.stdout, answer.stdout
    client = Client(ns["cl"])
    try:
        result = client(f"spread {SHORT}")
    finally:
        client.close()
    counts = result["counts"]
    assert sum(counts.values()) == SHORT
    assert sorted(counts) == BACKENDS, counts
    for backend, n in counts.items():
        assert abs(n - SHORT / 3) <= TOLERANCE * SHORT / 3, counts
    # The backends saw the client itself (no source NAT), and the client only the VIP.
    assert result["peers"] == [CLIENT]


@pytest.mark.parametrize("lb", ["unikernel"], indirect=True)  # (see the module docstring)
def test_adding_a_backend_breaks_no_connection(lb):
    target, ns, runner = lb
    client = Client(ns["cl"])
    try:
        before = client("open 24")
        assert set(before) <= set(BACKENDS) and len(set(before)) > 1, before
        runner.write("lb.backends", " ".join(BACKENDS + [NEW_BACKEND]))
        assert [b.split(":")[0] for b in runner.read("lb.backends").split()] == \
            BACKENDS + [NEW_BACKEND]
        # Every open connection still answers, from the backend it had.
        assert client("check 0") == before
        spread = client("spread 200")["counts"]
        assert spread.get(NEW_BACKEND, 0) >= 200 / 4 * (1 - TOLERANCE), spread
        assert client("check 0") == before
    finally:
        client.close()
