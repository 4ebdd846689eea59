#!/usr/bin/env bash
# Bypass corpus: binding and listening as a way in. The policy covers outbound calls (connect,
# datagrams sent): an agent may listen, and a peer that connects to it is the peer's call. A
# reply to a datagram from a destination the agent may not reach is itself judged.
. "$(dirname "$0")/lib.sh"
bypass_setup

bexpect "bind and listen on a port (inbound, allowed: not an outbound call)" "$AG" reached \
	listen 127.0.0.1 7400
# the agent waits for a datagram, then answers its sender
"$BYPASS" --cgroup "$CG/$AG" udp-reply 127.0.0.1 7401 >"$T/reply.out" 2>&1 &
rp=$!
for _ in $(seq 50); do grep -q listening "$T/reply.out" && break; sleep 0.1; done
# a sender outside every agent, bound to the protected destination's address and port
python3 - "$SECRET4" <<'PY' 2>/dev/null || "$PROBE" sendto 127.0.0.1 7401 >/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7250))
s.sendto(b"hi", ("127.0.0.1", 7401))
PY
wait $rp
out=$(tail -n1 "$T/reply.out")
check "replying to a datagram from a destination it may not reach is refused ($out)" \
	[ "${out%% *}" = blocked ]
mas_done
