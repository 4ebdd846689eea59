#!/usr/bin/env bash
# Bypass corpus: a socket made by a process that is no agent, passed in over a Unix socket.
# Identity is the calling task's cgroup, never the socket's, so an unconnected socket's
# datagrams are judged as the agent's. A connected socket was judged when it was connected:
# by the outside process, which may not reach a protected destination either. What an outside
# accomplice may reach (a destination that is not protected) it can hand over; that is
# documented, not blocked: the accomplice could equally relay the data itself.
. "$(dirname "$0")/lib.sh"
bypass_setup

bexpect "passed-in unconnected UDP socket, sendto the protected destination" "$AG" blocked \
	fdpass udp "$CG/$OUT" $SECRET4 7200
bexpect "passed-in unconnected UDP socket, sendto no destination" "$AG" blocked \
	fdpass udp "$CG/$OUT" $NONE4 7300
bexpect "passed-in unconnected UDP6 socket, sendto another port" "$AG" blocked \
	fdpass udp "$CG/$OUT" ::1 7300
bexpect "passed-in TCP socket to the protected destination (the outside connect fails)" "$AG" \
	blocked fdpass tcp "$CG/$OUT" $SECRET4 7200
bexpect "passed-in UDP socket connected to the protected destination (outside connect fails)" \
	"$AG" blocked fdpass udp-connected "$CG/$OUT" $SECRET4 7200
bexpect "passed-in TCP socket already connected by an accomplice to no destination (documented)" \
	"$AG" reached fdpass tcp "$CG/$OUT" $NONE4 7300
mas_done
