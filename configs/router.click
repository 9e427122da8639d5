// router.click -- a two-port IPv4 router that answers ARP and ping and sends
// ICMP time exceeded (so traceroute works through it).
//
//   NIC 0: 192.0.2.1/24 (net A)          NIC 1: 198.51.100.1/24 (net B)
//   default route: $GATEWAY (198.51.100.254) via NIC 1
//
// Each interface answers ARP requests for its own address, answers pings to
// either of the router's addresses, checks IPv4 headers, decrements the TTL
// (an expired packet gets an ICMP time exceeded back from that interface) and
// hands the rest to the route table; whatever leaves gets an Ethernet header
// for its next hop, whose address the interface finds with ARP (ARPQuerier:
// the packet waits for the reply; answers are kept 5 minutes).

define($IP_A      192.0.2.1,           // our address on net A (NIC 0)
       $IP_B      198.51.100.1,        // our address on net B (NIC 1)
       $MAC_A     02:00:00:00:00:0a,   // our NIC 0
       $MAC_B     02:00:00:00:00:0b,   // our NIC 1
       $GATEWAY   198.51.100.254)      // the upstream router on net B

rt :: RadixIPLookup(192.0.2.0/24       0,
                    198.51.100.0/24    1,
                    0.0.0.0/0 $GATEWAY 1);

// One interface: from the wire to the route table (output), and from the route
// table (input) to the wire. Replies the router makes itself (ARP, ping, ICMP
// errors) go back out the interface their request came in on.
elementclass Interface { $nic, $ip, $mac, $other_ip |
    wire :: ToDevice($nic);
    link :: ARPQuerier($ip, $mac);        // IP packets in, Ethernet frames out

    FromDevice($nic)
      -> kind :: Classifier(12/0806 20/0001,   // ARP request
                            12/0806 20/0002,   // ARP reply
                            12/0800,           // IPv4
                            -);                // anything else
    kind [0] -> arp :: ARPResponder($ip $mac) -> wire;
    kind [1] -> [1] link;                  // replies to our queries
    kind [2] -> Strip(14)
             -> CheckIPHeader
             -> mine :: IPClassifier(dst host $ip or dst host $other_ip, -);
    mine [0] -> ping :: ICMPPingResponder -> link;
    mine [1] -> ttl :: DecIPTTL -> output;
    ttl [1] -> expired :: ICMPError($ip, timeexceeded) -> link;
    kind [3] -> non_ip :: Counter -> Discard;
    arp [1] -> Discard;                   // requests for other addresses
    ping [1] -> Discard;                  // to us, but not an echo request

    input -> link;
    link -> sent :: Counter -> wire;
}

a :: Interface(0, $IP_A, $MAC_A, $IP_B);
b :: Interface(1, $IP_B, $MAC_B, $IP_A);

a, b -> rt;
rt [0] -> a;
rt [1] -> b;
