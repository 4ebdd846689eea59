#!/usr/bin/env bash
# masd.service's capability set is enough and each capability in it is needed: the probe of every
# bpf() operation masd performs runs as an unprivileged user with exactly the unit's
# AmbientCapabilities= (must pass), then with each of CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON removed
# (must fail), and CAP_CHOWN is shown to be what hands a key file to an agent's user.
set -u
cd "$(dirname "$0")/../.." || exit 1

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: setpriv (util-linux) is missing"; exit 77; }
if [ -z "${MASD_CAPS_INNER:-}" ]; then
	exec env MASD_CAPS_INNER=1 unshare --mount --propagation private bash "$0" "$@"
fi

BUILD=${MASD_BUILD:-build}
TMP=$(mktemp -d /tmp/masd-test-caps.XXXXXX)
CG2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2") { print $5; exit } }' \
	/proc/self/mountinfo)
CG=$CG2/masd-test-caps.$$
FAILED=0

cleanup() {
	mountpoint -q "$TMP/bpffs" && umount "$TMP/bpffs"
	[ -d "$CG" ] && rmdir "$CG"
	rm -rf "$TMP"
}
trap cleanup EXIT

probe=$BUILD/tests/integration/cap_probe
if [ ! -x "$probe" ]; then
	probe=$TMP/cap_probe
	gcc -std=gnu11 -O2 -o "$probe" tests/integration/cap_probe.c -lbpf ||
		{ echo "SKIP: cannot build cap_probe"; exit 77; }
fi
[ -n "$CG2" ] || { echo "SKIP: no cgroup2 mount"; exit 77; }
mkdir "$CG" || exit 1
mkdir -p "$TMP/bpffs"
mount -t bpf -o mode=0711 bpffs "$TMP/bpffs" || { echo "SKIP: cannot mount bpffs"; exit 77; }
mkdir "$TMP/bpffs/masd"
chown 65534:65534 "$TMP/bpffs/masd"
chmod 0711 "$TMP"

# The unit's capabilities, as setpriv spells them: CAP_BPF CAP_NET_ADMIN -> +bpf,+net_admin
unit_caps=$(sed -n 's/^AmbientCapabilities=//p' systemd/masd.service)
bounding=$(sed -n 's/^CapabilityBoundingSet=//p' systemd/masd.service)
[ "$unit_caps" = "$bounding" ] && echo "ok   AmbientCapabilities= = CapabilityBoundingSet= = $unit_caps" ||
	{ echo "FAIL ambient ($unit_caps) and bounding ($bounding) sets differ"; FAILED=$((FAILED + 1)); }

as_user() { # CAPS(setpriv list) CMD...
	local caps=$1
	shift
	ASAN_OPTIONS=detect_leaks=0 setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all,$caps \
		--ambient-caps=-all,$caps --bounding-set=-all,$caps -- "$@"
}

setpriv_caps() { # "CAP_A CAP_B" minus CAP_X -> +a,+b
	local c out=""
	for c in $1; do
		[ "$c" = "$2" ] && continue
		c=${c#CAP_}
		out="$out,+${c,,}"
	done
	echo "${out#,}"
}

out=$(as_user "$(setpriv_caps "$unit_caps" none)" "$probe" "$CG" "$TMP/bpffs/masd" "$TMP" 2>&1)
if [ $? -eq 0 ]; then
	echo "ok   the unit's capabilities do every bpf() step masd needs:"
else
	echo "FAIL the unit's capabilities are not enough:"
	FAILED=$((FAILED + 1))
fi
echo "$out" | sed 's/^/       /'

# Each capability, and the step that must fail without it.
declare -A STEP=([CAP_BPF]="map lpm_trie" [CAP_NET_ADMIN]="prog cgroup/connect4"
	[CAP_PERFMON]="prog with padded stack key")
for c in CAP_BPF CAP_NET_ADMIN CAP_PERFMON; do
	out=$(as_user "$(setpriv_caps "$unit_caps" $c)" "$probe" "$CG" "$TMP/bpffs/masd" 2>&1)
	line=$(echo "$out" | grep "^${STEP[$c]} ")
	if [ -n "$line" ] && ! echo "$line" | grep -q ' ok$'; then
		echo "ok   without $c: $(echo "$out" | grep -v ' ok$' | grep -v '^verifier' |
			grep -v 'not required' | sed 's/  */ /g' | paste -sd ';' | cut -c1-160)"
	else
		echo "FAIL without $c, \"${STEP[$c]}\" does not fail: ${line:-no such step}"
		FAILED=$((FAILED + 1))
	fi
done

# Key delivery: masd writes a key file and gives it to the agent's user.
install -d -o 65534 -g 65534 -m 0700 "$TMP/keys"
as_user "$(setpriv_caps "$unit_caps" none)" sh -c "echo k >$TMP/keys/k && chown 65533:65533 $TMP/keys/k" &&
	echo "ok   with CAP_CHOWN: a key file handed to another user" ||
	{ echo "FAIL chown of a key file with the unit's capabilities"; FAILED=$((FAILED + 1)); }
as_user "$(setpriv_caps "$unit_caps" CAP_CHOWN)" sh -c "echo k >$TMP/keys/k2 && chown 65533:65533 $TMP/keys/k2" 2>/dev/null &&
	{ echo "FAIL chown without CAP_CHOWN succeeded"; FAILED=$((FAILED + 1)); } ||
	echo "ok   without CAP_CHOWN: the key file cannot be handed over"

# The real masd, when built: it enforces with exactly the unit's capabilities, and its programs
# are refused without CAP_PERFMON (measured: "attempt to corrupt spilled pointer on stack").
if [ -x "$BUILD/masd" ]; then
	mkdir "$TMP/bpffs/real" "$TMP/state" "$TMP/run"
	chown 65534 "$TMP/bpffs/real" "$TMP/state" "$TMP/run"
	# The test policy without what needs the container's users and groups.
	sed -e 's/, "group:mas-admin"//' -e '/group:mas-sre/d' -e '/^keys:/,$d' \
		tests/fixtures/systemd/policy-v1.yaml >"$TMP/policy.yaml"
	chmod 0644 "$TMP/policy.yaml"
	run_masd() { # CAPS
		as_user "$1" timeout 5 "$BUILD/masd" --policy "$TMP/policy.yaml" --state-dir "$TMP/state" \
			--runtime-dir "$TMP/run" --bpffs-dir "$TMP/bpffs/real" --cgroup-root "$CG" 2>&1 |
			grep -m1 -e 'enforcing policy' -e 'cannot' -e 'failed'
	}
	out=$(run_masd "$(setpriv_caps "$unit_caps" none)")
	case $out in
	*"enforcing policy"*) echo "ok   masd as an unprivileged user with the unit's capabilities: $out" ;;
	*) echo "FAIL masd with the unit's capabilities: $out"; FAILED=$((FAILED + 1)) ;;
	esac
	# A restart adopts the pinned enforcement with the same capabilities (no CAP_SYS_ADMIN: pins
	# are reopened by path, never by id).
	out=$(run_masd "$(setpriv_caps "$unit_caps" none)")
	case $out in
	*"enforcing policy"*adopted*) echo "ok   masd restarted with the unit's capabilities: $out" ;;
	*) echo "FAIL masd restarted with the unit's capabilities: $out"; FAILED=$((FAILED + 1)) ;;
	esac
	rm -rf "${TMP:?}/bpffs/real/"* "${TMP:?}/state/"* "${TMP:?}/run/"*
	out=$(run_masd "$(setpriv_caps "$unit_caps" CAP_PERFMON)")
	case $out in
	*"enforcing policy"*) echo "note: masd's programs load without CAP_PERFMON now: $out" ;;
	*) echo "ok   masd without CAP_PERFMON: $out" ;;
	esac
	rm -rf "${TMP:?}/bpffs/real/"*
fi

echo "$FAILED failed"
[ $FAILED -eq 0 ]
