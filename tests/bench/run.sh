#!/usr/bin/env bash
# make bench: runs every tests/bench/bench_*.sh with the build dir, one after the other; each
# appends its figures to one JSON-lines file per run under results/, and the table at the end
# (tests/bench/summary.sh) prints every figure with its budget and PASS or MISS.
set -u
cd "$(dirname "$0")/../.."
mkdir -p results
export BENCH_RESULTS=${BENCH_RESULTS:-$PWD/results/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
: >"$BENCH_RESULTS"
start=$(date +%s)
rc=0
for b in tests/bench/bench_*.sh; do
	[ -e "$b" ] || continue
	echo "== $(basename "$b" .sh) ($(date -u +%H:%M:%S))"
	bash "$b" "${1:-build}"
	r=$?
	[ $r -eq 0 ] || [ $r -eq 77 ] || rc=1
done
echo "== summary: $(($(date +%s) - start)) s, $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
bash tests/bench/summary.sh "$BENCH_RESULTS"
bash tests/bench/plot.sh "$BENCH_RESULTS" "${BENCH_RESULTS%.jsonl}.svg" &&
	echo "plot: ${BENCH_RESULTS%.jsonl}.svg"
exit $rc
