#!/usr/bin/env bash
# journald stopped while masd writes audit records, then started again: the records are spooled
# in the state dir, written later in order, and the chain verifies intact.
set -u
cd "$(dirname "$0")/../.."
B=$(realpath "${MASD_BUILD:-build}")
W=$B/tests/integration/audit_writer
M=$B/masctl
masctl_audit() { "$M" audit "$@"; }
V=masctl_audit

[ "$(id -u)" = 0 ] || { echo "skip: needs root for a private journald"; exit 77; }
[ -x "$W" ] && [ -x "$M" ] || { echo "missing test binaries (make all)"; exit 1; }
if [ -z "${MAS_IN_NS:-}" ]; then
	exec env MAS_IN_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. tests/lib/journald.sh
[ -x "$JOURNALD_BIN" ] || { echo "skip: no systemd-journald"; exit 77; }

tmp=$(mktemp -d /tmp/test_audit_spool.XXXXXX)
cleanup() {
	[ -n "${WPID:-}" ] && kill "$WPID" 2>/dev/null
	journald_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
journald_start || exit 1
S=$tmp/state

"$W" --state-dir "$S" --records 80 --interval-ms 25 --ckpt-records 10 --ckpt-seconds 1 \
	--drain-seconds 20 >"$tmp/writer.out" 2>&1 &
WPID=$!
sleep 0.6
journald_stop # the socket stays, nobody reads it: sends fail with ECONNREFUSED
sleep 1
[ -s "$S/audit/spool" ] || { echo "FAIL: nothing spooled while journald was down"; exit 1; }
"$JOURNALD_BIN" >/dev/null 2>&1 &
JOURNALD_PID=$!
wait "$WPID"
rc=$?
WPID=
cat "$tmp/writer.out"
[ $rc = 0 ] || { echo "FAIL: writer exit $rc"; exit 1; }
grep -q ' spooled=0 ' "$tmp/writer.out" || { echo "FAIL: spool not drained"; exit 1; }
grep -q 'max_spooled=[1-9]' "$tmp/writer.out" || { echo "FAIL: nothing was spooled"; exit 1; }
[ ! -e "$S/audit/spool" ] || { echo "FAIL: spool file left behind"; exit 1; }
journal_sync
"$V" --json verify --state-dir "$S" >"$tmp/v.json"
rc=$?
[ $rc = 0 ] || { cat "$tmp/v.json"; echo "FAIL: verify exit $rc"; exit 1; }
# every seq once, in order
journalctl -o export SYSLOG_IDENTIFIER=masd | grep -a '^MAS_SEAL=' | cut -d= -f2 | cut -d' ' -f1 \
	>"$tmp/seqs"
n=$(wc -l <"$tmp/seqs")
seq 0 $((n - 1)) | cmp -s - "$tmp/seqs" || { echo "FAIL: records out of order"; exit 1; }
echo "spool: $(grep -o 'max_spooled=[0-9]*' "$tmp/writer.out") records waited, $n in order, chain intact"
