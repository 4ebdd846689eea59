#!/usr/bin/env bash
# kill -9 at each step of a key change of the audit signing key (the writer's steps and those of
# its "audit" keyring), against a real private journald: each time the next start completes or
# drops the change, finds the crashed run's records in the journal, erases the old key, and the
# one chain through every crash, restart and further key change verifies with no finding.
set -u
cd "$(dirname "$0")/../.."
B=$(realpath "${MASD_BUILD:-build}")
W=$B/tests/integration/audit_writer
M=$B/masctl

[ "$(id -u)" = 0 ] || { echo "skip: needs root for a private journald"; exit 77; }
for x in "$W" "$M"; do
	[ -x "$x" ] || { echo "missing $x (make all)"; exit 1; }
done
if [ -z "${MAS_IN_NS:-}" ]; then
	exec env MAS_IN_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. tests/lib/journald.sh
[ -x "$JOURNALD_BIN" ] || { echo "skip: no systemd-journald"; exit 77; }

tmp=$(mktemp -d /tmp/test_audit_keycrash.XXXXXX)
cleanup() {
	journald_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
journald_start || exit 1
S=$tmp/state
fails=0
runs=1

die() {
	echo "FAIL: $*"
	exit 1
}

# The keyring's steps come from keys.c, the writer's from audit.c (key_change).
steps="create:secret create:state flush:audited audit:checkpoint audit:history audit:record
	audit:switched promote:state flush:audited#2 destroy:state flush:wiped"

"$W" --state-dir "$S" --records 10 --ckpt-records 4 >/dev/null || die "first run"
for step in $steps; do
	"$W" --state-dir "$S" --records 6 --ckpt-records 4 --rotate-every 5 --crash-at "$step" \
		>/dev/null
	rc=$?
	[ $rc = 0 ] || die "$step: the writer did not stop there (exit $rc)"
	"$W" --state-dir "$S" --records 6 --ckpt-records 4 --rotate-every 3 >/dev/null ||
		die "$step: the run after the crash"
	runs=$((runs + 2))
	n=$(find "$S/keys/audit" -name '*.secret' | wc -l)
	if [ "$n" != 1 ]; then
		echo "FAIL: $step: $n audit key secrets on disk after the next run, want 1"
		fails=$((fails + 1))
	fi
	journal_sync
	"$M" --json audit verify --state-dir "$S" >"$tmp/v.json"
	rc=$?
	if [ $rc != 0 ] || [ "$(jq .runs "$tmp/v.json")" != $runs ]; then
		echo "FAIL: crash at $step: verify exit $rc, runs $(jq .runs "$tmp/v.json") want $runs:"
		jq -c '.findings' "$tmp/v.json"
		fails=$((fails + 1))
	else
		echo "ok - crash at $step: completed or dropped, old key erased, chain verifies" \
			"($(jq .key_changes "$tmp/v.json") key changes so far)"
	fi
done
grep -q "^key_index=" "$S/audit/state" || die "no key index in the chain state"
[ ! -e "$S/audit/key" ] || die "a signing key outside the keyring: $S/audit/key"
echo "$(echo $steps | wc -w) crash points, $fails failed"
[ $fails = 0 ]
