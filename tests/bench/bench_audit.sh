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
tmp=$(mktemp -d /tmp/bench_audit.XXXXXX)
trap 'journald_stop; rm -rf "$tmp"' EXIT
journald_start || exit 1
"$B/tests/bench/audit_bench" "$tmp/state" "${2:-500}" "${3:-40}"
