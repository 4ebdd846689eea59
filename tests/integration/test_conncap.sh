#!/usr/bin/env bash
# Connection caps: max_connections counts an (agent, destination)'s open sockets. A connect
# beyond the cap fails at once with EBUSY, reported as capped; sockets are given back on close,
# on a failed connect's close, on exit and on kill -9; 10,000 open/close cycles with failures
# end at zero; a connect the bucket refuses is not left counted.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  db:
    cidrs: [127.0.42.1/32]
    ports: [5432, 5433]
    protected: true
    max_connections: 3
  dbrl:
    cidrs: [127.0.42.2/32]
    ports: [5432]
    max_connections: 100
    class: slow
permissions: { read: [db, dbrl] }
roles: { agent: [read] }
agents:
  a: { unit: mas-agent@a.service, role: agent }
  b: { unit: mas-agent@b.service, role: agent }
rate_limits:
  slow: { requests_per_minute: 6, burst_size: 2 }
YAML
A=mas-agent@a.service
B=mas-agent@b.service
mas_cgroup "$A"
mas_cgroup "$B"
mas_cgroup sink
mas_start --policy "$T/policy.yaml" || exit 1
open_conns() { # agent destination
	"$MASCTL" --json agents | jq --arg a "$1" --arg d "$2" \
		'.[] | select(.agent == $a) | .caps[] | select(.destination == $d) | .open'
}
mas_bg "$PROBE" --cgroup "$CG/sink" serve tcp 127.0.42.1 5432 >/dev/null
mas_bg "$PROBE" --cgroup "$CG/sink" serve tcp 127.0.42.2 5432 >/dev/null
sleep 0.3

echo "# the cap"
"$PROBE" --cgroup "$CG/$A" hold 127.0.42.1 5432 5 >"$T/hold1" &
h1=$!
MAS_PIDS+=($h1)
for _ in $(seq 50); do [ -s "$T/hold1" ] && break; sleep 0.1; done
out=$(cat "$T/hold1")
check "5 held connects: 3 admitted, 2 capped ($out)" [ "$out" = "allowed=3 denied=0 other=0 capped=2" ]
out=$(probe_in "$A" connect tcp 127.0.42.1 5432)
check "one more fails at once with EBUSY ($out)" [ "$out" = "capped EBUSY" ]
check "masctl agents shows 3 of 3 open ($(open_conns a db))" [ "$(open_conns a db)" = 3 ]
out=$(probe_in "$B" loop tcp 127.0.42.1 5432 3)
check "another agent has its own count ($out)" [ "$out" = "allowed=3 denied=0 other=0" ]
c=$(agent_count a capped)
check "the capped connects are counted ($c)" [ "$c" -eq 3 ]

echo "# kill -9 of the holder gives its sockets back"
kill -9 $h1
wait $h1 2>/dev/null
sleep 0.2
check "after kill -9 the count is 0 ($(open_conns a db))" [ "$(open_conns a db)" = 0 ]
"$PROBE" --cgroup "$CG/$A" hold 127.0.42.1 5432 3 >"$T/hold2" &
h2=$!
MAS_PIDS+=($h2)
for _ in $(seq 50); do [ -s "$T/hold2" ] && break; sleep 0.1; done
check "the cap is whole again ($(cat "$T/hold2"))" [ "$(cat "$T/hold2")" = "allowed=3 denied=0 other=0" ]
kill $h2
wait $h2 2>/dev/null
sleep 0.2
check "after a normal exit the count is 0 ($(open_conns a db))" [ "$(open_conns a db)" = 0 ]

echo "# 10,000 open/close cycles: connected, refused by the peer, closed mid-connect"
out=$(probe_in "$A" cycles 127.0.42.1 5432 5433 10000)
echo "# $out"
check "10,000 cycles all admitted ($out)" [ "$out" = "allowed=10000 denied=0 other=0" ]
sleep 0.2
check "after 10,000 cycles the count is 0 ($(open_conns a db))" [ "$(open_conns a db)" = 0 ]
probe_in "$B" cycles 127.0.42.1 5432 5433 3000 >"$T/cyc1" &
c1=$!
probe_in "$B" cycles 127.0.42.1 5432 5433 3000 >"$T/cyc2" &
c2=$!
wait $c1 $c2
echo "# $(cat "$T/cyc1"); $(cat "$T/cyc2")"
sleep 0.2
c=$(open_conns b db)
check "two cyclers racing on two cores end at 0 ($c)" [ "$c" = 0 ]

echo "# a connect the bucket refuses is not counted"
out=$(probe_in "$A" loop tcp 127.0.42.2 5432 20)
check "2 admitted, 18 rate-limited ($out)" [ "$out" = "allowed=2 denied=0 other=0 limited=18" ]
sleep 0.2
check "dbrl count back to 0 ($(open_conns a dbrl))" [ "$(open_conns a dbrl)" = 0 ]
mas_done
