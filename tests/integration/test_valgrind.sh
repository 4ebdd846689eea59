#!/usr/bin/env bash
# Leaks: masd (the normal build: ASan and valgrind do not mix) under valgrind through start,
# apply, decisions and their events, masctl queries, a key rotation, a reload (SIGHUP) and a
# clean stop. Valgrind must report no error, and no definite or indirect leak.
# Suppressions: tests/valgrind/masd.supp (bpf(2) attributes valgrind cannot see are used).
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
command -v valgrind >/dev/null || mas_skip "no valgrind"
VMASD=${BUILD%/san}/masd
[ -x "$VMASD" ] || mas_skip "no normal build of masd at $VMASD"
journald_start || mas_skip "cannot start a private journald"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
  web: { cidrs: [127.0.20.0/24], ports: ["8000-8100"] }
permissions: { ai_access: [ai] }
roles: { agent: [ai_access] }
agents:
  w: { unit: mas-agent@w.service, role: agent, allow: [web] }
keys:
  jwt: { type: hs256, rotate_every: 30d, keep_previous_for: 7d }
YAML
W=mas-agent@w.service
mas_cgroup "$W"
mas_cgroup other
valgrind --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
	--suppressions="$HERE/tests/valgrind/masd.supp" --log-file="$T/valgrind.log" \
	"$VMASD" --state-dir "$T/state" --runtime-dir "$T/run" --bpffs-dir "$BPFFS" \
	--cgroup-root "$CG" --policy "$T/policy.yaml" >"$T/masd.log" 2>&1 &
MASD_PID=$!
for _ in $(seq 1 300); do
	"$MASCTL" status >/dev/null 2>&1 && break
	sleep 0.1
done
check "masd under valgrind answers" "$MASCTL" status
expect "$W" allowed connect tcp 127.0.20.1 7000
expect "$W" denied connect tcp 127.0.20.2 7001
expect other denied connect tcp 127.0.20.1 7000
probe_in "$W" loop tcp 127.0.20.9 9 200 >/dev/null
sleep 1.5
check "masctl events" "$MASCTL" events
check "masctl agents" "$MASCTL" agents
check "masctl keys list" "$MASCTL" keys list
check "masctl keys rotate" "$MASCTL" keys rotate jwt
check "masctl policy apply" "$MASCTL" policy apply "$T/policy.yaml"
printf 'version: 1\nbogus: [\n' >"$T/bad.yaml"
"$MASCTL" policy apply "$T/bad.yaml" >/dev/null 2>&1
check "masctl policy show" "$MASCTL" policy show
kill -HUP "$MASD_PID"
sleep 1.5
expect "$W" allowed connect tcp 127.0.20.1 7000
kill "$MASD_PID"
wait "$MASD_PID"
rc=$?
MASD_PID=
sed 's/^/# /' "$T/valgrind.log" | grep -E "ERROR SUMMARY|definitely|indirectly|possibly|still reachable"
check "valgrind found no error and no leak (masd exit $rc)" [ $rc -eq 0 ]
check "no bytes definitely lost" grep -qE "definitely lost: 0 bytes|no leaks are possible" "$T/valgrind.log"
[ $rc -eq 0 ] || grep -B2 -A25 -E "definitely lost in|Invalid|uninitialised" "$T/valgrind.log" | head -80

mas_done
