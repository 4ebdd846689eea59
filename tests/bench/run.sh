#!/usr/bin/env bash
# make bench: runs every tests/bench/bench_*.sh with the build dir, one after the other.
set -u
cd "$(dirname "$0")/../.."
rc=0
for b in tests/bench/bench_*.sh; do
	[ -e "$b" ] || continue
	echo "== $(basename "$b" .sh)"
	bash "$b" "${1:-build}" || rc=1
done
exit $rc
