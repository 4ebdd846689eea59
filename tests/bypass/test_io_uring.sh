#!/usr/bin/env bash
# Bypass corpus: io_uring connect and sendmsg go through the same socket layer and hooks,
# judged by the task that submits (or the io_uring worker, which is in its cgroup).
. "$(dirname "$0")/lib.sh"
bypass_setup

out=$("$BYPASS" uring-connect $NONE4 7300 2>&1)
[ "${out%% *}" = reached ] || mas_skip "io_uring is not available here ($out)"
bexpect "io_uring connect to the granted destination" "$AG" reached uring-connect $OK4 7100
bexpect "io_uring connect to the protected destination" "$AG" blocked uring-connect $SECRET4 7200
bexpect "io_uring connect to no destination" "$AG" blocked uring-connect $NONE4 7300
bexpect "io_uring connect over IPv6 to another port" "$AG" blocked uring-connect ::1 7300
bexpect "io_uring sendmsg to the granted destination" "$AG" reached uring-sendmsg $OK4 7100
bexpect "io_uring sendmsg to the protected destination" "$AG" blocked uring-sendmsg $SECRET4 7200
bexpect "io_uring sendmsg to no destination" "$AG" blocked uring-sendmsg $NONE4 7300
bexpect "io_uring send on a connected socket, then sendmsg elsewhere" "$AG" blocked \
	uring-send $OK4 7100 $SECRET4 7200
bexpect "io_uring connect outside an agent to the protected destination" "$OUT" blocked \
	uring-connect $SECRET4 7200
mas_done
