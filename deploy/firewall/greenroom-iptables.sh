#!/bin/sh
# Greenroom bypass closing for iptables/ip6tables + ipset (where nftables is not available).
# The same rules as greenroom-egress.nft, in the FORWARD chain of the egress router:
#   sh greenroom-iptables.sh            # then save with iptables-save / netfilter-persistent
#   python deploy/firewall/catalog_hosts.py --format hosts | xargs -n1 getent ahostsv4 | \
#       awk '{print $1}' | sort -u | xargs -n1 ipset -exist add greenroom-ai-v4      # refresh, hourly
set -eu

WORKSTATIONS="10.10.0.0/16"
GATEWAYS="10.20.0.10 10.20.0.11"
RESOLVERS="10.20.0.53"
DOH="1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4 9.9.9.9 149.112.112.112 208.67.222.222 208.67.220.220 94.140.14.14 94.140.15.15"

ipset -exist create greenroom-ai-v4 hash:ip timeout 7200
ipset -exist create greenroom-doh-v4 hash:ip
for ip in $DOH; do ipset -exist add greenroom-doh-v4 "$ip"; done

iptables -N GREENROOM 2>/dev/null || iptables -F GREENROOM
iptables -C FORWARD -s "$WORKSTATIONS" -j GREENROOM 2>/dev/null || iptables -I FORWARD 1 -s "$WORKSTATIONS" -j GREENROOM

for gw in $GATEWAYS; do iptables -A GREENROOM -s "$gw" -j RETURN; done
# 1. HTTP/3 (QUIC), DNS-over-QUIC
iptables -A GREENROOM -p udp -m multiport --dports 80,443,853 -j REJECT
# 2. DNS only to the studio resolvers; no DoT; no known DoH endpoint
for r in $RESOLVERS; do
    iptables -A GREENROOM -p udp --dport 53 -d "$r" -j RETURN
    iptables -A GREENROOM -p tcp --dport 53 -d "$r" -j RETURN
done
iptables -A GREENROOM -p udp --dport 53 -j REJECT
iptables -A GREENROOM -p tcp --dport 53 -j REJECT --reject-with tcp-reset
iptables -A GREENROOM -p tcp --dport 853 -j REJECT --reject-with tcp-reset
iptables -A GREENROOM -p tcp --dport 443 -m set --match-set greenroom-doh-v4 dst -j REJECT --reject-with tcp-reset
# 3. No direct path to AI tools
iptables -A GREENROOM -p tcp -m multiport --dports 80,443 -m set --match-set greenroom-ai-v4 dst \
    -j LOG --log-prefix "greenroom-bypass "
iptables -A GREENROOM -p tcp -m multiport --dports 80,443 -m set --match-set greenroom-ai-v4 dst \
    -j REJECT --reject-with tcp-reset
iptables -A GREENROOM -j RETURN
echo "greenroom-iptables: rules installed (IPv4; repeat with ip6tables and hash:ip family inet6 for IPv6)"
