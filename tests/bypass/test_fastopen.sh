#!/usr/bin/env bash
# Bypass corpus: TCP Fast Open, sendto(MSG_FASTOPEN) without connect() and TCP_FASTOPEN_CONNECT.
# The kernel runs the connect hook on the fast-open path too.
. "$(dirname "$0")/lib.sh"
bypass_setup

bexpect "MSG_FASTOPEN to the granted destination" "$AG" reached fastopen $OK4 7100
bexpect "MSG_FASTOPEN to the protected destination" "$AG" blocked fastopen $SECRET4 7200
bexpect "MSG_FASTOPEN to no destination" "$AG" blocked fastopen $NONE4 7300
bexpect "MSG_FASTOPEN v4-mapped" "$AG" blocked fastopen ::ffff:$SECRET4 7200
bexpect "MSG_FASTOPEN over IPv6 to another port" "$AG" blocked fastopen ::1 7300
bexpect "TCP_FASTOPEN_CONNECT to the granted destination" "$AG" reached fastopen-connect $OK4 7100
bexpect "TCP_FASTOPEN_CONNECT to the protected destination" "$AG" blocked fastopen-connect $SECRET4 7200
bexpect "TCP_FASTOPEN_CONNECT to no destination" "$AG" blocked fastopen-connect $NONE4 7300
bexpect "MSG_FASTOPEN outside an agent to the protected destination" "$OUT" blocked \
	fastopen $SECRET4 7200
mas_done
