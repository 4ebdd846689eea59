#!/usr/bin/env bash
# Audit trail benchmark in a private journald: writer vs raw sd_journal_sendv, verify vs read-back.
# usage: bench_audit.sh BUILD_DIR [RECORDS_PER_ROUND [ROUNDS]]
set -u
cd "$(dirname "$0")/../.."
B=$(realpath "${1:-build}")
[ "$(id -u)" = 0 ] || { echo "skip: needs root for a private journald"; exit 77; }
if [ -z "${MAS_IN_NS:-}" ]; then
	exec env MAS_IN_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. tests/lib/journald.sh
. tests/bench/lib.sh
tmp=$(mktemp -d /tmp/bench_audit.XXXXXX)
trap 'journald_stop; rm -rf "$tmp"' EXIT
journald_start || exit 1
bench_progress audit "writer vs raw sd_journal_sendv, verifier vs read-back"
set -o pipefail
"$B/tests/bench/audit_bench" "$tmp/state" "${2:-500}" "${3:-40}" | tee "$tmp/out" || exit 1
# write: raw sd_journal_sendv R records/s, chained+signed A records/s, ratio X overall,
#        median of N blocks M (K records each)
# verify: plain read-back R records/s, verify V records/s, ratio X (N records, intact)
set -- $(sed -n 's/^write: raw sd_journal_sendv \([0-9.]*\) records\/s, chained+signed \([0-9.]*\) records\/s, ratio \([0-9.]*\) overall, median of [0-9]* blocks \([0-9.]*\).*/\1 \2 \3 \4/p' "$tmp/out")
[ $# -eq 4 ] || { echo "bench_audit: cannot read the writer figures" >&2; exit 1; }
bench_result audit "audit: raw sd_journal_sendv records/s" "$1" /s
bench_result audit "audit: chained+signed writer records/s" "$2" /s
bench_result audit "audit: writer / raw, overall" "$3" "" 0.9 ge
bench_result audit "audit: writer / raw, median of blocks" "$4" "" 0.9 ge
set -- $(sed -n 's/^verify: plain read-back \([0-9.]*\) records\/s, verify \([0-9.]*\) records\/s, ratio \([0-9.]*\).*/\1 \2 \3/p' "$tmp/out")
[ $# -eq 3 ] || { echo "bench_audit: cannot read the verifier figures" >&2; exit 1; }
bench_result audit "audit: plain read-back records/s" "$1" /s
bench_result audit "audit: verify records/s" "$2" /s
bench_result audit "audit: verify / read-back" "$3" ""
