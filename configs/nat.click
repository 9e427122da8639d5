// nat.click -- source NAT (NAPT) between an inside network and the outside, with ARP.
//
//   inside  NIC 0: 10.0.0.1/24                 outside NIC 1: 192.0.2.1/24
//   inside hosts use 10.0.0.1 as their gateway; the NAT's own default route is $GATEWAY
//
// TCP and UDP connections and pings from inside hosts leave from 192.0.2.1, with
// source ports (ping identifiers) chosen from 1024-65535; their replies are
// translated back, and ICMP errors about a translated flow (port unreachable,
// time exceeded) reach the inside host that caused them. Packets from outside
// that belong to no flow are dropped and counted (rw.no_mapping_drops). The NAT
// answers ARP and pings for its own two addresses, finds every next hop with ARP,
// decrements TTLs and answers expired ones with ICMP time exceeded.
//
// Change the addresses on the command line: nfv build configs/nat.click
// OUT_IP=203.0.113.7 OUT_NET=203.0.113.0/24 GATEWAY=203.0.113.1 ...

define($IN_IP   10.0.0.1,            // our address inside (NIC 0)
       $IN_MAC  02:00:00:00:01:01,   // our NIC 0
       $OUT_IP  192.0.2.1,           // our address outside (NIC 1): what the world sees
       $OUT_MAC 02:00:00:00:02:01,   // our NIC 1
       $OUT_NET 192.0.2.0/24,        // the outside subnet, reached directly
       $GATEWAY 192.0.2.254,         // the next hop for everything else outside
       $FLOWS   65536)               // mappings the NAT holds (256 bytes each)

// The translation tables: new flows from inside (input 0) get a mapping; from
// outside (input 1) only replies to mapped flows pass.
rw   :: IPRewriter(pattern $OUT_IP 1024-65535 - - 0 1, drop, CAPACITY $FLOWS);
ping :: ICMPPingRewriter(pattern $OUT_IP 1024-65535 - - 0 1, drop, CAPACITY 4096);

// Next hops, found by ARP on each side.
to_inside  :: ARPQuerier($IN_IP, $IN_MAC);
to_outside :: ARPQuerier($OUT_IP, $OUT_MAC);
to_inside  -> ToDevice(0);
to_outside -> ToDevice(1);
outside_route :: RadixIPLookup($OUT_NET 0, 0.0.0.0/0 $GATEWAY 0);
outside_route -> to_outside;

// -- inside ------------------------------------------------------------------------
FromDevice(0)
  -> in_kind :: Classifier(12/0806 20/0001,    // ARP request
                           12/0806 20/0002,    // ARP reply
                           12/0800,            // IPv4
                           -);
in_kind [0] -> ARPResponder($IN_IP $IN_MAC) -> ToDevice(0);
in_kind [1] -> [1] to_inside;
in_kind [2] -> Strip(14)
            -> CheckIPHeader
            -> in_mine :: IPClassifier(dst host $IN_IP or dst host $OUT_IP, -);
in_kind [3] -> in_other :: Counter -> Discard;
in_mine [0] -> in_ping :: ICMPPingResponder -> to_inside;
in_ping [1] -> Discard;                         // to us, not a ping
in_mine [1] -> in_ttl :: DecIPTTL
            -> in_what :: IPClassifier(icmp type echo, -);
in_ttl [1] -> ICMPError($IN_IP, timeexceeded) -> to_inside;
in_what [0] -> [0] ping;
in_what [1] -> [0] rw;                          // TCP, UDP, and ICMP errors about replies

// -- outside -----------------------------------------------------------------------
FromDevice(1)
  -> out_kind :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
out_kind [0] -> ARPResponder($OUT_IP $OUT_MAC) -> ToDevice(1);
out_kind [1] -> [1] to_outside;
out_kind [2] -> Strip(14)
             -> CheckIPHeader
             -> out_what :: IPClassifier(icmp type echo-reply,
                                         dst host $OUT_IP and icmp type echo,
                                         -);
out_kind [3] -> out_other :: Counter -> Discard;
out_what [0] -> out_ttl :: DecIPTTL -> [1] ping;
out_ttl [1] -> Discard;                         // expired on its way in: not worth an error
out_what [1] -> out_ping :: ICMPPingResponder -> outside_route;
out_ping [1] -> Discard;
out_what [2] -> out_ttl2 :: DecIPTTL -> [1] rw; // replies, and ICMP errors about our flows
out_ttl2 [1] -> Discard;

// -- translated packets to their side ---------------------------------------------
rw [0] -> outside_route;
rw [1] -> to_inside;
ping [0] -> outside_route;
ping [1] -> to_inside;
