#!/usr/bin/env bash
# make bench: what masd costs per connect, in one run, as ratios. Kernel bpf_stats run time per
# invocation of the full connect4 program (100 agents, 10,000 prefixes, rate-limited classes)
# against an allow-all connect4 program (the floor); connect() latency with no filter, with masd,
# and with the same rules in nftables, in a network namespace created here (the host's firewall
# is never touched), to an address deep in the 10,000-prefix trie. Then the other programs a
# connect meets, a perf profile of the full program, and how its cost grows with prefixes,
# agents and classes. Prints a progress line per stage, a table, PASS/MISS against DESIGN.md's
# budgets, writes results/bench-*.json, and adds its figures to the run's table (lib.sh).
#   tests/bench/bench_connect.sh [BUILD]        (BENCH_N connects per sample, BENCH_ROUNDS rounds,
#   BENCH_ALLOWED_EVENTS=all to measure the policy's audit.allowed_events: all)
set -u
HERE=$(cd "$(dirname "$0")/../.." && pwd)
export MASD_BUILD=${1:-${MASD_BUILD:-build}}
N=${BENCH_N:-8000}
ROUNDS=${BENCH_ROUNDS:-7}
. "$HERE/tests/lib/masd.sh"
mas_setup
for t in bpftool nft ip jq clang; do
	command -v $t >/dev/null || mas_skip "no $t"
done

stage() { echo "[$(date +%H:%M:%S)] $*"; }
NS=masbench-$$
OUT=$T/bench
mkdir -p "$OUT"
STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
bench_cleanup() {
	sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
	ip netns del "$NS" 2>/dev/null
	[ -n "${FLOOR_CG:-}" ] && bpftool cgroup detach "$FLOOR_CG" connect4 pinned "$FLOOR_PIN" 2>/dev/null
	rm -f "${FLOOR_PIN:-/nonexistent}"
	mas_cleanup
}
trap bench_cleanup EXIT

stage "building the helpers"
cc -O2 -Wall -o "$OUT/connbench" "$HERE/tests/bench/connbench.c" -lpthread || exit 1
clang -g -O2 -target bpf -I/usr/include/$(uname -m)-linux-gnu \
	-c "$HERE/tests/bench/floor.bpf.c" -o "$OUT/floor.bpf.o" || exit 1

# The connects go to TARGET, a /32 inside the densest part of the trie (d50's 10.50.50.0/24 when
# there are 10,000 prefixes), so the LPM lookup walks the trie's full depth, as a connect to a
# real destination among many would; the address is on lo in the bench's own network namespace.
TARGET=10.50.50.1
# conn_policy P A C FMT: P /24 prefixes in 10.0.0.0/8 over min(P,100) destinations (port 443),
# C rate-limited classes spread over them, A agents named by printf FMT (cgroups of the same
# name under the scratch root) granted all of them and TARGET:9000 (class bench)
conn_policy() {
	local p=$1 a=$2 c=$3 fmt=$4 nd per d j name
	nd=$((p < 100 ? p : 100))
	per=$((p / nd))
	echo "version: 1"
	[ -n "${BENCH_ALLOWED_EVENTS:-}" ] && echo "audit: { allowed_events: $BENCH_ALLOWED_EVENTS }"
	echo "rate_limits:"
	for j in $(seq 0 $((c - 1))); do echo "  c$j: { requests_per_minute: 6000, burst_size: 100 }"; done
	echo "  bench: { requests_per_minute: 1000000, burst_size: 1000000 }"
	echo "destinations:"
	echo "  target: { cidrs: [$TARGET/32], ports: [9000], class: bench, protected: true }"
	for d in $(seq 0 $((nd - 1))); do
		printf "  d%d: { class: c%d, ports: [443], cidrs: [" "$d" $((d % c))
		for j in $(seq 0 $((per - 2))); do printf "10.%d.%d.0/24, " "$d" "$j"; done
		printf "10.%d.%d.0/24] }\n" "$d" $((per - 1))
	done
	printf "permissions:\n  p: [target"
	for d in $(seq 0 $((nd - 1))); do printf ", d%d" "$d"; done
	printf "]\nroles: { agent: [p] }\nagents:\n"
	for j in $(seq 0 $((a - 1))); do
		# shellcheck disable=SC2059 # the format is the caller's
		printf -v name "$fmt" "$j"
		echo "  $name: { cgroup: $REL/$name, role: agent }"
	done
}

stage "generating a policy: 100 agents, 10,000 prefixes, 10 rate-limited classes"
REL=${CG#$MOUNT/}
conn_policy 10000 100 10 a%02d >"$OUT/policy.yaml"
for a in $(seq -w 0 99); do mas_cgroup a$a; done
OUTSIDE=$MOUNT/masbench-out-$$
FLOOR_CG=$MOUNT/masbench-floor-$$
# nftables is measured on its own: the same 100 agent cgroups, outside masd's root, so that
# none of masd's programs runs on its connects
NFTCG=$MOUNT/masbench-nft-$$
mkdir -p "$OUTSIDE" "$FLOOR_CG"
for a in $(seq -w 0 99); do mkdir -p "$NFTCG/a$a"; done
trap 'bench_cleanup; rmdir "$OUTSIDE" "$FLOOR_CG" "$NFTCG"/a* "$NFTCG" 2>/dev/null' EXIT

stage "starting masd on the policy"
mas_start --policy "$OUT/policy.yaml" || exit 1
prefixes=$(bpftool -j map show | jq '[.[] | select(.name == "mas_lpm4_in")] | length')
echo "  masd applied generation $("$MASCTL" --json status | jq .generation)"

stage "loading the allow-all floor program"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
FLOOR_PIN=/sys/fs/bpf/masbench-floor-$$
bpftool prog load "$OUT/floor.bpf.o" "$FLOOR_PIN" type cgroup/connect4 || exit 1
bpftool cgroup attach "$FLOOR_CG" connect4 pinned "$FLOOR_PIN" multi || exit 1

stage "creating network namespace $NS"
ip netns add "$NS" || exit 1
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$TARGET/32" dev lo || exit 1
NSP=/run/netns/$NS
run() { # cgroup -> prints the connbench line
	"$OUT/connbench" --cgroup "$1" --netns "$NSP" "$TARGET" 9000 "$N"
}
field() { echo "$1" | sed -n "s/.*$2=\([0-9]*\).*/\1/p"; }

# the nftables peer: one rule per agent (its cgroup, the destinations it may reach, a rate
# limit), established traffic first as every real ruleset has it, protected addresses dropped
{
	echo "table inet masbench {"
	# TARGET is in 10.50.50.0/24 (an interval set holds no /32 inside a /24 it has)
	printf "  set dests { type ipv4_addr; flags interval; elements = { %s } }\n" \
		"$(for d in $(seq 0 99); do for j in $(seq 0 99); do echo "10.$d.$j.0/24"; done; done | paste -sd,)"
	echo "  chain output { type filter hook output priority 0; policy accept;"
	echo "    ct state established,related accept"
	# nft reads a cgroupv2 path below /sys/fs/cgroup whatever the mount: /sys/fs/cgroup/unified
	# keeps its unified/ in the path, and the level counts from the cgroup2 root all the same
	for a in $(seq -w 0 99); do
		echo "    socket cgroupv2 level 2 \"${NFTCG#/sys/fs/cgroup/}/a$a\" ip daddr @dests limit rate 16000/second burst 1000000 packets accept"
	done
	echo "    socket cgroupv2 level 1 \"${OUTSIDE#/sys/fs/cgroup/}\" ip daddr @dests limit rate 16000/second burst 1000000 packets accept"
	echo "    ip daddr @dests drop"
	echo "  }"
	echo "}"
} >"$OUT/nft.conf"

declare -A MED P99
for k in base masd nft floor; do MED[$k]=""; P99[$k]=""; done
prog_id=$(bpftool -j cgroup show "$CG" | jq '[.[] | select(.attach_type == "cgroup_inet4_connect")][0].id')
floor_id=$(bpftool -j prog show pinned "$FLOOR_PIN" | jq .id)
stats() { bpftool -j prog show id "$1" | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'; }
# ns per run of program ID over blocks of N connects by an agent in CGROUP, in turns with the
# floor under FLOOR_CG: "full floor", each the least of its blocks (other work on the host only
# ever adds time, so the quietest block is the one that compares). bpf_stats must be on.
per_run() { # id cgroup blocks
	local b t0 c0 t1 c1 u0 d0 u1 d1 out f fl best_f="" best_fl=""
	for b in $(seq 1 "$3"); do
		read -r t0 c0 <<<"$(stats "$1")"
		out=$("$OUT/connbench" --cgroup "$2" --netns "$NSP" "$TARGET" 9000 "$N") || return 1
		[ "$(field "$out" refused)" = 0 ] || { echo "masd refused connects in $2: $out" >&2; return 1; }
		read -r t1 c1 <<<"$(stats "$1")"
		read -r u0 d0 <<<"$(stats "$floor_id")"
		"$OUT/connbench" --cgroup "$FLOOR_CG" --netns "$NSP" "$TARGET" 9000 "$N" >/dev/null || return 1
		read -r u1 d1 <<<"$(stats "$floor_id")"
		f=$(awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN { printf "%.0f", c ? t / c : 0 }')
		fl=$(awk -v t=$((u1 - u0)) -v c=$((d1 - d0)) 'BEGIN { printf "%.0f", c ? t / c : 0 }')
		if [ -z "$best_f" ] || [ "$f" -lt "$best_f" ]; then best_f=$f; fi
		if [ -z "$best_fl" ] || [ "$fl" -lt "$best_fl" ]; then best_fl=$fl; fi
	done
	echo "$best_f $best_fl"
}

sysctl -qw kernel.bpf_stats_enabled=0
for r in $(seq 1 "$ROUNDS"); do
	stage "round $r/$ROUNDS: $N connects each: no filter, floor program, masd, nftables"
	out=$(run "$OUTSIDE") || exit 1
	MED[base]+=" $(field "$out" median_ns)"; P99[base]+=" $(field "$out" p99_ns)"
	out=$(run "$FLOOR_CG") || exit 1
	MED[floor]+=" $(field "$out" median_ns)"; P99[floor]+=" $(field "$out" p99_ns)"
	out=$(run "$CG/a50")
	[ "$(field "$out" refused)" = 0 ] || { echo "masd refused connects: $out" >&2; exit 1; }
	MED[masd]+=" $(field "$out" median_ns)"; P99[masd]+=" $(field "$out" p99_ns)"
	t0=$(date +%s%N)
	ip netns exec "$NS" true
	nsenter --net="$NSP" nft -f "$OUT/nft.conf" || exit 1
	nft_load_ms=$((($(date +%s%N) - t0) / 1000000))
	out=$(run "$NFTCG/a50")
	[ "$(field "$out" refused)" = 0 ] || { echo "nftables refused connects: $out" >&2; exit 1; }
	MED[nft]+=" $(field "$out" median_ns)"; P99[nft]+=" $(field "$out" p99_ns)"
	nsenter --net="$NSP" nft delete table inet masbench
done

# The kernel's own accounting, on its own rounds: bpf_stats adds two clock readings to every
# program run, so the latency rounds above run without it, as production does.
stage "bpf_stats: 5 blocks of $N connects by agent a50, each followed by $N under the floor program"
sysctl -qw kernel.bpf_stats_enabled=1
read -r _ m_c0 <<<"$(stats "$prog_id")"
# the other programs a connect meets: socket creation, every packet the agent sends (both ends
# of these connects are in the agent's cgroup), and the release of both sockets
declare -A OTHER_ID OTHER_T0 OTHER_C0
for at in cgroup_inet_sock_create cgroup_inet_egress cgroup_inet_sock_release; do
	OTHER_ID[$at]=$(bpftool -j cgroup show "$CG" | jq --arg t "$at" '[.[] | select(.attach_type == $t)][0].id // empty')
	[ -n "${OTHER_ID[$at]}" ] && read -r "OTHER_T0[$at]" "OTHER_C0[$at]" <<<"$(stats "${OTHER_ID[$at]}")"
done
# per_run prints nothing when it fails (its reason is on stderr): read cannot tell, the test can
read -r full_ns floor_ns <<<"$(per_run "$prog_id" "$CG/a50" 5)"
[ -n "$floor_ns" ] || exit 1
read -r _ m_c1 <<<"$(stats "$prog_id")"
OTHERS="" # lines: attach type, ns per run, runs per connect
for at in cgroup_inet_sock_create cgroup_inet_egress cgroup_inet_sock_release; do
	[ -n "${OTHER_ID[$at]:-}" ] || continue
	read -r t1 c1 <<<"$(stats "${OTHER_ID[$at]}")"
	OTHERS+=$(awk -v a="$at" -v t=$((t1 - OTHER_T0[$at])) -v c=$((c1 - OTHER_C0[$at])) \
		-v n=$((m_c1 - m_c0)) 'BEGIN { printf "%s %.0f %.2f\n", a, c ? t / c : 0, n ? c / n : 0 }')$'\n'
done
sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"

# Where the program's time goes: perf samples the whole machine (cpu-clock: no hardware counters
# in this VM) while an agent connects; a sample whose stack holds mas_connect4 is the program's,
# and the function it called (or the program itself) says what for. Not under bpf_stats (run
# above): sampling slows every path it interrupts, so shares are read from here, ns from there.
PROFILE=""
if command -v perf >/dev/null && perf record -q -e cpu-clock -o /dev/null -- true 2>/dev/null; then
	stage "profile: perf samples the full program while agent a50 connects"
	perf record -q -a -g -e cpu-clock -F 10000 -o "$OUT/perf.data" -- sleep 6 2>/dev/null &
	perf_pid=$!
	sleep 0.5
	"$OUT/connbench" --cgroup "$CG/a50" --netns "$NSP" "$TARGET" 9000 $((N * 8)) >/dev/null
	wait $perf_pid
	PROFILE=$(perf script -i "$OUT/perf.data" -F ip,sym 2>/dev/null | awk -v RS= '
		/mas_connect4/ {
			n = split($0, l, "\n"); callee = "self"
			for (i = 1; i <= n; i++) {
				split(l[i], f, " ")
				if (f[2] ~ /mas_connect4/) break
				callee = f[2]
			}
			if (callee == "self") c = "the program'"'"'s own instructions (rules, grants, keys)"
			else if (callee ~ /trie_/) c = "LPM trie lookup (10,000 prefixes)"
			else if (callee ~ /htab|lookup_nulls|memcmp|jhash/) c = "hash map lookups (agent, class, bucket, counter, flow)"
			else if (callee ~ /ktime|read_tsc|clock/) c = "clock reading"
			else if (callee ~ /spin_lock|spin_unlock/) c = "bucket spin lock"
			else if (callee ~ /ringbuf/) c = "ring-buffer event"
			else if (callee ~ /bpf_get_current/) c = "cgroup and task identity"
			else if (callee ~ /array_map|percpu_array/) c = "array map lookups"
			else c = "other (" callee ")"
			cnt[c]++; tot++
		}
		END { for (c in cnt) printf "%d\t%.1f\t%s\n", cnt[c], 100 * cnt[c] / tot, c }' |
		sort -rn)
	rm -f "$OUT/perf.data"
fi

# How the cost grows: the full program against the floor, in turns, with the policy resized
# along one axis at a time around the main point (10,000 prefixes, 100 agents, 10 classes);
# agent s000 connects to TARGET
SCALES="10 100 10|1000 100 10|10000 100 10|10000 10 10|10000 1000 10|10000 100 1|10000 100 100"
SCALE=""
stage "cost against size: 7 policies, 5 blocks of $N connects each under the full program and the floor"
for j in $(seq 0 999); do printf -v a 's%03d' "$j"; mas_cgroup "$a"; done
sysctl -qw kernel.bpf_stats_enabled=1
IFS='|' read -ra cfgs <<<"$SCALES"
for cfg in "${cfgs[@]}"; do
	read -r sp sa sc <<<"$cfg"
	conn_policy "$sp" "$sa" "$sc" s%03d >"$OUT/scale.yaml"
	"$MASCTL" policy apply "$OUT/scale.yaml" >/dev/null || { echo "apply of $cfg failed" >&2; exit 1; }
	sleep 0.5 # masd journals the apply (1,000 enrolments at most) on the other core
	read -r f fl <<<"$(per_run "$prog_id" "$CG/s000" 5)"
	[ -n "$fl" ] || exit 1
	SCALE+="$sp $sa $sc $f $fl"$'\n'
	echo "  $sp prefixes, $sa agents, $sc classes: $f ns (floor $fl ns)"
done
sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"

stage "computing"
# the best of the per-round medians: what other work on the host adds is only ever more time,
# so the quietest round of each setup is the one that compares
med() { tr ' ' '\n' <<<"$1" | grep . | sort -n | head -1; }
B=$(med "${MED[base]}"); M=$(med "${MED[masd]}"); F=$(med "${MED[floor]}"); X=$(med "${MED[nft]}")
B99=$(med "${P99[base]}"); M99=$(med "${P99[masd]}"); F99=$(med "${P99[floor]}"); X99=$(med "${P99[nft]}")
read -r masd_ovh nft_ovh ratio_nft <<<"$(awk -v b="$B" -v m="$M" -v x="$X" 'BEGIN {
	mo = (m - b) / b * 100; xo = (x - b) / b * 100
	r = 0; if (x - b > 0) r = (m - b) / (x - b)
	printf "%.2f %.2f %.2f", mo, xo, r }')"
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
v_ns=$(verdict "$full_ns <= 300")
v_ovh=$(verdict "$masd_ovh <= 4")
v_nft=$(verdict "($M - $B) < ($X - $B) / 3")

echo
printf "%-44s %12s %12s\n" "measure" "value" "budget"
printf "%-44s %9s ns %12s\n" "full connect4 program, per run (bpf_stats)" "$full_ns" "<= 300 $v_ns"
printf "%-44s %9s ns\n" "allow-all connect4 floor, per run" "$floor_ns"
printf "%-44s %9s ns\n" "  full minus floor" "$((full_ns - floor_ns))"
printf "%-44s %9s ns  p99 %s ns\n" "connect() median (best round), no filter" "$B" "$B99"
printf "%-44s %9s ns  p99 %s ns\n" "connect() median (best round), floor prog" "$F" "$F99"
printf "%-44s %9s ns  p99 %s ns\n" "connect() median (best round), masd" "$M" "$M99"
printf "%-44s %9s ns  p99 %s ns\n" "connect() median (best round), nftables" "$X" "$X99"
printf "%-44s %11s%% %12s\n" "masd overhead over no filter" "$masd_ovh" "<= 4% $v_ovh"
printf "%-44s %11s%%\n" "nftables overhead over no filter" "$nft_ovh"
printf "%-44s %12s %12s\n" "masd overhead / nftables overhead" "$ratio_nft" "< 0.33 $v_nft"
printf "%-44s %9s ms\n" "nft -f of the 10,000-element ruleset" "$nft_load_ms"
echo "(per-round medians: base${MED[base]}; masd${MED[masd]}; nft${MED[nft]}; floor${MED[floor]})"
others_ns=0
if [ -n "$OTHERS" ]; then
	echo "masd's other programs, per connect (bpf_stats):"
	while read -r at ns per; do
		[ -n "$at" ] || continue
		printf "  %-26s %5s ns per run x %5s runs per connect\n" "$at" "$ns" "$per"
		others_ns=$(awk -v o="$others_ns" -v n="$ns" -v p="$per" 'BEGIN { printf "%.0f", o + n * p }')
	done <<<"$OTHERS"
	printf "%-44s %9s ns  (connect() median with masd minus no filter: %s ns)\n" \
		"all of masd's programs, per connect" "$((full_ns + others_ns))" "$((M - B))"
fi
if [ -n "$PROFILE" ]; then
	echo "where the full program's time goes (perf, $(awk -F'\t' '{ s += $1 } END { print s }' \
		<<<"$PROFILE") samples in mas_connect4; ns = share x the bpf_stats figure):"
	while IFS=$'\t' read -r n pct what; do
		printf "  %5s%%  %5.0f ns  %s\n" "$pct" "$(awk -v p="$pct" -v f="$full_ns" 'BEGIN { print p * f / 100 }')" "$what"
	done <<<"$PROFILE"
fi

echo "how the full program's cost grows (bpf_stats, ns per run; the floor measured in turn):"
printf "  %8s %7s %8s %9s %9s %8s\n" prefixes agents classes "full ns" "floor ns" "- floor"
while read -r sp sa sc f fl; do
	[ -n "$sp" ] && printf "  %8s %7s %8s %9s %9s %8s\n" "$sp" "$sa" "$sc" "$f" "$fl" $((f - fl))
done <<<"$SCALE"

mkdir -p "$HERE/results"
J=$HERE/results/bench-$(date +%Y%m%dT%H%M%S).json
jq -n --argjson full "$full_ns" --argjson floor "$floor_ns" --argjson b "$B" --argjson m "$M" \
	--argjson x "$X" --argjson f "$F" --argjson b99 "$B99" --argjson m99 "$M99" \
	--argjson x99 "$X99" --argjson f99 "$F99" --argjson mo "$masd_ovh" --argjson xo "$nft_ovh" \
	--argjson ratio "$ratio_nft" --argjson n "$N" --argjson rounds "$ROUNDS" \
	--argjson nftms "$nft_load_ms" --arg v1 "$v_ns" --arg v2 "$v_ovh" --arg v3 "$v_nft" \
	--arg kernel "$(uname -r)" '{kernel: $kernel, connects_per_sample: $n, rounds: $rounds,
	  bpf_ns_per_connect: {full: $full, floor: $floor},
	  connect_median_ns: {none: $b, floor: $f, masd: $m, nftables: $x},
	  connect_p99_ns: {none: $b99, floor: $f99, masd: $m99, nftables: $x99},
	  overhead_pct: {masd: $mo, nftables: $xo}, masd_over_nftables: $ratio,
	  nft_load_ms: $nftms,
	  budgets: {bpf_ns_le_300: $v1, overhead_le_4pct: $v2, under_third_of_nftables: $v3}}' >"$J"
echo "results: $J"

# the same figures in the run's table (tests/bench/summary.sh), with their budgets
. "$HERE/tests/bench/lib.sh"
x='{"agents": 100, "prefixes": 10000, "classes": 10}'
bench_result connect "program run time per connect, full policy (bpf_stats)" "$full_ns" ns 300 le "$x"
bench_result connect "program run time per connect, allow-all floor" "$floor_ns" ns "" "" "$x"
bench_result connect "connect() median, no filter (p99 $B99 ns)" "$B" ns "" "" "$x"
bench_result connect "connect() median, allow-all floor program (p99 $F99 ns)" "$F" ns "" "" "$x"
bench_result connect "connect() median, masd (p99 $M99 ns)" "$M" ns "" "" "$x"
bench_result connect "connect() median, nftables (p99 $X99 ns)" "$X" ns "" "" "$x"
bench_result connect "connect() overhead of masd over no filter" "$masd_ovh" % 4 le "$x"
bench_result connect "connect() overhead of nftables over no filter" "$nft_ovh" % "" "" "$x"
bench_result connect "masd's overhead / nftables' overhead" "$ratio_nft" "" 0.33 le "$x"
bench_result connect "nft -f of the 10,000-element ruleset" "$nft_load_ms" ms "" "" "$x"
while read -r at ns per; do
	[ -n "$at" ] || continue
	bench_result connect "  $at program per run (x $per runs per connect)" "$ns" ns "" "" "$x"
done <<<"$OTHERS"
[ -n "$OTHERS" ] && bench_result connect "all of masd's programs per connect (connect() delta $((M - B)) ns)" \
	"$((full_ns + others_ns))" ns "" "" "$x"
if [ -n "$PROFILE" ]; then
	while IFS=$'\t' read -r n pct what; do
		bench_result connect "  profile: $what (share of the program's samples; $n)" "$pct" % "" "" "$x"
	done <<<"$PROFILE"
fi
while read -r sp sa sc f fl; do
	[ -n "$sp" ] || continue
	bench_result scale "program per connect: $sp prefixes, $sa agents, $sc classes (floor $fl ns)" \
		"$f" ns "" "" "{\"prefixes\": $sp, \"agents\": $sa, \"classes\": $sc, \"floor_ns\": $fl}"
done <<<"$SCALE"
