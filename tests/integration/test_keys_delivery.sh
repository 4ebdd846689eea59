#!/usr/bin/env bash
# Delivery isolation: each agent's keys are 0400 files owned by its service user, in a directory
# no other agent can enter; reading them as another uid fails with EACCES.
set -u
. "$(dirname "$0")/keys_lib.sh"
keys_setup
keys_user mas-kt-alpha
keys_user mas-kt-beta
A=$(uidgid mas-kt-alpha)
B=$(uidgid mas-kt-beta)
NOBODY=65534:65534

drv() {
	"$DRIVER" --state "$STATE" --runtime "$RUN" \
		--agent alpha:mas-kt-alpha --agent beta:mas-kt-beta --agent nouser \
		--key jwt:hs256:2592000:604800:alpha \
		--key storage:aes-256-gcm:7776000:0:beta \
		--key sign:ed25519:86400:3600:alpha,beta \
		--key shared:hs256:0:0:nouser \
		"$@"
}

drv tick $T0 || fail "tick"
ad=$RUN/keys/alpha
bd=$RUN/keys/beta
nd=$RUN/keys/nouser

# layout and modes
jwtfile=$(readlink "$ad/jwt.current") || fail "no jwt.current"
[ -f "$ad/$jwtfile" ] || fail "current points nowhere"
[ "$(stat -c %a "$RUN/keys")" = 711 ] || fail "RUNTIME/keys mode $(stat -c %a "$RUN/keys")"
for f in "$ad"/*.key "$ad"/*.pub "$ad"/index.json; do
	[ "$(stat -c '%a %U' "$f")" = "400 mas-kt-alpha" ] || fail "$f: $(stat -c '%a %U' "$f")"
done
for f in "$bd"/*.key "$bd"/index.json; do
	[ "$(stat -c '%a %U' "$f")" = "400 mas-kt-beta" ] || fail "$f: $(stat -c '%a %U' "$f")"
done
[ "$(stat -c '%a %U %G' "$ad")" = "750 root mas-kt-alpha" ] || fail "alpha dir $(stat -c '%a %U %G' "$ad")"
[ "$(stat -c '%a %U %G' "$nd")" = "700 root root" ] || fail "nouser dir $(stat -c '%a %U %G' "$nd")"
[ "$(stat -c '%a %U' "$nd"/shared.*.key)" = "400 root" ] || fail "nouser key not root-only"
ls "$bd" | grep -q '^jwt\.' && fail "beta got alpha's jwt"
ls "$ad" | grep -q '^storage\.' && fail "alpha got beta's storage key"
grep -q 'root-only' "$MAS_KEYS_AUDIT_LOG" || fail "no root-only delivery record for nouser"
grep -q '^1543b8dfccf9508c9c5cf8b8387baaf0 .*MAS_AGENT=alpha' "$MAS_KEYS_AUDIT_LOG" ||
	fail "no delivery record for alpha"
# the index never carries material
secret=$(cat "$ad/$jwtfile")
grep -qF "$secret" "$ad/index.json" && fail "index.json holds the secret"
grep -q '"kid":' "$ad/index.json" || fail "index.json has no kid"

# positive controls: each agent reads its own keys
"$DRIVER" --as "$A" read "$ad/$jwtfile" >/dev/null || fail "alpha cannot read its own key"
"$DRIVER" --as "$A" read "$ad/jwt.current" >/dev/null || fail "alpha cannot read jwt.current"
"$DRIVER" --as "$A" read "$ad/index.json" >/dev/null || fail "alpha cannot read its index"
"$DRIVER" --as "$A" listdir "$ad" >/dev/null || fail "alpha cannot list its dir"
"$DRIVER" --as "$B" read "$bd/index.json" >/dev/null || fail "beta cannot read its index"

# negative: another agent, and an unrelated uid, get EACCES
expect_eacces() { # AS CMD PATH
	local out rc
	out=$("$DRIVER" --as "$1" "$2" "$3")
	rc=$?
	[ $rc -eq 3 ] || fail "as $1: $2 $3 gave '$out' (rc $rc), expected EACCES"
	echo "as $1: $2 $3: $out (expected)"
}
expect_eacces "$B" read "$ad/$jwtfile"
expect_eacces "$B" read "$ad/jwt.current"
expect_eacces "$B" read "$ad/index.json"
expect_eacces "$B" listdir "$ad"
expect_eacces "$A" read "$bd/index.json"
expect_eacces "$A" read "$(ls -d "$bd"/storage.*.key)"
expect_eacces "$NOBODY" read "$ad/$jwtfile"
expect_eacces "$NOBODY" listdir "$RUN/keys"
expect_eacces "$A" read "$(ls -d "$nd"/shared.*.key)"
expect_eacces "$A" listdir "$STATE/keys"
expect_eacces "$A" read "$(ls -d "$STATE"/keys/jwt/*.secret | head -1)"
# a file in the agent's own directory cannot be planted by the agent (root-owned dir)
out=$(setpriv --reuid="${A%%:*}" --regid="${A##*:}" --clear-groups \
	sh -c "ln -s /etc/shadow '$ad/index.json.tmp.1' 2>&1") && fail "alpha planted a symlink: $out"

# shared ed25519 key: both agents get their own copy, each only readable by its owner
sa=$(readlink "$ad/sign.current")
[ -f "$bd/$sa" ] || fail "beta lacks the shared signing key"
expect_eacces "$A" read "$bd/$sa"
grep -q 'BEGIN PRIVATE KEY' "$ad/$sa" || fail "ed25519 key is not PKCS#8 PEM"
grep -q 'BEGIN PUBLIC KEY' "$ad/${sa%.key}.pub" || fail "no public key PEM"
if command -v openssl >/dev/null; then
	openssl pkey -in "$ad/$sa" -pubout 2>/dev/null | cmp -s - "$ad/${sa%.key}.pub" ||
		fail "public key does not match the private key"
fi

# public keys of Ed25519 keyrings are world-readable, so that any agent can verify a signature
pd=$RUN/keys/.public
"$DRIVER" --as "$B" read "$pd/${sa%.key}.pub" >/dev/null || fail "beta cannot read the public key"
"$DRIVER" --as "$NOBODY" read "$pd/index.json" >/dev/null || fail "public index not readable"
cmp -s "$pd/${sa%.key}.pub" "$ad/${sa%.key}.pub" || fail "public copy differs"
grep -rq PRIVATE "$pd" && fail "private material in .public"
[ "$(stat -c '%a %U' "$pd/${sa%.key}.pub")" = "444 root" ] || fail "public key mode"
if command -v python3 >/dev/null; then
	for f in "$ad/index.json" "$pd/index.json"; do
		python3 -m json.tool "$f" >/dev/null || fail "$f is not valid JSON"
	done
	drv list $T0 json | python3 -m json.tool >/dev/null || fail "keys list --json is not JSON"
fi

# the runtime dir is a tmpfs: wiped at reboot, delivered again on open (and audited)
rm -rf "$RUN/keys"
drv check $((T0 + 60)) || fail "redelivery after runtime wipe"
[ "$(stat -c '%a %U' "$ad/$jwtfile")" = "400 mas-kt-alpha" ] || fail "redelivered mode"
grep -q 'MAS_KEY_REASON=redelivery' "$MAS_KEYS_AUDIT_LOG" || fail "redelivery not audited"

# an agent removed from deliver_to loses its copies
"$DRIVER" --state "$STATE" --runtime "$RUN" \
	--agent alpha:mas-kt-alpha --agent beta:mas-kt-beta --agent nouser \
	--key jwt:hs256:2592000:604800:alpha \
	--key storage:aes-256-gcm:7776000:0:beta \
	--key sign:ed25519:86400:3600:alpha \
	--key shared:hs256:0:0:nouser check $((T0 + 120)) || fail "check after deliver_to change"
ls "$bd" | grep -q '^sign\.' && fail "beta still has the signing key after removal"
echo "delivery isolation ok"
