#!/usr/bin/env bash
# Runs the libFuzzer harnesses of BUILD/fuzz.
#   run.sh smoke BUILD NAME     one harness, on its seed corpus plus a few seconds of mutation
#                               (what make check runs); exit 0 when nothing crashed
#   run.sh long BUILD SECONDS   every harness for SECONDS each; prints executions per harness
# Seeds are tests/fuzz/corpus/NAME (fixtures of past crashes live there too); what a run finds
# goes to a scratch corpus under BUILD, never into the source tree.
set -u
cd "$(dirname "$0")/../.."
mode=$1
build=$2
seeds_of() { echo "tests/fuzz/corpus/${1#fuzz_}"; }

prepare() { # name -> scratch corpus dir
	local work=$build/fuzz/work/${1#fuzz_}
	mkdir -p "$work" "$build/fuzz/artifacts"
	echo "$work"
}

run() { # name seconds
	local name=$1 secs=$2 work
	work=$(prepare "$name")
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$build/fuzz/$name" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$build/fuzz/artifacts/${name#fuzz_}-" "$work" "$(seeds_of "$name")"
}

case $mode in
smoke)
	[ -x "$build/fuzz/$3" ] || { echo "SKIP: $3 not built (make fuzz-build)"; exit 77; }
	run "$3" "${FUZZ_SMOKE_SECONDS:-5}"
	;;
long)
	secs=$3
	printf '%-20s %12s %8s %s\n' harness executions seconds result
	for bin in "$build"/fuzz/fuzz_*; do
		name=$(basename "$bin")
		log=$build/fuzz/$name.log
		run "$name" "$secs" >"$log" 2>&1
		rc=$?
		runs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log" | tail -n1)
		res=ok
		[ $rc -eq 0 ] || res="CRASH (exit $rc, see $log and $build/fuzz/artifacts)"
		printf '%-20s %12s %8s %s\n' "${name#fuzz_}" "${runs:-?}" "$secs" "$res"
	done
	;;
*)
	echo "usage: $0 smoke BUILD NAME | long BUILD SECONDS" >&2
	exit 2
	;;
esac
