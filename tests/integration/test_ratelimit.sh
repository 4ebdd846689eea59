#!/usr/bin/env bash
# Token buckets per (agent, class): the burst, the errno a rate-limited call returns, UDP paying
# once per socket and destination, exactness with connectors on every core, an agent under its
# rate never refused, other agents and classes untouched, counters, events and masctl agents.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

# fast test rates: "fast" refills 10 a second, "slow" and "slowudp" one per 10 s
cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai:
    cidrs: [127.0.40.1/32]
    ports: [7000]
    protocols: [tcp, udp]
    class: fast
  ai2:
    cidrs: [127.0.40.4/32]
    ports: [7000]
    protocols: [udp]
    class: slowudp
  auth:
    cidrs: [127.0.40.2/32]
    ports: [7001]
    class: slow
  web:
    cidrs: [127.0.40.9/32]
permissions:
  p: [ai, ai2, auth, web]
roles:
  agent: [p]
agents:
  a: { unit: mas-agent@a.service, role: agent }
  b: { unit: mas-agent@b.service, role: agent }
  c: { unit: mas-agent@c.service, role: agent }
  d: { unit: mas-agent@d.service, role: agent }
  u: { unit: mas-agent@u.service, role: agent }
rate_limits:
  fast: { requests_per_minute: 600, burst_size: 5 }
  slow: { requests_per_minute: 6, burst_size: 3 }
  slowudp: { requests_per_minute: 6, burst_size: 3 }
YAML
for x in a b c d u; do mas_cgroup mas-agent@$x.service; done
A=mas-agent@a.service
mas_start --policy "$T/policy.yaml" || exit 1

st=$("$MASCTL" --json status | jq -c .not_enforced)
check "status no longer lists rate limits or caps as not enforced ($st)" \
	sh -c "! echo '$st' | grep -q -e rate_limits -e max_connections"

echo "# the burst, then rate-limited with EAGAIN"
out=$(probe_in "$A" loop tcp 127.0.40.2 7001 10)
echo "# slow class, 10 quick connects: $out"
check "a burst of 3 is admitted, the other 7 rate-limited ($out)" \
	[ "$out" = "allowed=3 denied=0 other=0 limited=7" ]
out=$(probe_in "$A" connect tcp 127.0.40.2 7001)
check "a rate-limited connect fails at once with EAGAIN ($out)" [ "$out" = "rate-limited EAGAIN" ]
expect "$A" denied connect tcp 127.0.40.3 7001
expect "$A" allowed connect tcp 127.0.40.9 80
out=$(probe_in mas-agent@b.service loop tcp 127.0.40.2 7001 10)
check "another agent has its own bucket ($out)" [ "$out" = "allowed=3 denied=0 other=0 limited=7" ]
out=$(probe_in "$A" loop tcp 127.0.40.1 7000 5)
check "another class of the same agent is untouched ($out)" [ "$out" = "allowed=5 denied=0 other=0" ]

echo "# UDP: one token per socket and destination, not per datagram"
sleep 1 # fast refills to its burst of 5
out=$(probe_in "$A" udpmulti 127.0.40.1 7000 200)
check "200 datagrams on one unconnected socket pass on one token ($out)" \
	[ "$out" = "allowed=200 denied=0 other=0" ]
left=$("$MASCTL" --json agents | jq '.[] | select(.agent == "a") | .classes[] | select(.class == "fast") | .tokens')
check "masctl agents shows the token taken ($left of 5 left)" [ "$left" -ge 4 -a "$left" -le 5 ]
out=$(probe_in "$A" loop udp 127.0.40.1 7000 10)
check "a UDP connect takes one token each ($out)" [ "${out#allowed=}" != "$out" ] && echo "# $out"
out=$(probe_in "$A" loop udp 127.0.40.4 7000 5)
check "a slow UDP class admits its burst of 3 connects ($out)" \
	[ "$out" = "allowed=3 denied=0 other=0 limited=2" ]
out=$(probe_in "$A" sendto 127.0.40.4 7000)
check "an empty bucket refuses a new socket's first datagram ($out)" [ "$out" = "rate-limited EAGAIN" ]

echo "# exact on every core: 2 threads hammer one bucket for 3 s"
sleep 1
out=$(probe_in mas-agent@c.service hammer tcp 127.0.40.1 7000 3 2 5 600)
echo "# $out"
adm=$(echo "$out" | sed -n 's/.*admitted=\([0-9]*\).*/\1/p')
check "admissions never exceed burst + rate x T + 1 in any window ($out)" \
	sh -c "echo '$out' | grep -q 'worst_excess=-\|worst_excess=0.00'"
check "the bucket, not the connectors, was the limit: near burst + rate x T admitted ($adm >= 30)" [ "$adm" -ge 30 ]
out=$(probe_in mas-agent@c.service hammer udp 127.0.40.1 7000 2 2 5 600)
echo "# udp connect: $out"
check "UDP connects on two cores: never over the bound ($out)" \
	sh -c "echo '$out' | grep -q 'worst_excess=-\|worst_excess=0.00'"

echo "# an agent under its rate is never refused"
out=$(probe_in mas-agent@d.service pace tcp 127.0.40.1 7000 40 110000)
check "40 connects 110 ms apart at a rate of one per 100 ms: none refused ($out)" \
	[ "$out" = "allowed=40 denied=0 other=0" ]
out=$(probe_in mas-agent@u.service pace udp 127.0.40.1 7000 25 105000)
check "25 UDP connects 105 ms apart: none refused ($out)" [ "$out" = "allowed=25 denied=0 other=0" ]

echo "# counters and events"
rl0=$(agent_count b rate_limited)
out=$(probe_in mas-agent@b.service loop tcp 127.0.40.2 7001 50)
rl1=$(agent_count b rate_limited)
lim=$(echo "$out" | sed -n 's/.*limited=\([0-9]*\).*/\1/p')
check "the rate-limited connects are counted exactly ($rl0 -> $rl1; $out)" \
	[ $((rl1 - rl0)) -eq "$lim" -a "$lim" -ge 49 ]
sleep 0.5
n=$("$MASCTL" --json events | jq '[.[] | select(.agent == "b" and .verdict == "rate-limited"
	and .reason == "bucket-empty" and .destination == "auth")] | length')
check "the rate-limited calls are events with reason bucket-empty ($n, $lim made)" [ "$n" -ge "$lim" ]
"$MASCTL" agents >"$T/agents.txt"
check "masctl agents prints a limits section" grep -q "^b .*class.*slow .*/3" "$T/agents.txt"
mas_done
