"""Network namespaces for live tests: a router namespace between two hosts' namespaces.

    with namespaces("rt", "ha", "hb") as ns:          # {"rt": "nfvrt1a2b3c", ...}
        ... start the router in ns["rt"], making interfaces rta and rtb ...
        host_side(ns["rt"], "rta", ns["ha"], MAC, "192.0.2.10", "192.0.2.1")
        ping(ns["ha"], "-c", "1", "198.51.100.10")

Every namespace is made here with a fresh name, lo up and IPv6 off (no router
solicitations or DAD chatter on the interfaces), and deleted on the way out,
so a test touches nothing outside the namespaces it made.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid


def missing_tools(*tools: str) -> str | None:
    """Why a live test cannot run here (not root, a tool missing), or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces and interfaces"
    absent = [t for t in ("ip",) + tools if shutil.which(t) is None]
    if absent:
        return f"needs {', '.join(absent)}"
    return None


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


@contextlib.contextmanager
def namespaces(*roles: str):
    """{role: namespace name} for fresh namespaces, deleted afterwards."""
    tag = uuid.uuid4().hex[:6]
    names = {role: f"nfv{role}{tag}" for role in roles}
    try:
        for ns in names.values():
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for key in ("all", "default"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
        yield names
    finally:
        for ns in names.values():
            sh("ip", "netns", "del", ns, check=False)


def veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair: name_a in ns_a, its peer name_b in ns_b (both down)."""
    sh("ip", "-n", ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b,
       "netns", ns_b)


def host_side(ns_router: str, ifname: str, ns: str, mac: str, addr: str, gateway: str) -> None:
    """Move `ifname` from the router's namespace into host namespace `ns` (unless it is
    there already) and make it a host on a /24 with a default route via `gateway`."""
    if ns_router != ns:
        sh("ip", "-n", ns_router, "link", "set", ifname, "netns", ns)
    sh("ip", "-n", ns, "link", "set", ifname, "address", mac)
    sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
    sh("ip", "-n", ns, "link", "set", ifname, "up")
    sh("ip", "-n", ns, "route", "add", "default", "via", gateway)


def ping(ns: str, *args: str) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, "ping", "-n", *args, check=False)


HTTP_CLIENT = """
import hashlib, sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=10).read()
print(len(body), hashlib.sha256(body).hexdigest())
"""


def http_download(client_ns: str, server_ns: str, server_ip: str, size: int = 300_000) -> str:
    """Serve `size` random bytes over HTTP from server_ns (Python's http.server on
    server_ip:8080), fetch them from client_ns, and assert they arrived intact.
    Returns the server's access log (who it saw connect)."""
    import hashlib
    import sys
    import tempfile
    import time

    with tempfile.TemporaryDirectory() as www:
        body = os.urandom(size)
        with open(os.path.join(www, "blob"), "wb") as f:
            f.write(body)
        with open(os.path.join(www, "access.log"), "w+") as log:
            server = subprocess.Popen(
                ["ip", "netns", "exec", server_ns, sys.executable, "-m", "http.server", "8080",
                 "--bind", server_ip, "--directory", www],
                stdout=subprocess.DEVNULL, stderr=log)
            try:
                deadline = time.monotonic() + 30
                while ":8080" not in sh("ip", "netns", "exec", server_ns, "ss", "-ltn").stdout:
                    assert time.monotonic() < deadline and server.poll() is None, \
                        "the HTTP server did not start"
                    time.sleep(0.05)
                got = subprocess.run(["ip", "netns", "exec", client_ns, sys.executable, "-c",
                                      HTTP_CLIENT, f"http://{server_ip}:8080/blob"],
                                     capture_output=True, text=True, timeout=60)
                assert got.returncode == 0, got.stderr
                assert got.stdout.split() == [str(size), hashlib.sha256(body).hexdigest()]
            finally:
                server.terminate()
                server.wait(timeout=10)
            log.seek(0)
            return log.read()


def check_router(ha: str, hb: str, mac_a: str, mac_b: str) -> None:
    """configs/router.click's live checks, the same on both targets: host A
    (192.0.2.10, namespace ha) and host B (198.51.100.10, hb) on either side of a
    router at 192.0.2.1 (MAC mac_a) and 198.51.100.1 (mac_b)."""
    import re

    across = ping(ha, "-c", "5", "-i", "0.2", "-W", "2", "198.51.100.10")
    assert across.returncode == 0, across.stdout + across.stderr
    assert " 0% packet loss" in across.stdout
    # Linux sends TTL 64 and the router decrements once each way.
    assert all(int(t) == 63 for t in re.findall(r"ttl=(\d+)", across.stdout))
    # The hosts learnt the router's MACs by ARP (no static entries were made).
    for ns, address, mac in ((ha, "192.0.2.1", mac_a), (hb, "198.51.100.1", mac_b)):
        neigh = sh("ip", "-n", ns, "neigh", "show", address).stdout
        assert mac in neigh, neigh
    # Pings to either of the router's own addresses are answered by the router.
    for address in ("192.0.2.1", "198.51.100.1"):
        mine = ping(ha, "-c", "2", "-i", "0.2", "-W", "2", address)
        assert mine.returncode == 0 and f"from {address}" in mine.stdout, mine.stdout
    # TCP across the two subnets: a download arrives intact, from the host's own address.
    seen = http_download(ha, hb, "198.51.100.10")
    assert seen.startswith("192.0.2.10 "), seen
    # TTL 1 towards host B: the router answers time exceeded from its net A address.
    expiring = ping(ha, "-c", "1", "-t", "1", "-W", "2", "198.51.100.10")
    assert "From 192.0.2.1" in expiring.stdout and \
        "Time to live exceeded" in expiring.stdout, expiring.stdout
