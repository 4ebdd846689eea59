#!/usr/bin/env bash
# Bypass corpus: raw, packet, netlink, ICMP (ping) and SCTP sockets.
. "$(dirname "$0")/lib.sh"
bypass_setup

as_user() {
	"$BYPASS" --cgroup "$CG/$AG" exec setpriv --reuid=65534 --regid=65534 --clear-groups \
		--inh-caps=-all --bounding-set=-all "$BYPASS" "$@"
}
bexpect "raw IPv4 socket (even as root)" "$AG" blocked socket raw
bexpect "raw IPv6 socket (even as root)" "$AG" blocked socket raw6
out=$(as_user socket packet)
check "packet socket as its own user ($out)" [ "${out%% *}" = blocked ]
# netlink reaches the kernel, not a host: changing routes or addresses needs CAP_NET_ADMIN
bexpect "netlink socket opens (it reaches no destination)" "$AG" reached socket netlink
# ICMP echo through a ping socket: no TCP or UDP port can be reached; the sendmsg hook judges
# ping sockets where the kernel runs it, and ping_group_range decides who may open one
out=$("$BYPASS" --cgroup "$CG/$AG" socket ping $SECRET4 2>&1)
echo "# ping socket echo to the protected address: $out (ping_group_range: $(sysctl -n net.ipv4.ping_group_range | tr '\t' ' '))"
out=$(as_user socket ping $SECRET4)
check "ping socket as its own user does not reach the protected address ($out)" \
	[ "${out%% *}" != reached ]
# where ping sockets are open to everyone (a network namespace of its own, for the sysctl)
pingns() {
	"$BYPASS" --cgroup "$CG/$1" exec unshare --net sh -c "ip link set lo up &&
		sysctl -qw net.ipv4.ping_group_range='0 2147483647' &&
		sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 2>/dev/null;
		exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
			--bounding-set=-all '$BYPASS' socket $2 $3"
}
# (no address hook judges a ping socket's datagrams: masd refuses agents the socket itself)
for args in "ping $SECRET4" "ping $NONE4" "ping6 ::1"; do
	out=$(pingns "$AG" $args)
	check "ping_group_range open: $args from the agent is refused ($out)" \
		[ "${out%% *}" = blocked ]
done
out=$(pingns "$OUT" ping $NONE4)
check "ping_group_range open: a process that is no agent may ping ($out)" \
	[ "${out%% *}" = reached ]
out=$("$BYPASS" --cgroup "$CG/$AG" socket sctp 2>&1)
echo "# sctp socket: $out (SCTP connects go through the same connect hooks; protocol bits are tcp/udp only, so an agent's SCTP connect matches no rule)"
mas_done
