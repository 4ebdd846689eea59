#!/usr/bin/env bash
# The audit trail against a real (private) journald: several runs of a real writer with key
# changes, a crash and restarts verify clean from the live journal, a journal directory and an
# export; then a tamper corpus built from the export, and a record injected by another process,
# are each caught with the right finding and the right first bad sequence number.
set -u
cd "$(dirname "$0")/../.."
B=$(realpath "${MASD_BUILD:-build}")
W=$B/tests/integration/audit_writer
T=$B/tests/integration/audit_tamper
M=$B/masctl
masctl_audit() { "$M" audit "$@"; }
V=masctl_audit

[ "$(id -u)" = 0 ] || { echo "skip: needs root for a private journald"; exit 77; }
for x in "$W" "$T" "$M"; do
	[ -x "$x" ] || { echo "missing $x (make all)"; exit 1; }
done
if [ -z "${MAS_IN_NS:-}" ]; then
	exec env MAS_IN_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. tests/lib/journald.sh
[ -x "$JOURNALD_BIN" ] || { echo "skip: no systemd-journald"; exit 77; }

tmp=$(mktemp -d /tmp/test_audit_journal.XXXXXX)
cleanup() {
	journald_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
journald_start || exit 1
S=$tmp/state
fails=0
cases=0

die() {
	echo "FAIL: $*"
	exit 1
}

# 1. Clean runs: key changes, a crash, restarts.
"$W" --state-dir "$S" --records 120 --ckpt-records 16 --ckpt-seconds 1 --rotate-every 50 \
	--keep-retired "$tmp/retired.key" >/dev/null || die "writer run 1"
"$W" --state-dir "$S" --records 40 --ckpt-records 16 --ckpt-seconds 1 --rotate-every 30 \
	>/dev/null || die "writer run 2"
"$W" --state-dir "$S" --records 25 --ckpt-records 16 --ckpt-seconds 1 --crash >/dev/null ||
	die "writer run 3 (crash)"
# no journal_sync here: the next start must find the crashed run's records by itself
"$W" --state-dir "$S" --records 30 --ckpt-records 16 --ckpt-seconds 1 >/dev/null ||
	die "writer run 4"
journal_sync

[ "$("$V" pubkey --state-dir "$S")" = "$(cat "$S/audit/first.pub")" ] || die "pubkey"
cp "$S/audit/first.pub" "$tmp/old.pub"
"$V" verify --state-dir "$S" >"$tmp/live.txt"
rc=$?
[ $rc = 0 ] || { cat "$tmp/live.txt"; die "live journal: exit $rc, want 0"; }
grep -q "runs" "$tmp/live.txt" || die "live report"
journalctl -o export SYSLOG_IDENTIFIER=masd >"$tmp/clean.export" || die "export"
"$V" --json verify --pubkey "$S/audit/first.pub" --file "$tmp/clean.export" >"$tmp/clean.json"
rc=$?
[ $rc = 0 ] || { cat "$tmp/clean.json"; die "clean export: exit $rc, want 0"; }
[ "$(jq '[.findings[] | select(.tampering)] | length' "$tmp/clean.json")" = 0 ] ||
	die "clean export has findings"
[ "$(jq .key_changes "$tmp/clean.json")" = 3 ] || die "want 3 key changes"
[ "$(jq .runs "$tmp/clean.json")" = 4 ] || die "want 4 runs"
# the run after the crash found the crashed run's records in the journal and linked to them
grep -a -q '^MAS_REASON=crash$' "$tmp/clean.export" || die "no start record after the crash"
grep -a -q '^MAS_RECOVERED=[1-9]' "$tmp/clean.export" || die "crashed run's tail not recovered"
journal_flush
"$V" verify --state-dir "$S" --directory /var/log/journal >"$tmp/dir.txt" ||
	{ cat "$tmp/dir.txt"; die "journal directory: want 0"; }
echo "clean: live journal, directory and export verify with no finding"

# 2. The tamper corpus.
"$T" list <"$tmp/clean.export" >"$tmp/list" || die "audit_tamper list"
last=$(tail -n1 "$tmp/list" | cut -d' ' -f1)
kc=$(awk '$2 == "44999778e5ce55cb834e41ebed5ae7b7" {print $1}' "$tmp/list")
kc1=$(echo "$kc" | head -n1)
ckpts=$(awk '$2 == "ceb3ac4182c65890a6543be716b9b837" {print $1}' "$tmp/list")
later=$(($(date +%s%6N) + 3600000000))

check() { # file kind seq [verify options...]
	local f=$1 kind=$2 seq=$3 rc
	shift 3
	cases=$((cases + 1))
	"$V" --json verify --pubkey "$S/audit/first.pub" --file "$f" "$@" >"$tmp/out.json"
	rc=$?
	if [ $rc != 4 ] ||
		[ "$(jq -r .first_bad_seq "$tmp/out.json")" != "$seq" ] ||
		! jq -e --arg k "$kind" --argjson s "$seq" \
			'.findings[] | select(.kind == $k and .seq == $s)' "$tmp/out.json" >/dev/null; then
		echo "MISSED: $kind at $seq (exit $rc): $(cat "$tmp/out.json")"
		fails=$((fails + 1))
	fi
}

reason_of() { awk -v s="$1" '$1 == s {print $3}' "$tmp/list"; }

for seq in $(seq 0 3 "$last") "$last"; do
	for op in modify delete duplicate swap; do
		[ $op = swap ] && [ "$seq" = "$last" ] && continue
		"$T" $op "$seq" <"$tmp/clean.export" >"$tmp/t.export" || die "tamper $op $seq"
		case $op in
		modify) check "$tmp/t.export" modified "$seq" ;;
		delete)
			if [ "$seq" = 0 ]; then
				check "$tmp/t.export" short-history 0 --retention-days 90
			elif [ "$seq" = "$last" ]; then
				check "$tmp/t.export" truncated "$seq" --now "$later"
			else
				check "$tmp/t.export" deleted "$seq"
			fi
			;;
		duplicate) check "$tmp/t.export" duplicated "$seq" ;;
		swap) check "$tmp/t.export" reordered "$seq" ;;
		esac
	done
	# a truncated tail (not right after a clean shutdown: that looks like masd stopped)
	if [ "$seq" -gt 0 ] && [ "$(reason_of $((seq - 1)))" != shutdown ]; then
		"$T" truncate "$seq" <"$tmp/clean.export" >"$tmp/t.export"
		check "$tmp/t.export" truncated "$seq" --now "$later"
	fi
done
# a truncated export file: cut inside the last entry
head -c -20 "$tmp/clean.export" >"$tmp/t.export"
check "$tmp/t.export" truncated "$last"
for seq in $ckpts; do
	"$T" resign "$seq" random <"$tmp/clean.export" >"$tmp/t.export"
	check "$tmp/t.export" forged-checkpoint "$seq"
	if [ "$seq" -gt "$kc1" ]; then
		"$T" resign "$seq" "$tmp/retired.key" <"$tmp/clean.export" >"$tmp/t.export"
		check "$tmp/t.export" retired-key "$seq"
	fi
done
for seq in $kc; do
	"$T" foreign-key "$seq" <"$tmp/clean.export" >"$tmp/t.export"
	check "$tmp/t.export" foreign-key "$seq"
done

# 3. Injection: the same record sent again by another process, through journald itself.
# Newest first, so that each new injection is the first bad record.
for seq in "$last" $((last / 2)) 5; do
	"$W" --inject "$tmp/clean.export" --seq "$seq" || die "inject"
	journal_sync
	journalctl -o export SYSLOG_IDENTIFIER=masd >"$tmp/inj.export"
	check "$tmp/inj.export" injected "$seq"
done
# 4. A lost state dir: the next start says so loudly and starts a new chain.
rm -rf "$S"
"$W" --state-dir "$S" --records 3 >/dev/null || die "writer after state loss"
journal_sync
journalctl -o export SYSLOG_IDENTIFIER=masd MESSAGE_ID=74ea6e4f4296518a8ffc34208415de41 \
	>"$tmp/nc.export"
grep -a -q '^MAS_REASON=state-lost$' "$tmp/nc.export" || die "state loss not loud"
grep -a -q '^PRIORITY=2$' "$tmp/nc.export" || die "state loss not critical"
grep -a -q '^MAS_LOST_CHAIN_ID=' "$tmp/nc.export" || die "state loss does not name the old chain"
"$V" --json verify --state-dir "$S" >"$tmp/nc.json"
[ $? = 4 ] && jq -e '.findings[] | select(.kind == "foreign-chain")' "$tmp/nc.json" >/dev/null ||
	{ echo "MISSED: old chain not reported under the new key"; fails=$((fails + 1)); }
"$V" verify --pubkey "$tmp/old.pub" >/dev/null 2>&1
[ $? = 4 ] || { echo "MISSED: live journal with injected records"; fails=$((fails + 1)); }
echo "corpus: $cases cases, $fails missed"
[ $fails = 0 ]
