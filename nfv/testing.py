"""Testing network functions with scapy packets, as a network engineer writes tests.

    with NF("configs/firewall.click") as nf:
        out = nf.send([Ether()/IP(dst="192.0.2.80")/TCP(dport=80)], port=0)
        assert len(out[1]) == 1
        assert nf.read("wan_allowed.count") == "1"

`send` returns {output port: [scapy packets]} for the packets that left by
each device (ToDump outputs are keyed by the element's name).  The pytest
fixture `nf_factory` (tests/conftest.py) shares compiled pipelines.
"""
from __future__ import annotations

from nfv.host import HostNF


TARGETS = ("host", "unikernel")


class NF:
    """A config compiled for `target` ("host", or "unikernel": built and booted under
    QEMU) that takes scapy packets. `host` is the target's runner: HostNF or
    UnikernelNF, which share their port names, `run`, `read` and `reset`."""

    def __init__(self, config: str, target: str = "host", boundscheck: bool = False,
                 **defines: str):
        defines = {k: str(v) for k, v in defines.items()}
        self.target = target
        if target == "host":
            self.host = HostNF(config, defines, boundscheck)
        elif target == "unikernel":
            from nfv.unikernel.target import UnikernelNF

            self.host = UnikernelNF(config, defines)
        else:
            raise ValueError(f"target {target!r}: use one of {', '.join(TARGETS)}")

    def send(self, packets, port: int | str = 0, now_ns: int | None = None) -> dict:
        """Push packets (scapy packets or bytes) into `port`; return what left, per output.

        now_ns: the pipeline's clock for this batch (the host only; the unikernel keeps
        its own clock). None: each packet is stamped 0, as before."""
        from scapy.packet import Raw
        from scapy.layers.l2 import Ether

        from nfv.dataplane.pcap import PacketList

        frames = [bytes(p) for p in packets]
        in_port = self.host.input_port(port)
        result = self.host.run(PacketList.from_bytes(frames, ports=[in_port] * len(frames)),
                               now_ns)
        out = {}
        for out_port, plist in result.outputs.items():
            key = self.host.sink_element(out_port) or out_port
            # A frame too short for an Ethernet header (after Strip) comes back as Raw.
            out[key] = [Ether(b) if len(b) >= 14 else Raw(b) for b in plist.to_list()]
        self.last_result = result
        return out

    def read(self, handler: str) -> str:
        return self.host.read(handler)

    def write(self, handler: str, value: str = "") -> None:
        """Call write handler `element.handler` with `value` (Click's write handlers)."""
        self.host.write(handler, value)

    def reset(self) -> None:
        """Fresh state (counters, tables) for the same compiled pipeline."""
        self.host.reset()

    def close(self) -> None:
        """Stops whatever the target started (the unikernel's VM)."""
        if self.host is not None and hasattr(self.host, "close"):
            self.host.close()
        self.host = None

    def __enter__(self) -> "NF":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
