#!/usr/bin/env bash
# Policy apply, end to end: `masctl policy apply` wall time (request to flipped maps and reply),
# the daemon's own time from its POLICY_APPLIED record (request to flipped maps, and within it
# filling the idle slot vs swapping it in), beside `nft -f` of the same rules in a network
# namespace this script creates, for 10, 1,000 and 10,000 prefixes and 10, 100 and 1,000 agents.
# usage: bench_apply.sh BUILD_DIR [APPLIES_PER_POINT]
export MASD_BUILD=$(realpath "${1:-build}")
. "$(dirname "$0")/../lib/masd.sh"
. "$HERE/tests/bench/lib.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"
command -v nft >/dev/null || mas_skip "no nft"

N=${2:-${MAS_BENCH_APPLIES:-7}}
PREFIXES=(${MAS_BENCH_PREFIXES:-10 1000 10000})
AGENTS=(${MAS_BENCH_AGENTS:-10 100 1000})
APPLIED_ID=641e69d34fca5220bc4d3e4e5350a6e0
MOUNT_REL=${CG#/sys/fs/cgroup/}
case $CG in /sys/fs/cgroup/*) ;; *) mas_skip "the cgroup2 mount is not under /sys/fs/cgroup (nft needs it)" ;; esac

for a in $(seq 0 999); do mas_cgroup "mas-agent@a$a.service"; done
gen_policy 1 1 "$T/start.yaml"
mas_start --policy "$T/start.yaml" || exit 1

# nft -f of one ruleset N times, each into a fresh ruleset, inside one new network namespace
nft_times() { # file
	unshare --net bash -c '
		for i in $(seq 1 '"$N"'); do
			t0=${EPOCHREALTIME/[.,]/}
			nft -f "$1" || exit 1
			t1=${EPOCHREALTIME/[.,]/}
			echo $(((t1 - t0) / 1000)).$(printf %03d $(((t1 - t0) % 1000)))
			nft flush ruleset
		done' nft "$1"
}

for p in "${PREFIXES[@]}"; do
	for a in "${AGENTS[@]}"; do
		gen_policy "$p" "$a" "$T/p.yaml"
		gen_nft "$p" "$a" "$MOUNT_REL" "$T/p.nft"
		walls=()
		first=$("$MASCTL" --json status | jq .generation)
		for _ in $(seq 1 "$N"); do
			t0=$(bench_ms)
			"$MASCTL" policy apply "$T/p.yaml" >/dev/null || { echo "apply failed" >&2; exit 1; }
			t1=$(bench_ms)
			walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
		done
		journal_sync
		# the daemon's own figures for the generations just applied
		journalctl -q -o json MESSAGE_ID=$APPLIED_ID |
			jq -s --argjson g "$first" '[.[] | select((.MAS_GENERATION | tonumber) > $g)]' \
				>"$T/applied.json"
		got=$(jq length "$T/applied.json")
		[ "$got" -eq "$N" ] || { echo "expected $N POLICY_APPLIED records, got $got" >&2; exit 1; }
		med() { jq -r "[.[] | .$1 | tonumber / 1000] | sort | .[length / 2 | floor]" "$T/applied.json"; }
		daemon=$(med MAS_APPLY_USEC)
		wait=$(med MAS_APPLY_WAIT_USEC)
		fill=$(med MAS_APPLY_FILL_USEC)
		flip=$(med MAS_APPLY_FLIP_USEC)
		wall=$(bench_median "${walls[@]}")
		nft=$(bench_median $(nft_times "$T/p.nft")) || { echo "nft -f failed" >&2; exit 1; }
		ratio=$(awk -v a="$wall" -v b="$nft" 'BEGIN { printf "%.2f", a / b }')
		x="{\"prefixes\": $p, \"agents\": $a, \"masd_ms\": $daemon, \"wait_ms\": $wait,
		    \"fill_ms\": $fill, \"flip_ms\": $flip, \"nft_ms\": $nft, \"vs_nft\": $ratio}"
		budget=
		[ "$p" = 10000 ] && budget=25
		bench_result apply "apply $p prefixes, $a agents (masctl wall)" "$wall" ms "$budget" le "$x"
		bench_progress apply "$p prefixes, $a agents: masctl $wall ms (masd to flip $daemon: wait $wait, fill $fill, flip $flip), nft -f $nft ms (masctl/nft $ratio)"
	done
done
mas_stop
