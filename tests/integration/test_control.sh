#!/usr/bin/env bash
# The control socket and the policy life cycle: an invalid policy is refused with its
# position and changes nothing in the kernel; callers without a role are refused and audited;
# a read-only role reads but cannot apply; SIGHUP re-reads the file; exit codes per CONTRACT.md.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
  db: { cidrs: [127.0.20.2/32], ports: [5432], protected: true }
permissions:
  ai_access: [ai]
  read: [db]
roles:
  admin: [all]
  agent: [ai_access]
  viewer: [read]
agents:
  writer: { unit: mas-agent@writer.service, role: agent, user: nobody }
  other: { unit: mas-agent@other.service, role: agent }
control:
  admin: ["uid:0"]
  viewer: ["uid:65533"]
YAML
W=mas-agent@writer.service
mas_cgroup "$W"
mas_start --policy "$T/policy.yaml" --socket-mode 0666 || exit 1
chmod 0755 "$T" "$T/run"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
viewer() { setpriv --reuid=65533 --regid=65533 --clear-groups "$@"; }

echo "# an invalid policy changes nothing"
sed 's/ports: \[5432\]/ports: [70000]/' "$T/policy.yaml" >"$T/bad.yaml"
out=$("$MASCTL" policy apply "$T/bad.yaml" 2>&1)
rc=$?
check "apply of an invalid policy exits 3 ($rc)" [ $rc -eq 3 ]
check "the error names file:line:col, key, found and expected ($out)" \
	grep -qE "^$T/bad.yaml:[0-9]+:[0-9]+: destinations\.db\.ports.*found.*70000.*expected" <<<"$out"
out2=$("$MASCTL" policy validate "$T/bad.yaml" 2>&1)
rc=$?
check "validate says the same offline (exit $rc)" [ $rc -eq 3 -a "$out2" = "$out" ]
gen=$("$MASCTL" --json status | jq .generation)
check "the generation did not move ($gen)" [ "$gen" -eq 1 ]
expect "$W" allowed connect tcp 127.0.20.1 7000
expect "$W" denied connect tcp 127.0.20.2 5432

echo "# show and status"
"$MASCTL" --json policy show >"$T/show.json"
check "policy show returns the text in force" \
	[ "$(jq -r .policy "$T/show.json")" = "$(cat "$T/policy.yaml")" ]
check "policy show returns its generation" [ "$(jq .generation "$T/show.json")" -eq 1 ]
"$MASCTL" --json status >"$T/status.json"
check "status --json is one JSON document" jq -e '.daemon == "running"' "$T/status.json"
"$MASCTL" --json agents >"$T/agents.json"
check "agents --json lists the agent as enrolled" \
	jq -e '.[] | select(.agent == "writer") | .state == "enrolled"' "$T/agents.json"

echo "# who may call"
out=$(nobody "$MASCTL" status 2>&1)
rc=$?
check "a user with no role is refused (exit $rc: $out)" [ $rc -eq 1 ]
check "... with a clear message" grep -q "permission denied" <<<"$out"
out=$(nobody "$MASCTL" policy apply "$T/policy.yaml" 2>&1)
rc=$?
check "a user with no role cannot apply (exit $rc)" [ $rc -eq 1 ]
out=$(viewer "$MASCTL" agents 2>&1)
rc=$?
check "a read-only role reads (exit $rc)" [ $rc -eq 0 ]
out=$(viewer "$MASCTL" policy apply "$T/policy.yaml" 2>&1)
rc=$?
check "a read-only role cannot apply (exit $rc: $out)" [ $rc -eq 1 ]
out=$(viewer "$MASCTL" teardown 2>&1)
rc=$?
check "a read-only role cannot tear down (exit $rc)" [ $rc -eq 1 ]
check "enforcement is still there" [ -e "$BPFFS/link_connect4" ]
journal_sync
refused=$(awk '/MAS_MSGID_CONTROL_REFUSED /{gsub(/"/,"",$3); print $3}' "$HERE/daemon/msgid.h")
n=$(journalctl -t masd MESSAGE_ID="$refused" -o json |
	jq -c 'select(.MAS_CATEGORY == "authentication" and (.MAS_UID == "65534" or .MAS_UID == "65533"))' |
	wc -l)
check "every refused call is an authentication record ($n of 4)" [ "$n" -eq 4 ]

echo "# an agent's own user sees its own agent only"
nobody "$MASCTL" --json agents >"$T/self.json"
rc=$?
check "the agent's user may read agents (exit $rc)" [ $rc -eq 0 ]
check "... and sees only its own agent ($(jq -c '[.[].agent]' "$T/self.json"))" \
	[ "$(jq -c '[.[].agent]' "$T/self.json")" = '["writer"]' ]
out=$(nobody "$MASCTL" status 2>&1)
check "... but not the daemon's status ($out)" grep -q "permission denied" <<<"$out"

echo "# refused callers are rate-limited: burst 5, then refused outright"
for i in 1 2 3 4 5 6; do
	out=$(nobody "$MASCTL" policy show 2>&1)
done
check "the sixth quick refusal says it is rate-limited ($out)" \
	grep -q "too many refused requests from uid 65534: retry in" <<<"$out"
out=$(nobody "$MASCTL" agents 2>&1)
rc=$?
check "while rate-limited even an allowed read is refused (exit $rc)" [ $rc -eq 1 ]
out=$(viewer "$MASCTL" agents 2>&1)
check "other uids are not affected" [ $? -eq 0 ]
journal_sync
n=$(journalctl -t masd MESSAGE_ID="$refused" -o json |
	jq -c 'select(.MAS_UID == "65534" and .MAS_RATE_LIMITED == "1")' | wc -l)
check "the rate limiting is an authentication record, once ($n)" [ "$n" -eq 1 ]

echo "# reload"
sed -e 's/ai_access: \[ai\]/ai_access: [ai, db]/' "$T/policy.yaml" >"$T/next.yaml"
cp "$T/next.yaml" "$T/policy.yaml"
kill -HUP "$MASD_PID"
for _ in $(seq 50); do
	[ "$("$MASCTL" --json status | jq .generation)" -eq 2 ] && break
	sleep 0.1
done
expect "$W" allowed connect tcp 127.0.20.2 5432
echo "version: 7" >"$T/policy.yaml"
kill -HUP "$MASD_PID"
sleep 0.5
gen=$("$MASCTL" --json status | jq .generation)
check "a reload with an invalid file keeps the policy in force ($gen)" [ "$gen" -eq 2 ]
expect "$W" allowed connect tcp 127.0.20.2 5432
journal_sync
n=$(journalctl -t masd -o json | jq -c 'select(.MAS_ERROR != null and (.MAS_ERROR | test("version")))' | wc -l)
check "the refused reload is in the journal ($n)" [ "$n" -ge 1 ]

echo "# exit codes"
"$MASCTL" frobnicate >/dev/null 2>&1
check "unknown command exits 2 ($?)" [ $? -eq 2 ]
"$MASCTL" policy apply >/dev/null 2>&1
check "missing argument exits 2 ($?)" [ $? -eq 2 ]
MASD_SOCKET=$T/nowhere.sock "$MASCTL" status >/dev/null 2>"$T/err"
rc=$?
check "no daemon exits 1 ($rc)" [ $rc -eq 1 ]
check "... and names the socket" grep -q nowhere.sock "$T/err"
mas_done
