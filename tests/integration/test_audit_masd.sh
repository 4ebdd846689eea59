#!/usr/bin/env bash
# masd's own audit trail: started, applied, its signing key rotated by hand (the "audit" keyring),
# killed -9, restarted, stopped — the journal verifies clean with `masctl audit verify` against
# the state dir's pinned key, and an edit is caught.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"
M=$BUILD/masctl
masctl_audit() { "$M" audit "$@"; }
V=masctl_audit
TAMPER=$BUILD/tests/integration/audit_tamper
[ -x "$M" ] || mas_skip "no $M (build first)"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  auth: { cidrs: [127.0.20.3/32], ports: [8080] }
permissions: { login: [auth] }
roles: { admin: [all], agent: [login] }
agents:
  writer: { unit: mas-agent@writer.service, role: agent }
control:
  admin: ["uid:0"]
YAML
mas_cgroup mas-agent@writer.service
mas_start --policy "$T/policy.yaml" || exit 1
"$MASCTL" policy apply "$T/policy.yaml" >/dev/null
kid1=$("$MASCTL" --json keys list | jq -r '.keys[] | select(.name == "audit") | .active_kid')
check "keys list shows masd's audit signing keyring ($kid1)" [ ${#kid1} -eq 16 ]
check "its secret is in the state dir, 0600" \
	[ "$(stat -c %a "$T/state/keys/audit/$kid1.secret" 2>&1)" = 600 ]
"$MASCTL" keys rotate audit >/dev/null
rc=$?
kid2=$("$MASCTL" --json keys list | jq -r '.keys[] | select(.name == "audit") | .active_kid')
check "masctl keys rotate audit turns the signing key over (exit $rc, $kid1 -> $kid2)" \
	[ $rc -eq 0 -a ${#kid2} -eq 16 -a "$kid1" != "$kid2" ]
check "the previous signing key is erased from disk" [ ! -e "$T/state/keys/audit/$kid1.secret" ]
check "nothing of the audit key is delivered" [ ! -e "$T/run/keys/.public/audit.$kid2.pub" ]
mas_kill9
mas_start --policy "$T/policy.yaml" || exit 1
"$MASCTL" policy apply "$T/policy.yaml" >/dev/null
mas_stop
journal_sync

check "the pinned key is in the state dir" [ -s "$T/state/audit/first.pub" ]
"$V" --json verify --state-dir "$T/state" >"$T/v.json"
rc=$?
check "masd's trail verifies clean across kill -9 and restart (exit $rc: $(jq -c '[.findings[].kind]' "$T/v.json"))" [ $rc -eq 0 ]
check "two runs of masd in the chain" [ "$(jq .runs "$T/v.json")" -eq 2 ]
check "one key change in it" [ "$(jq .key_changes "$T/v.json")" -eq 1 ]
check "it ends in a clean-shutdown checkpoint, sealed" \
	[ "$(jq .sealed_seq "$T/v.json")" = "$(jq .last_seq "$T/v.json")" ]
journalctl -o export SYSLOG_IDENTIFIER=masd >"$T/masd.export"
n=$(grep -a -c '^MAS_SEAL=' "$T/masd.export")
check "every masd record carries the seal ($n)" \
	[ "$n" -ge 5 -a "$n" -eq "$(grep -a -c '^MAS_CATEGORY=' "$T/masd.export")" ]
seq=$("$TAMPER" list <"$T/masd.export" | awk '$2 == "98d9d89b603a5d83afc8b9b46bf1361a" {print $1; exit}')
"$TAMPER" modify "$seq" <"$T/masd.export" >"$T/t.export"
"$V" --json verify --state-dir "$T/state" --file "$T/t.export" >"$T/t.json"
rc=$?
check "an edited 'masd started' record is caught at its seq $seq (exit $rc)" \
	[ $rc -eq 4 -a "$(jq .first_bad_seq "$T/t.json")" = "$seq" ]
mas_done
