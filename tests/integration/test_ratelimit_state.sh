#!/usr/bin/env bash
# Bucket state lives outside the policy slots, keyed by stable ids: a re-apply that leaves a
# class alone keeps its bucket as it is; changed numbers rescale (tokens kept, clamped to the
# new burst), never refill; a removed class frees its state, and coming back starts full.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
command -v bpftool >/dev/null || mas_skip "no bpftool"

policy() { # slow-class-yaml other-class-yaml extra-destination
	cat <<YAML
version: 1
destinations:
  auth: { cidrs: [127.0.41.2/32], ports: [7001], class: ${4:-slow} }
  x: { cidrs: [127.0.41.3/32], ports: [7002], class: other }
$3
permissions: { p: [auth, x] }
roles: { agent: [p] }
agents:
  a: { unit: mas-agent@a.service, role: agent }
rate_limits:
$1
  other: $2
YAML
}
A=mas-agent@a.service
mas_cgroup "$A"
tokens() { # class
	"$MASCTL" --json agents |
		jq --arg c "$1" '.[] | select(.agent == "a") | .classes[] | select(.class == $c) | .tokens'
}
buckets() {
	bpftool -j map dump pinned "$BPFFS/mas_buckets" | jq length
}
policy "  slow: { requests_per_minute: 6, burst_size: 5 }" \
	"{ requests_per_minute: 6, burst_size: 5 }" "" >"$T/v1.yaml"
mas_start --policy "$T/v1.yaml" || exit 1

echo "# drain the slow bucket"
out=$(probe_in "$A" loop tcp 127.0.41.2 7001 8)
check "burst of 5 then rate-limited ($out)" [ "$out" = "allowed=5 denied=0 other=0 limited=3" ]

echo "# an unrelated change keeps the bucket as it is"
policy "  slow: { requests_per_minute: 6, burst_size: 5 }" \
	"{ requests_per_minute: 6, burst_size: 5 }" \
	"  web: { cidrs: [127.0.41.9/32] }" >"$T/v1b.yaml"
"$MASCTL" policy apply "$T/v1b.yaml" >/dev/null
out=$(probe_in "$A" connect tcp 127.0.41.2 7001)
check "after an unrelated re-apply the drained bucket is still empty ($out)" \
	[ "$out" = "rate-limited EAGAIN" ]
check "masctl agents shows 0 tokens left ($(tokens slow))" [ "$(tokens slow)" = 0 ]

echo "# changed numbers rescale, never refill"
policy "  slow: { requests_per_minute: 12, burst_size: 8 }" \
	"{ requests_per_minute: 6, burst_size: 5 }" "" >"$T/v2.yaml"
"$MASCTL" policy apply "$T/v2.yaml" >/dev/null
out=$(probe_in "$A" connect tcp 127.0.41.2 7001)
check "a larger burst and rate do not refill the empty bucket ($out)" \
	[ "$out" = "rate-limited EAGAIN" ]
out=$(probe_in "$A" connect tcp 127.0.41.3 7002)
check "the other class has 4 of 5 left after one connect ($out, $(tokens other))" \
	[ "$out" = "allowed OK" -a "$(tokens other)" = 4 ]
policy "  slow: { requests_per_minute: 12, burst_size: 8 }" \
	"{ requests_per_minute: 6, burst_size: 2 }" "" >"$T/v3.yaml"
"$MASCTL" policy apply "$T/v3.yaml" >/dev/null
check "a smaller burst clamps the 4 tokens to 2 ($(tokens other))" [ "$(tokens other)" = 2 ]
out=$(probe_in "$A" loop tcp 127.0.41.3 7002 5)
check "2 admitted after shrinking the burst to 2 ($out)" \
	[ "$out" = "allowed=2 denied=0 other=0 limited=3" ]

echo "# a removed class frees its state"
b0=$(buckets)
policy "" "{ requests_per_minute: 6, burst_size: 2 }" "" other >"$T/v4.yaml"
"$MASCTL" policy apply "$T/v4.yaml" >/dev/null
b1=$(buckets)
check "removing class slow deleted its bucket ($b0 -> $b1 buckets)" [ "$b1" -eq $((b0 - 1)) ]
"$MASCTL" policy apply "$T/v2.yaml" >/dev/null
out=$(probe_in "$A" loop tcp 127.0.41.2 7001 10)
check "the class, back, starts full: a burst of 8 ($out)" \
	[ "$out" = "allowed=8 denied=0 other=0 limited=2" ]
mas_done
