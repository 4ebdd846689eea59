# Shared by the bench stages: where results go, one JSON object per figure, progress lines,
# and the generated policies (masd YAML and the equivalent nftables ruleset).
#
#   bench_result STAGE NAME VALUE UNIT [BUDGET OP [EXTRA_JSON]]
#       append {"stage","name","value","unit","budget","op",...EXTRA} to $BENCH_RESULTS;
#       OP is le or ge (value ≤ / ≥ budget); a figure without a budget is informational
#   bench_progress STAGE TEXT    one progress line on stderr, with the time
#   bench_median N...            the median of numbers
#   gen_policy P A FILE          a policy: P IPv4 /32 prefixes over min(P,100) destinations,
#                                port 443, A agents mas-agent@aN.service, all granted all of them
#   gen_nft P A CGPATH FILE      the same rules for nftables: a set, a socket cgroupv2 rule per
#                                agent (CGPATH relative to /sys/fs/cgroup), a drop for the rest

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${BENCH_RESULTS:-}" ]; then
	mkdir -p "$BENCH_HERE/results"
	BENCH_RESULTS=$BENCH_HERE/results/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl
	export BENCH_RESULTS
fi

bench_result() { # stage name value unit [budget op [extra]]
	local extra=${7:-"{}"}
	jq -nc --arg s "$1" --arg n "$2" --argjson v "$3" --arg u "$4" \
		--arg b "${5:-}" --arg op "${6:-le}" --argjson x "$extra" \
		'{stage: $s, name: $n, value: $v, unit: $u}
		 + (if $b == "" then {} else {budget: ($b | tonumber), op: $op} end) + $x' \
		>>"$BENCH_RESULTS"
}

bench_progress() {
	printf '  [%s] %s: %s\n' "$(date -u +%H:%M:%S)" "$1" "$2" >&2
}

bench_median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Milliseconds since the epoch, from bash itself (no fork in the measured interval).
bench_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000)).$(printf '%03d' $((t % 1000)))
}

gen_policy() { # prefixes agents file
	awk -v P="$1" -v A="$2" 'BEGIN {
		D = P < 100 ? P : 100
		print "version: 1"
		print "destinations:"
		for (d = 0; d < D; d++) {
			printf "  d%d:\n    ports: [443]\n    protected: true\n    cidrs:\n", d
			for (i = d; i < P; i += D)
				printf "      - %d.%d.%d.%d/32\n", 10 + int(i / 65536), int(i / 256) % 256, i % 256, 1
		}
		printf "permissions:\n  reach: ["
		for (d = 0; d < D; d++)
			printf "%sd%d", d ? ", " : "", d
		print "]"
		print "roles:\n  r: [reach]"
		print "agents:"
		for (a = 0; a < A; a++)
			printf "  a%d: { unit: mas-agent@a%d.service, role: r }\n", a, a
	}' >"$3"
}

gen_nft() { # prefixes agents cgpath file
	awk -v P="$1" -v A="$2" -v CG="$3" 'BEGIN {
		print "table inet masbench {"
		printf "\tset dests {\n\t\ttype ipv4_addr; flags interval;\n\t\telements = {"
		for (i = 0; i < P; i++)
			printf "%s\n\t\t\t%d.%d.%d.%d/32", i ? "," : "", 10 + int(i / 65536), int(i / 256) % 256, i % 256, 1
		print "\n\t\t}\n\t}"
		print "\tchain role_r {\n\t\tip daddr @dests tcp dport 443 accept\n\t}"
		print "\tchain out {\n\t\ttype filter hook output priority filter; policy accept;"
		for (a = 0; a < A; a++)
			printf "\t\tsocket cgroupv2 level 2 \"%s/mas-agent@a%d.service\" jump role_r\n", CG, a
		print "\t\tip daddr @dests drop\n\t}\n}"
	}' >"$4"
}
