// firewall.click -- a stateless firewall in front of a server subnet.
//
//   NIC 0 (wan) -- the internet           NIC 1 (lan) -- servers, $SERVERS
//
// ARP passes both ways untouched. IPv4 is checked (version, lengths,
// checksum), filtered by first-match rules, and its TTL decremented.
// Every verdict has its own counter, readable as a handler
// (e.g. `nfv ctl fw read wan_allowed.count`). Anything else is dropped.

define($SERVERS 192.0.2.0/24,      // the protected subnet (documentation range)
       $ADMIN   198.51.100.0/24,   // where operators log in from
       $DNS     192.0.2.53,
       $MAIL    192.0.2.25)

from_wan :: FromDevice(0);
to_wan   :: ToDevice(0);
from_lan :: FromDevice(1);
to_lan   :: ToDevice(1);

// ---- inbound: wan -> lan -------------------------------------------------
wan_type :: Classifier(12/0806,    // ARP
                       12/0800,    // IPv4
                       -);         // anything else

inbound :: IPFilter(
    // spoofed or unroutable sources never come from the internet
    deny src net 10.0.0.0/8 || src net 172.16.0.0/12 || src net 192.168.0.0/16,
    deny src net 127.0.0.0/8 || src net $SERVERS,
    deny ip frag,                                   // no fragments to the servers
    allow src net $ADMIN && tcp dst port ssh,       // operators only
    allow dst net $SERVERS && tcp dst port 80,
    allow dst net $SERVERS && tcp dst port 443,
    allow dst host $DNS && udp dst port 53,
    allow dst host $DNS && tcp dst port 53,
    allow dst host $MAIL && tcp dst port 25,
    allow dst net $SERVERS && icmp type echo,
    allow dst net $SERVERS && (icmp type unreachable || icmp type timeexceeded),
    deny all);

from_wan -> wan_type;
wan_type [0] -> to_lan;
wan_type [1] -> CheckIPHeader(OFFSET 14)
             -> inbound
             -> wan_allowed :: Counter
             -> wan_ttl :: DecIPTTL
             -> to_lan;
wan_type [2] -> wan_other :: Counter -> Discard;
wan_ttl [1] -> wan_expired :: Counter -> Discard;

// ---- outbound: lan -> wan ------------------------------------------------
lan_type :: Classifier(12/0806, 12/0800, -);
outbound :: IPFilter(allow src net $SERVERS,    // servers may answer and update
                     deny all);                  // nothing else leaves (anti-spoofing)

from_lan -> lan_type;
lan_type [0] -> to_wan;
lan_type [1] -> CheckIPHeader(OFFSET 14)
             -> outbound
             -> lan_allowed :: Counter
             -> lan_ttl :: DecIPTTL
             -> to_wan;
lan_type [2] -> lan_other :: Counter -> Discard;
lan_ttl [1] -> lan_expired :: Counter -> Discard;
