#!/usr/bin/env bash
# Bypass corpus: sendto, sendmsg and sendmmsg, unconnected and on a UDP socket connected to the
# granted destination (a datagram carrying another destination in msg_name is judged again).
. "$(dirname "$0")/lib.sh"
bypass_setup

for how in sendto sendmsg sendmmsg; do
	bexpect "unconnected $how to the granted destination" "$AG" reached $how $OK4 7100
	bexpect "unconnected $how to the granted destination over IPv6" "$AG" reached $how ::1 7100
	bexpect "unconnected $how to the protected destination" "$AG" blocked $how $SECRET4 7200
	bexpect "unconnected $how to no destination" "$AG" blocked $how $NONE4 7300
	bexpect "unconnected $how v4-mapped" "$AG" blocked $how ::ffff:$SECRET4 7200
	bexpect "unconnected $how over IPv6 to another port" "$AG" blocked $how ::1 7300
	bexpect "connected-$how: connected to the granted one, msg_name protected" "$AG" blocked \
		connected-$how $OK4 7100 $SECRET4 7200
	bexpect "connected-$how: connected to the granted one, msg_name no destination" "$AG" blocked \
		connected-$how $OK4 7100 $NONE4 7300
	bexpect "connected-$how over IPv6: msg_name another port" "$AG" blocked \
		connected-$how ::1 7100 ::1 7300
	bexpect "connected-$how: msg_name the granted one" "$AG" reached \
		connected-$how $OK4 7100 $OK4 7100
done
bexpect "unconnected sendto outside an agent to the protected destination" "$OUT" blocked \
	sendto $SECRET4 7200
mas_done
