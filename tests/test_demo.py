"""`make demo`'s firewall run: its printed counters follow from the traffic labels alone."""
from __future__ import annotations

import re

import pytest

from nfv import demo

ALLOWED = {"web", "ssh from admin net", "dns", "mail", "ping", "ttl expiring"}
DENIED = {"ssh from internet", "spoofed source", "fragment", "other port"}
OTHER = {"ipv6", "runt"}


@pytest.mark.parametrize("target", ["host", "unikernel"])
def test_demo_counts_match_the_traffic_labels(capsys, target):
    assert demo.main(["--count", "400", "--target", target]) == 0
    text = capsys.readouterr().out
    labels = [label for label, _ in demo.traffic(400)]

    def printed(name: str) -> int:
        return int(re.search(rf"^{re.escape(name)}\s+(\d+)$", text, re.M).group(1))

    n = {k: labels.count(k) for k in set(labels)}
    assert printed("wan_allowed") == sum(n.get(k, 0) for k in ALLOWED)
    assert printed("wan_expired") == n.get("ttl expiring", 0)
    assert printed("wan_other") == sum(n.get(k, 0) for k in OTHER)
    assert printed("inbound (denied)") == sum(n.get(k, 0) for k in DENIED)
    forwarded = sum(n.get(k, 0) for k in ALLOWED - {"ttl expiring"}) + n.get("arp", 0)
    assert f"forwarded to NIC 1: {forwarded}" in text
    # The per-rule table: rules whose traffic kind alone decides them.
    rules = {int(m.group(1)): int(m.group(2))
             for m in re.finditer(r"^\s*(\d+)\s+(\d+)\s+(?:allow|deny)", text, re.M)}
    assert rules[0] == n.get("spoofed source", 0)      # deny src net 10.0.0.0/8 || ...
    assert rules[2] == n.get("fragment", 0)            # deny ip frag
    assert rules[3] == n.get("ssh from admin net", 0)  # allow src net $ADMIN && tcp dst port ssh
    assert rules[9] == n.get("ping", 0)                # allow ... icmp type echo
