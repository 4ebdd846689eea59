#!/usr/bin/env bash
# Fault: journald stopped and restarted under a running masd. The records masd makes meanwhile
# (denials, an apply) are spooled in its state dir and written once journald is back: every one
# arrives, once, in order, and the chain verifies. Then a spool left by a masd killed while
# journald was down, corrupted at its tail, at the next start: reported, the intact records
# written, and the verifier sees exactly what was lost, no silent gap.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
permissions: { ai_access: [ai] }
roles: { agent: [ai_access] }
agents:
  w: { unit: mas-agent@w.service, role: agent }
YAML
W=mas-agent@w.service
mas_cgroup "$W"
mas_cgroup other
mas_start --policy "$T/policy.yaml" || exit 1
deny() { # ports...
	local p
	for p in "$@"; do
		probe_in "$W" connect tcp 127.0.21.1 "$p" >/dev/null
		sleep 0.05
	done
}
seqs_in_order() {
	journalctl -o export SYSLOG_IDENTIFIER=masd | grep -a '^MAS_SEAL=' | cut -d= -f2 |
		cut -d' ' -f1 >"$T/seqs"
	local n
	n=$(wc -l <"$T/seqs")
	seq 0 $((n - 1)) | cmp -s - "$T/seqs" && echo "$n"
}
denied_ports() {
	journalctl -t masd -o json | jq -r 'select(.MAS_VERDICT == "deny" and .MAS_AGENT == "w") | .MAS_PORT' | sort -n |
		uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' '
}

deny 9001 9002 9003
journal_sync
journald_stop # the socket stays; nobody reads it
deny 9004 9005 9006 9007 9008
"$MASCTL" policy apply "$T/policy.yaml" >/dev/null
sleep 1.5
check "masd keeps enforcing with journald down" \
	[ "$(probe_in other connect tcp 127.0.20.1 7000 | cut -d' ' -f1)" = denied ]
spooled=$(find "$T/state" -name spool -size +0 | head -n1)
check "records were spooled while journald was down ($spooled)" [ -n "$spooled" ]
"$JOURNALD_BIN" >/dev/null 2>&1 &
JOURNALD_PID=$!
for _ in $(seq 50); do [ -z "$(find "$T/state" -name spool -size +0)" ] && break; sleep 0.2; done
check "the spool drained" [ -z "$(find "$T/state" -name spool -size +0)" ]
journal_sync
got=$(denied_ports)
check "each denial arrived exactly once ($got)" \
	[ "$got" = "9001:1 9002:1 9003:1 9004:1 9005:1 9006:1 9007:1 9008:1 " ]
n=$(seqs_in_order)
check "every record once and in order ($n)" [ -n "$n" ]
"$MASCTL" --json audit verify --state-dir "$T/state" >"$T/v.json" 2>&1
rc=$?
check "the chain verifies (exit $rc)" [ $rc -eq 0 ]

echo "# a spool left by a masd killed while journald was down, its tail torn"
journald_stop
deny 9101 9102 9103 9104
sleep 0.3
mas_kill9
spool=$(find "$T/state" -name spool -size +0 | head -n1)
check "a spool is left behind ($spool)" [ -n "$spool" ]
if [ -n "$spool" ] && [ -z "${MAS_NO_CORRUPT:-}" ]; then
	size=$(stat -c %s "$spool")
	truncate -s $((size - 7)) "$spool"
	printf '\x00\xffgarbage' >>"$spool"
fi
"$JOURNALD_BIN" >/dev/null 2>&1 &
JOURNALD_PID=$!
mas_start --policy "$T/policy.yaml" || exit 1
sleep 1.5
journal_sync
reported=0
grep -qi spool "$T/masd.log" && reported=1
journalctl -t masd -o cat | grep -qi spool && reported=1
got=$(denied_ports)
echo "# denials in the journal: $got"
check "the intact spooled denials arrived" grep -q "9101:1 9102:1 9103:1" <<<"$got"
"$MASCTL" --json audit verify --state-dir "$T/state" >"$T/v2.json" 2>&1
rc=$?
echo "# verify exit $rc: $(jq -c '[.findings[]? | {kind, seq, count}]' "$T/v2.json" 2>/dev/null | head -c 400)"
# a torn spool must not pass unnoticed: masd reports it, or the verifier flags the chain
check "the torn spool is not silent (masd reported: $reported, verify exit $rc)" \
	[ "$reported" -eq 1 -o "$rc" -eq 4 ]
check "masd reports the damaged spool itself" [ "$reported" -eq 1 ]
check "masd enforces" [ "$(probe_in other connect tcp 127.0.20.1 7000 | cut -d' ' -f1)" = denied ]
mas_done
