#!/usr/bin/env bash
# kill -9 at every step of a rotation (first version, new pending version, activation,
# destruction): after a restart the keyring is in the old or the new state, never torn;
# reconciliation removes orphans, completes deliveries and re-emits missing audit records.
# Then kill -9 at random moments of a long run of rotations, twenty times.
set -u
. "$(dirname "$0")/keys_lib.sh"
keys_setup
keys_user mas-kt-alpha
keys_user mas-kt-beta
ROT=$((30 * DAY))
KEEP=$((7 * DAY))
LEAD=3600
H='[0-9a-f]{16}'

drv() {
	"$DRIVER" --state "$STATE" --runtime "$RUN" --lead $LEAD \
		--agent alpha:mas-kt-alpha --agent beta:mas-kt-beta \
		--key jwt:hs256:$ROT:$KEEP:alpha,beta \
		--key churn:ed25519:$DAY:0:alpha "$@"
}
jwt_line() { drv check "$1" | grep '^jwt'; }
kid_of() { # STATE-NAME LINE
	echo "$2" | grep -Eo "$1=$H" | cut -d= -f2
}

results=()
# scenario NAME OP_TIME STEP EXPECT(old|new) OLD_REGEX NEW_REGEX AUDIT_MSGID
scenario() {
	local name=$1 t=$2 step=$3 expect=$4 old_re=$5 new_re=$6 msgid=$7 out rc after got
	rm -rf "$STATE" "$RUN/keys" "$MAS_KEYS_AUDIT_LOG"
	prepare "$name"
	old_re=${old_re//@K1@/$K1}
	old_re=${old_re//@K2@/$K2}
	new_re=${new_re//@K1@/$K1}
	new_re=${new_re//@K2@/$K2}
	out=$(MAS_KEYS_CRASH_AT=$step drv tick "$t" 2>&1)
	rc=$?
	[ $rc -eq 137 ] || fail "$name/$step: driver was not killed at the step (rc $rc: $out)"
	# restart: reconcile, then check the disk agrees with itself
	after=$(drv check "$t") || fail "$name/$step: inconsistent after restart:
$after"
	after=$(echo "$after" | grep '^jwt')
	if echo "$after" | grep -Eq "^$old_re\$"; then
		got=old
	elif echo "$after" | grep -Eq "^$new_re\$"; then
		got=new
	else
		fail "$name/$step: torn state: '$after' (old /$old_re/, new /$new_re/)"
	fi
	[ "$got" = "$expect" ] || fail "$name/$step: state is $got, expected $expect"
	if [ "$got" = new ] && [ -n "$msgid" ]; then
		grep -q "^$msgid " "$MAS_KEYS_AUDIT_LOG" || fail "$name/$step: audit record missing"
	fi
	# and the keyring carries on: the same tick completes the step
	drv tick "$t" >/dev/null || fail "$name/$step: tick after restart"
	drv check "$t" | grep -Eq "^$new_re\$" || fail "$name/$step: did not reach the new state"
	drv check "$t" >/dev/null || fail "$name/$step: inconsistent after completing"
	results+=("$(printf '%-8s kill at %-14s -> %s state, consistent, completed on restart' \
		"$name" "$step" "$got")")
}

prepare() {
	case $1 in
	initial) ;;
	create) drv tick $T0 >/dev/null ;;
	promote)
		drv tick $T0 >/dev/null
		drv tick $((T0 + ROT - LEAD)) >/dev/null
		;;
	destroy)
		drv tick $T0 >/dev/null
		drv tick $((T0 + ROT - LEAD)) >/dev/null
		drv tick $((T0 + ROT)) >/dev/null
		;;
	esac
	: >"$MAS_KEYS_AUDIT_LOG"
	K1=$(kid_of active "$(jwt_line "$T0")")
	K2=$(kid_of pending "$(jwt_line "$T0")")
	[ -n "$K2" ] || K2=$(kid_of active "$(jwt_line "$T0")")
	[ "$1" != destroy ] || K1=$(kid_of retiring "$(jwt_line "$T0")")
}

ROTATED=added1deaff5511baaec877afb139ef6
DELIVERED=1543b8dfccf9508c9c5cf8b8387baaf0
DESTROYED=1d041ed264b05e5db218ca36bef8dd59

for step in create:secret create:state deliver:file deliver:link flush:audited; do
	expect=new
	[ $step = create:secret ] && expect=old
	scenario initial $T0 $step $expect "jwt" "jwt active=$H" $ROTATED
done
for step in create:secret create:state deliver:file flush:audited; do
	expect=new
	[ $step = create:secret ] && expect=old
	scenario create $((T0 + ROT - LEAD)) $step $expect "jwt active=@K1@" \
		"jwt active=@K1@ pending=$H" $DELIVERED
done
for step in promote:state deliver:file deliver:link flush:audited; do
	scenario promote $((T0 + ROT)) $step new "jwt active=@K1@ pending=@K2@" \
		"jwt retiring=@K1@ active=@K2@" $ROTATED
done
for step in destroy:state deliver:file flush:wiped flush:audited; do
	scenario destroy $((T0 + ROT + KEEP)) $step new "jwt retiring=@K1@ active=@K2@" \
		"jwt active=@K2@" $DESTROYED
done

# orphaned temp files of an interrupted write (kill -9 inside fileio_write_atomic, before
# its rename) are wiped on restart
rm -rf "$STATE" "$RUN/keys"
drv tick $T0 >/dev/null
echo "partial" >"$STATE/keys/jwt/state.tmp.99999"
head -c 32 /dev/urandom >"$STATE/keys/jwt/0123456789abcdef.secret.tmp.99999"
echo "{" >"$RUN/keys/alpha/index.json.tmp.99999"
drv check $T0 >/dev/null || fail "temp files not reconciled: $(drv check $T0)"
[ -z "$(find "$BASE" -name '*.tmp.*')" ] || fail "temp files left: $(find "$BASE" -name '*.tmp.*')"
results+=("tempfile leftovers of an interrupted atomic write -> wiped on restart, consistent")

# kill -9 at random moments of a long run of rotations (create, promote, destroy each time)
rm -rf "$STATE" "$RUN/keys"
drv tick $T0 >/dev/null
killed=0
for i in $(seq 1 20); do
	delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", 0.02 + rand() * 0.3 }')
	{ timeout -s KILL "$delay" "$DRIVER" --state "$STATE" --runtime "$RUN" --lead $LEAD \
		--agent alpha:mas-kt-alpha --agent beta:mas-kt-beta \
		--key jwt:hs256:$ROT:$KEEP:alpha,beta \
		--key churn:ed25519:$DAY:0:alpha churn churn $((T0 + i * 1000)) 400 >/dev/null 2>&1; } 2>/dev/null
	[ $? -eq 137 ] && killed=$((killed + 1))
	out=$(drv check $((T0 + i * 1000 + 500))) || fail "random kill $i (${delay}s): inconsistent:
$out"
	echo "$out" | grep -Eq "^churn (active=$H|active=$H retiring=$H|retiring=$H active=$H|active=$H pending=$H|retiring=$H active=$H pending=$H)?\$" ||
		fail "random kill $i: unexpected churn ring: $(echo "$out" | grep '^churn')"
done
[ $killed -ge 10 ] || fail "only $killed of 20 runs were killed mid-way: the random test proves little"
results+=("random kill -9 during 400 back-to-back rotations: $killed of 20 runs killed mid-way -> consistent every time")

printf '%s\n' "${results[@]}"
echo "crash safety ok"
