#!/usr/bin/env bash
# Bandwidth budgets: bytes_per_second (and burst_bytes) on a class are policed on egress per
# (agent, class). A bulk sender to a local sink stays within +-10 % of its budget over a few
# seconds, over TCP and over UDP; another agent on the same class has its own budget; another
# class of the same agent is not slowed.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  sinka: { cidrs: [127.0.43.1/32], ports: ["9100-9199"], protocols: [tcp, udp], class: bulk }
  sinkb: { cidrs: [127.0.43.2/32], ports: ["9100-9199"], protocols: [tcp, udp], class: free }
permissions: { p: [sinka, sinkb] }
roles: { agent: [p] }
agents:
  a: { unit: mas-agent@a.service, role: agent }
  b: { unit: mas-agent@b.service, role: agent }
rate_limits:
  bulk: { requests_per_minute: 600, burst_size: 10, bytes_per_second: 2000000, burst_bytes: 262144 }
  free: { requests_per_minute: 600, burst_size: 10 }
YAML
A=mas-agent@a.service
B=mas-agent@b.service
mas_cgroup "$A"
mas_cgroup "$B"
mas_cgroup sink
mas_start --policy "$T/policy.yaml" || exit 1
BUDGET=2000000
SECS=4

# sink PROTO ADDR PORT OUTFILE: a sink in the background; the sender runs a second longer
sink() {
	"$PROBE" --cgroup "$CG/sink" sink "$1" "$2" "$3" $SECS >"$4" &
	MAS_PIDS+=($!)
}
rate_of() { sed -n 's/.*rate=\([0-9]*\).*/\1/p' "$1"; }
within() { # rate: within +-10 % of the budget
	awk -v r="$1" -v b=$BUDGET 'BEGIN { exit !(r >= 0.9 * b && r <= 1.1 * b) }'
}
drops() { # MAS_STAT_EGRESS_DROPS summed over CPUs
	bpftool -j map dump pinned "$BPFFS/mas_stats" |
		jq '[.[] | select(.formatted.key == 4) | .formatted.values[].value] | add'
}
waitfor() { for _ in $(seq 50); do grep -q serving "$1" 2>/dev/null && return; sleep 0.1; done; }

echo "# TCP: agent a on class bulk, agent b on class bulk, agent a on class free, at once"
sink tcp 127.0.43.1 9100 "$T/s1"
sink tcp 127.0.43.1 9101 "$T/s2"
sink tcp 127.0.43.2 9100 "$T/s3"
waitfor "$T/s1"; waitfor "$T/s2"; waitfor "$T/s3"
probe_in "$A" bulk tcp 127.0.43.1 9100 $((SECS + 1)) >"$T/b1" &
p1=$!
probe_in "$B" bulk tcp 127.0.43.1 9101 $((SECS + 1)) >"$T/b2" &
p2=$!
probe_in "$A" bulk tcp 127.0.43.2 9100 $((SECS + 1)) >"$T/b3" &
p3=$!
wait $p1 $p2 $p3
sleep 0.3
echo "# packets dropped over budget so far: $(drops)"
r1=$(rate_of "$T/s1"); r2=$(rate_of "$T/s2"); r3=$(rate_of "$T/s3")
echo "# budget $BUDGET B/s; a/bulk: $r1 B/s, b/bulk: $r2 B/s, a/free: $r3 B/s"
check "a's TCP bulk send on class bulk is within 10 % of the budget ($r1)" within "$r1"
check "b on the same class has its own budget ($r2)" within "$r2"
check "a's other class is not slowed (${r3} > 5 x budget)" [ "${r3:-0}" -gt $((5 * BUDGET)) ]

echo "# UDP: datagrams over budget are dropped on egress"
sink udp 127.0.43.1 9102 "$T/s4"
waitfor "$T/s4"
probe_in "$A" bulk udp 127.0.43.1 9102 $((SECS + 1)) >"$T/b4"
sleep 0.3
r4=$(rate_of "$T/s4")
echo "# a/bulk over UDP: $r4 B/s received; sender: $(cat "$T/b4")"
check "a's UDP bulk send is within 10 % of the budget ($r4)" within "$r4"
echo "# packets dropped over budget, in all: $(drops)"
mas_done
