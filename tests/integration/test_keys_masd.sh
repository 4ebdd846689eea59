#!/usr/bin/env bash
# Keys through masd: the policy's keyrings are created at apply and delivered to the agent's
# user only, `masctl keys rotate` turns them over (admin only), every change is an audit
# record, and a restarted masd carries the same versions on.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  auth: { cidrs: [127.0.20.3/32], ports: [8080] }
permissions: { login: [auth] }
roles: { admin: [all], agent: [login], viewer: [] }
agents:
  writer: { unit: mas-agent@writer.service, role: agent, user: nobody }
control:
  admin: ["uid:0"]
  viewer: ["uid:65533"]
keys:
  jwt: { type: hs256, rotate_every: 30d, keep_previous_for: 7d, deliver_to: [writer] }
YAML
mas_cgroup mas-agent@writer.service
mas_start --policy "$T/policy.yaml" --socket-mode 0666 || exit 1
chmod 0755 "$T" "$T/run"

"$MASCTL" --json keys list >"$T/k1.json"
kid1=$(jq -r '.. | objects | select(.name? == "jwt") | .active_kid' "$T/k1.json" | head -1)
check "keys list shows the jwt keyring with an active version ($kid1)" [ ${#kid1} -eq 16 ]
f=$T/run/keys/writer/jwt.$kid1.key
check "the version is delivered to the agent's directory" [ -f "$f" ]
check "... owned by the agent's user, mode 0400 ($(stat -c '%U %a' "$f"))" \
	[ "$(stat -c '%U %a' "$f")" = "nobody 400" ]
out=$(setpriv --reuid=65533 --regid=65533 --clear-groups cat "$f" 2>&1)
check "another uid cannot read it ($out)" grep -q "Permission denied" <<<"$out"
check "the agent's user can" setpriv --reuid=65534 --regid=65534 --clear-groups cat "$f"

out=$(setpriv --reuid=65533 --regid=65533 --clear-groups "$MASCTL" keys rotate jwt --now 2>&1)
rc=$?
check "a read-only role cannot rotate (exit $rc)" [ $rc -eq 1 ]
"$MASCTL" keys rotate jwt --now >/dev/null
rc=$?
check "an admin rotates on demand (exit $rc)" [ $rc -eq 0 ]
kid2=$("$MASCTL" --json keys list | jq -r '.. | objects | select(.name? == "jwt") | .active_kid' | head -1)
check "a new version is active ($kid1 -> $kid2)" [ ${#kid2} -eq 16 -a "$kid1" != "$kid2" ]
check "the previous version stays delivered for verification" [ -f "$f" ]
"$MASCTL" keys rotate nosuchkey >"$T/err" 2>&1
check "an unknown key is refused ($?)" [ $? -eq 1 ]

journal_sync
rotated=$(awk '/MAS_MSGID_KEY_ROTATED /{gsub(/"/,"",$3); print $3}' "$HERE/daemon/msgid.h")
n=$(journalctl -t masd MESSAGE_ID="$rotated" -o json |
	jq -c --arg k "$kid2" 'select(.MAS_KEY_NAME == "jwt" and .MAS_CATEGORY == "data_changes"
		and (.MAS_KEY_NEW_KID == $k or .MAS_KEY_KID == $k))' | wc -l)
check "the rotation is a data_changes record naming the new kid ($n)" [ "$n" -ge 1 ]
n=$(journalctl -t masd -o export | grep -c "$(base64 -w0 <"$f" | head -c 24)")
check "no record carries key material ($n)" [ "$n" -eq 0 ]

mas_kill9
mas_start --policy "$T/policy.yaml" --socket-mode 0666 || exit 1
kid3=$("$MASCTL" --json keys list | jq -r '.. | objects | select(.name? == "jwt") | .active_kid' | head -1)
check "a restarted masd carries the same active version ($kid3)" [ "$kid3" = "$kid2" ]
check "keys list shows the audit signing keyring beside the policy's" \
	[ "$("$MASCTL" --json keys list | jq -r '[.keys[].name] | sort | join(",")')" = audit,jwt ]
sed 's/^  jwt:/  audit:/' "$T/policy.yaml" >"$T/audit-name.yaml"
out=$("$MASCTL" policy apply "$T/audit-name.yaml" 2>&1)
check "a policy key named 'audit' is refused ($out)" grep -q "audit signing key" <<<"$out"
mas_done
