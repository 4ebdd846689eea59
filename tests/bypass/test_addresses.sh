#!/usr/bin/env bash
# Bypass corpus: TCP and UDP over IPv4 and IPv6, IPv4-mapped IPv6, MPTCP.
. "$(dirname "$0")/lib.sh"
bypass_setup

echo "# controls: the granted destination is reached by every path"
bexpect "tcp4 to the granted destination" "$AG" reached connect tcp $OK4 7100
bexpect "udp4 to the granted destination" "$AG" reached connect udp $OK4 7100
bexpect "tcp6 to the granted destination" "$AG" reached connect tcp ::1 7100
bexpect "udp6 to the granted destination" "$AG" reached connect udp ::1 7100
bexpect "v4-mapped tcp6 to the granted destination" "$AG" reached connect tcp ::ffff:$OK4 7100

echo "# the protected destination and one that is no destination"
for dst in "$SECRET4 7200" "$NONE4 7300"; do
	bexpect "tcp4" "$AG" blocked connect tcp $dst
	bexpect "udp4" "$AG" blocked connect udp $dst
	bexpect "v4-mapped tcp6" "$AG" blocked connect tcp ::ffff:${dst% *} ${dst#* }
	bexpect "v4-mapped udp6" "$AG" blocked connect udp ::ffff:${dst% *} ${dst#* }
done
bexpect "tcp6 to another port of ::1" "$AG" blocked connect tcp ::1 7300
bexpect "udp6 to another port of ::1" "$AG" blocked connect udp ::1 7300
bexpect "tcp to the granted address, another port" "$AG" blocked connect tcp $OK4 7300
# MPTCP subflows are TCP sockets: the same hooks judge them (or the kernel has no MPTCP)
out=$("$BYPASS" --cgroup "$CG/$AG" connect mptcp $SECRET4 7200)
check "mptcp to the protected destination is not reached ($out)" [ "${out%% *}" != reached ]
out=$("$BYPASS" --cgroup "$CG/$AG" connect mptcp $OK4 7100)
echo "# mptcp to the granted destination: $out"

echo "# a process that is no agent reaches all but the protected destination"
bexpect "tcp4 outside an agent" "$OUT" reached connect tcp $NONE4 7300
bexpect "tcp4 outside an agent to the protected destination" "$OUT" blocked connect tcp $SECRET4 7200
bexpect "v4-mapped outside an agent to the protected destination" "$OUT" blocked connect tcp ::ffff:$SECRET4 7200
mas_done
