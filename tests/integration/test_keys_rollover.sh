#!/usr/bin/env bash
# Rollover windows with a real delivered key: a JWT (HS256, OpenSSL HMAC) signed by the agent
# with the previous key still verifies inside keep_previous_for and fails after it; a new
# version is delivered (verify-only) an hour before it signs anything.
set -u
. "$(dirname "$0")/keys_lib.sh"
keys_setup
keys_user mas-kt-gamma
G=$(uidgid mas-kt-gamma)
LEAD=3600
ROT=$((30 * DAY))
KEEP=$((7 * DAY))

drv() {
	"$DRIVER" --state "$STATE" --runtime "$RUN" --lead $LEAD --agent gamma:mas-kt-gamma \
		--key jwt:hs256:$ROT:$KEEP:gamma "$@"
}
D=$RUN/keys/gamma
sign() { "$DRIVER" --as "$G" jwt-sign "$D" jwt "$1"; }
verify() { "$DRIVER" --as "$G" jwt-verify "$D" jwt "$1" 0; }
ok() { verify "$1" >/dev/null || fail "$2: token should verify ($(verify "$1"))"; }
bad() { verify "$1" >/dev/null && fail "$2: token should NOT verify"; true; }

drv tick $T0 >/dev/null || fail "first tick"
tok1=$(sign $T0) || fail "sign 1"
ok "$tok1" "fresh token"
kid1=$(readlink "$D/jwt.current")

# forgeries: payload changed, signature of another key, alg none
hdr=${tok1%%.*}
rest=${tok1#*.}
sig=${rest#*.}
forged_payload=$(printf '{"sub":"admin","iat":%s,"exp":%s}' $T0 $((T0 + 1800)) | base64 -w0 | tr '+/' '-_' | tr -d '=')
bad "$hdr.$forged_payload.$sig" "modified payload"
none_hdr=$(printf '{"alg":"none","typ":"JWT","kid":"%s"}' "${kid1:4:16}" | base64 -w0 | tr '+/' '-_' | tr -d '=')
bad "$none_hdr.${rest%%.*}." "alg none"

# one second before the lead: nothing new
drv tick $((T0 + ROT - LEAD - 1)) | grep -q '^tick 0' || fail "early tick did something"
# lead: a pending version is delivered (verify-only), jwt.current still the old one
drv tick $((T0 + ROT - LEAD)) | grep -q '^tick 1' || fail "pending not created"
[ "$(readlink "$D/jwt.current")" = "$kid1" ] || fail "current moved before activation"
[ "$(ls "$D"/jwt.*.key | wc -l)" = 2 ] || fail "pending version not delivered"
grep -q '"state":"pending"' "$D/index.json" || fail "index does not show the pending version"
ok "$tok1" "old token during lead"

# activation: new tokens use the new kid, the old token still verifies
drv tick $((T0 + ROT)) | grep -q '^tick 1' || fail "activation"
kid2=$(readlink "$D/jwt.current")
[ "$kid2" != "$kid1" ] || fail "current did not move"
grep -q '"state":"retiring"' "$D/index.json" || fail "index does not show the retiring version"
tok2=$(sign $((T0 + ROT))) || fail "sign 2"
ok "$tok2" "new token"
ok "$tok1" "old token right after rotation"

# keep_previous_for window edges: valid at end-1, gone at end
END=$((T0 + ROT + KEEP))
drv tick $((END - 1)) | grep -q '^tick 0' || fail "tick at end-1 did something"
ok "$tok1" "old token at the last second of the window"
drv tick $END | grep -q '^tick 1' || fail "destroy at window end"
bad "$tok1" "old token after the window"
verify "$tok1" | grep -q 'unknown kid' || fail "old kid should be unknown"
ok "$tok2" "new token after the window"
[ ! -e "$D/$kid1" ] || fail "destroyed key still delivered"
[ -z "$(ls "$STATE"/keys/jwt/ | grep "${kid1:4:16}")" ] || fail "destroyed secret still on disk"
grep -q "^1d041ed264b05e5db218ca36bef8dd59 .*MAS_KEY_OLD_KID=${kid1:4:16}" "$MAS_KEYS_AUDIT_LOG" ||
	fail "destruction not audited"
grep -q "^added1deaff5511baaec877afb139ef6 .*MAS_KEY_OLD_KID=${kid1:4:16} MAS_KEY_NEW_KID=${kid2:4:16}" \
	"$MAS_KEYS_AUDIT_LOG" || fail "rotation not audited with old and new kid"

# on demand, as masctl keys rotate jwt does it
out=$(drv rotate jwt $((END + 10)))
[ "$out" = "rotate ok" ] || fail "rotate: $out"
[ "$(drv rotate jwt $((END + 11)))" = "rotate Device or resource busy" ] || fail "second rotate not refused"
drv list $((END + 12)) | grep -q 'pending' || fail "list does not show the pending version"
drv list $((END + 12)) json | grep -q '"overdue":false' || fail "list --json"

# downtime: masd off for 100 days, catch-up rotation with one overdue warning and no burst
drv tick $((END + 10 + LEAD)) >/dev/null
drv list $((END + 100 * DAY)) | grep -q OVERDUE || fail "overdue not shown"
# (the tick destroys the version retired 100 days ago and creates exactly one pending version)
drv tick $((END + 100 * DAY)) | grep -q '^tick 2' || fail "catch-up tick"
drv check $((END + 100 * DAY)) | grep -Eq '^jwt active=[0-9a-f]{16} pending=[0-9a-f]{16}$' ||
	fail "catch-up: expected one active and one pending version: $(drv check $((END + 100 * DAY)))"
grep -q '^ae91c1181e445394997317dadb9c5086 ' "$MAS_KEYS_AUDIT_LOG" || fail "no overdue record"
echo "rollover ok"
