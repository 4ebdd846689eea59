#!/usr/bin/env bash
# masd under a real systemd 252 (PID 1 in a container): our units, the agents' slice and template,
# and — when $MASD_BUILD holds masd and masctl — the daemon's life as a service: enforcement live
# when "systemctl start" returns, agents enrolled, verdicts, reload, invalid reload, the journal,
# watchdog and kill -9 restarts that never leave the agents unconfined.
# Needs root, systemd-nspawn and debootstrap (installed when missing) and, the first time, Debian's
# archive (the container's root is cached under /var/tmp). Exits 77 when the machine cannot.
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
# Everything below runs in a mount namespace of its own, so the tmpfs on /run/systemd/nspawn and the
# test's bpffs vanish with it whatever happens.
if [ -z "${MASD_CT_INNER:-}" ]; then
	exec env MASD_CT_INNER=1 unshare --mount --propagation private bash "$0" "$@"
fi

. tests/lib/container.sh

T0=$SECONDS
FAILED=0
BUILD=${MASD_BUILD:-build}
TMP=$(mktemp -d /tmp/masd-test-systemd.XXXXXX)

cleanup() {
	echo "container test: $((SECONDS - T0)) s, $FAILED failed"
	ct_stop
	mountpoint -q "$TMP/bpffs" && umount "$TMP/bpffs"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

ok() {
	echo "ok   $*"
}

fail() {
	echo "FAIL $*"
	FAILED=$((FAILED + 1))
}

# expect NAME WANTED GOT
expect() {
	if [ "$2" = "$3" ]; then ok "$1: $3"; else fail "$1: wanted '$2', got '$3'"; fi
}

# ct_exec_cg CGROUP CMD...: CMD inside the container, in CGROUP (relative to the container's
# cgroup root), so that the kernel sees it as a member of that unit.
ct_exec_cg() {
	local cg=$1
	shift
	(
		echo "$BASHPID" >"$CT_CGROUP/payload/$cg/cgroup.procs" || exit 125
		exec nsenter -t "$CT_PID" -m -u -i -n -p -C -r -w -- "$@"
	)
}

# verdict CGROUP PORT: allow, deny (EPERM from a cgroup program) or what else happened.
verdict() {
	local out
	if out=$(ct_exec_cg "$1" timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$2" 2>&1); then
		echo allow
	else
		case $out in
		*"not permitted"*) echo deny ;;
		*) echo "error(${out##*: })" ;;
		esac
	fi
}

agent_cg() {
	echo "mas.slice/mas-agents.slice/mas-agent@$1.service"
}

# wait_verdict NAME CGROUP PORT WANTED [SECONDS]: polls, for changes that take effect asynchronously.
wait_verdict() {
	local got
	for _ in $(seq 1 $((${5:-10} * 5))); do
		got=$(verdict "$2" "$3")
		[ "$got" = "$4" ] && break
		sleep 0.2
	done
	expect "$1" "$4" "$got"
}

unit_prop() { # UNIT PROPERTY
	ct_exec systemctl show -P "$2" "$1"
}

# wait_active UNIT OLD_MAINPID SECONDS: the unit is active again with a new main process.
wait_restarted() {
	local pid state
	for _ in $(seq 1 $(($3 * 10))); do
		state=$(ct_exec systemctl is-active "$1")
		pid=$(unit_prop "$1" MainPID)
		[ "$state" = active ] && [ "$pid" != 0 ] && [ "$pid" != "$2" ] && return 0
		sleep 0.1
	done
	echo "$1: $state, MainPID $pid (was $2)"
	ct_exec systemctl status --no-pager "$1" | tail -n 12
	return 1
}

msgid() { # NAME from daemon/msgid.h
	sed -n "s/^#define MAS_MSGID_$1 \"\([0-9a-f]*\)\"/\1/p" daemon/msgid.h
}

# journal_has WHAT MESSAGE_ID: polls journalctl -u masd for a record, as journald writes lazily.
journal_has() {
	local n
	for _ in $(seq 1 25); do
		ct_exec journalctl --sync >/dev/null 2>&1
		n=$(ct_exec journalctl -q -u masd.service -o cat "MESSAGE_ID=$2" 2>/dev/null | wc -l)
		[ "$n" -gt 0 ] && break
		sleep 0.2
	done
	if [ "$n" -gt 0 ]; then ok "journalctl -u masd: $1 ($n)"; else fail "journalctl -u masd: no $1 record"; fi
}

# --- the container ---------------------------------------------------------------------------

if ! ct_root_ensure; then
	echo "SKIP: cannot build the container root (debootstrap, network?)"
	exit 77
fi
if ! command -v systemd-nspawn >/dev/null; then
	echo "SKIP: systemd-nspawn is missing"
	exit 77
fi

# The daemon and the client: the fresh build when there is one, stubs otherwise.
HAVE_MASD=0
if [ -x "$BUILD/masd" ] && [ -x "$BUILD/masctl" ]; then
	HAVE_MASD=1
	MASD_BIN=$(realpath "$BUILD/masd")
	MASCTL_BIN=$(realpath "$BUILD/masctl")
else
	printf '#!/bin/sh\necho "masd is not built" >&2\nexit 1\n' >"$TMP/stub"
	chmod 0755 "$TMP/stub"
	MASD_BIN=$TMP/stub
	MASCTL_BIN=$TMP/stub
fi

# A bpffs of the test's own, standing in for the one systemd mounts at /sys/fs/bpf on a host: the
# container's /sys is a read-only tmpfs without it. It lives in this mount namespace only.
mkdir -p "$TMP/bpffs"
mount -t bpf -o mode=0700 bpffs "$TMP/bpffs" || { echo "SKIP: cannot mount bpffs"; exit 77; }

binds=(
	--bind-ro="$REPO:/src/masd"
	--bind-ro="$MASD_BIN:/usr/sbin/masd"
	--bind-ro="$MASCTL_BIN:/usr/bin/masctl"
	--bind="$TMP/bpffs:/sys/fs/bpf"
	--bind-ro="$REPO/systemd/masd.sysusers:/usr/lib/sysusers.d/masd.conf"
	--bind-ro="$REPO/systemd/masd.tmpfiles:/usr/lib/tmpfiles.d/masd.conf"
	--bind-ro="$REPO/tests/fixtures/systemd/agents.sysusers:/etc/sysusers.d/mas-agents-test.conf"
)
for u in masd.service masd-bpffs.service mas-agents.slice mas-agent@.service; do
	binds+=(--bind-ro="$REPO/systemd/$u:/usr/lib/systemd/system/$u")
done

tb=$SECONDS
ct_boot "${binds[@]}" || { fail "container boots"; exit 1; }
state=$(ct_exec timeout 30 systemctl is-system-running --wait)
case $state in
running | degraded) ok "systemd is $state after $((SECONDS - tb)) s" ;;
*) fail "systemd is '$state'" ;;
esac
[ "$state" = degraded ] && ct_exec systemctl --failed --no-legend

# --- (a) units, users, slice, template ---------------------------------------------------------

out=$(ct_exec systemd-analyze verify --man=no /usr/lib/systemd/system/masd.service /usr/lib/systemd/system/masd-bpffs.service \
	/usr/lib/systemd/system/mas-agents.slice /usr/lib/systemd/system/mas-agent@alpha.service 2>&1)
if [ $? -eq 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify: our units are clean"; else fail "systemd-analyze verify: $out"; fi

for g in masd mas-admin mas-sre mas-alpha; do
	if ct_exec getent group "$g" >/dev/null; then ok "sysusers: group $g"; else fail "sysusers: no group $g"; fi
done
expect "sysusers: masd's home and shell" "/var/lib/masd:/usr/sbin/nologin" \
	"$(ct_exec getent passwd masd | cut -d: -f6,7)"
expect "tmpfiles: /etc/masd" "750 root masd" "$(ct_exec stat -c '%a %U %G' /etc/masd)"

# Listeners on loopback: 5001 plays an ordinary service, 5002 a protected database.
for port in 5001 5002; do
	ct_exec systemd-run -q --unit="mas-test-listen-$port" -p Type=exec \
		nc -lk 127.0.0.1 "$port" || fail "listener on $port"
done
ct_sh 'mkdir -p /etc/masd/agents
	for a in alpha beta; do echo "MAS_AGENT_EXEC=sleep infinity" >/etc/masd/agents/$a.env; done'

# Agents want masd (Wants=): keep it from starting under them until the test starts it.
ct_exec systemctl mask -q --runtime masd.service
for a in alpha beta; do
	ct_exec systemctl start "mas-agent@$a.service" || fail "start mas-agent@$a"
done
expect "mas-agent@alpha is active" active "$(ct_exec systemctl is-active mas-agent@alpha.service)"
expect "mas-agent@alpha's cgroup (a dash in a slice name nests it)" "/mas.slice/mas-agents.slice/mas-agent@alpha.service" \
	"$(unit_prop mas-agent@alpha.service ControlGroup)"
pid=$(unit_prop mas-agent@alpha.service MainPID)
expect "mas-agent@alpha runs as its own user" mas-alpha "$(ct_exec ps -o user= -p "$pid")"
expect "mas-agent@alpha runs the command of its env file" "sleep infinity" \
	"$(ct_exec ps -o args= -p "$pid")"
expect "mas-agent@alpha has no capabilities" 0000000000000000 \
	"$(ct_exec awk '/^CapEff/ { print $2 }' /proc/"$pid"/status)"
expect "mas-agent@alpha's keys folder" /run/masd/keys/alpha \
	"$(ct_exec cat /proc/"$pid"/environ | tr '\0' '\n' | sed -n 's/^MAS_KEYS_DIR=//p')"
expect "unconfined without masd: alpha -> 5002" allow "$(verdict "$(agent_cg alpha)" 5002)"

# The unit's sandbox allows what masd does with bpf(): the capability probe runs as masd.service
# (its user, ambient capabilities, system call filter, read-only file system, bpffs folder).
probe=
if [ -x "$BUILD/tests/integration/cap_probe" ]; then
	probe=$(realpath "$BUILD/tests/integration/cap_probe")
elif gcc -std=gnu11 -O2 -o "$TMP/cap_probe" tests/integration/cap_probe.c -lbpf 2>/dev/null; then
	probe=$TMP/cap_probe
fi
if [ -n "$probe" ]; then
	ct_exec mkdir -p /run/masd-test
	cat "$probe" | ct_exec sh -c 'cat >/run/masd-test/cap_probe && chmod 0755 /run/masd-test/cap_probe'
	ct_sh "systemctl unmask -q --runtime masd.service
		mkdir -p /run/systemd/system/masd.service.d
		printf '%s\n' '[Service]' Type=oneshot Restart=no WatchdogSec=0 \
			Environment=ASAN_OPTIONS=detect_leaks=0 ExecStart= \
			'ExecStart=/run/masd-test/cap_probe /sys/fs/cgroup/$(agent_cg alpha) /var/lib/masd/bpffs' \
			>/run/systemd/system/masd.service.d/probe.conf
		systemctl daemon-reload"
	ct_exec systemctl start masd.service
	rc=$?
	expect "capability probe as masd.service (exit code)" 0 $rc
	[ $rc -eq 0 ] || ct_exec journalctl -q -u masd.service -n 30 --no-pager
	ct_exec journalctl --sync >/dev/null 2>&1
	out=$(ct_exec journalctl -q -u masd.service -o cat | grep -E '^(map|prog|link|pin|get|btf|ringbuf|open)' | grep -v '(not required)')
	n_ok=$(echo "$out" | grep -c ' ok$')
	n_all=$(echo "$out" | grep -c .)
	[ "$n_all" -gt 0 ] && [ "$n_ok" = "$n_all" ] && ok "capability probe in the unit: $n_ok/$n_all steps" ||
		fail "capability probe in the unit: $out"
	expect "masd-bpffs.service hands /sys/fs/bpf/masd to masd" "700 masd" \
		"$(ct_exec stat -c '%a %U' /sys/fs/bpf/masd)"
	ct_sh 'rm -rf /run/systemd/system/masd.service.d /run/masd-test
		systemctl daemon-reload; systemctl reset-failed masd.service
		systemctl mask -q --runtime masd.service'
else
	echo "note: no cap_probe and no gcc/libbpf to build it; the unit's sandbox is not probed"
fi

if [ $HAVE_MASD = 0 ]; then
	echo "masd section skipped: $BUILD/masd and $BUILD/masctl are not built yet"
	[ $FAILED -eq 0 ]
	exit
fi

# --- (b) masd as a service ----------------------------------------------------------------------

ct_sh 'install -m 0640 -o root -g masd /src/masd/tests/fixtures/systemd/policy-v1.yaml /etc/masd/policy.yaml'
out=$(ct_exec masctl policy validate /etc/masd/policy.yaml 2>&1)
rc=$?
expect "masctl policy validate policy-v1 (exit code)" 0 $rc
[ $rc -eq 0 ] || echo "$out"

# A short watchdog and abort timeout, so that the watchdog test takes seconds. ASan builds: no leak
# checker (it needs ptrace, which the unit's system call filter forbids).
ct_sh 'mkdir -p /etc/systemd/system/masd.service.d
	printf "[Service]\nWatchdogSec=3s\nTimeoutAbortSec=3s\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n" \
		>/etc/systemd/system/masd.service.d/test.conf
	systemctl daemon-reload'

ct_exec systemctl unmask -q --runtime masd.service
ct_exec systemctl daemon-reload
ct_exec systemctl is-active -q mas-agent@alpha.service mas-agent@beta.service || fail "agents run"
expect "before masd: alpha -> 5002" allow "$(verdict "$(agent_cg alpha)" 5002)"

ct_exec systemctl start masd.service
rc=$?
# No sleep: Type=notify means "start" returns once masd said READY=1, i.e. enforcement is live.
expect "systemctl start masd (exit code)" 0 $rc
if [ $rc -ne 0 ]; then
	ct_exec systemctl status --no-pager masd.service
	ct_exec journalctl -q -u masd.service -n 30 --no-pager
	echo "masd did not start: nothing more to test"
	exit 1
fi
expect "alpha -> 5002 (protected, not granted) right after start" deny \
	"$(verdict "$(agent_cg alpha)" 5002)"
expect "masd is active" active "$(ct_exec systemctl is-active masd.service)"
expect "alpha -> 5001 (granted)" allow "$(verdict "$(agent_cg alpha)" 5001)"
expect "beta -> 5002 (granted by allow:)" allow "$(verdict "$(agent_cg beta)" 5002)"
expect "alpha -> 5003 (no destination)" deny "$(verdict "$(agent_cg alpha)" 5003)"
expect "no agent -> 5002 (protected)" deny "$(verdict system.slice/mas-test-listen-5001.service 5002)"
expect "no agent -> 5001 (not confined)" allow "$(verdict system.slice/mas-test-listen-5001.service 5001)"

pid=$(unit_prop masd.service MainPID)
expect "masd runs as user masd" masd "$(ct_exec ps -o user= -p "$pid")"
expect "masd's effective capabilities (bpf, net_admin, perfmon, chown)" 000000c000001001 \
	"$(ct_exec awk '/^CapEff/ { print $2 }' /proc/"$pid"/status)"
status=$(unit_prop masd.service StatusText)
[ -n "$status" ] && ok "masd STATUS=: $status" || fail "masd sent no STATUS="

agents=$(ct_exec masctl agents 2>&1)
for a in alpha beta; do
	if echo "$agents" | grep -w "$a" | grep -qw enrolled; then
		ok "masctl agents: $a enrolled"
	else
		fail "masctl agents: $a not enrolled: $agents"
	fi
done
gen1=$(ct_exec masctl --json status 2>/dev/null | tr -d ' \n' | grep -o '"generation":[0-9]*' | head -n 1)
[ -n "$gen1" ] && ok "masctl --json status: $gen1" || fail "masctl --json status: no generation"
ct_exec masctl policy show >/dev/null 2>&1 && ok "masctl policy show" || fail "masctl policy show"

# Keys: delivered by a masd without root to the agent's user alone, and kept across restarts.
key=/run/masd/keys/alpha/jwt.current
expect "key delivered to alpha: mode and owner" "400 mas-alpha" "$(ct_exec stat -L -c '%a %U' $key 2>&1)"
n=$(ct_exec setpriv --reuid=mas-alpha --regid=mas-alpha --init-groups cat $key 2>/dev/null | wc -c)
expect "mas-alpha reads its key (bytes)" 44 "$n"
ct_exec setpriv --reuid=mas-beta --regid=mas-beta --init-groups cat $key >/dev/null 2>&1 &&
	fail "mas-beta reads alpha's key" || ok "mas-beta cannot read alpha's key"
ct_exec masctl keys list 2>&1 | grep -qw jwt && ok "masctl keys list: jwt" || fail "masctl keys list: no jwt"
KEY_BEFORE=$(ct_exec readlink $key)

# The socket is open to every local user (--socket-mode 0666); masd decides by credentials.
ct_exec useradd -M -G mas-sre sre1
out=$(ct_exec setpriv --reuid=sre1 --regid=sre1 --init-groups masctl status 2>&1)
expect "a mas-sre member reads masctl status (exit code)" 0 $?
out=$(ct_exec setpriv --reuid=sre1 --regid=sre1 --init-groups masctl teardown 2>&1)
expect "a mas-sre member may not teardown (exit code)" 1 $?
out=$(ct_exec setpriv --reuid=nobody --regid=nogroup --clear-groups masctl policy show 2>&1)
rc=$?
case $out in
*"cannot reach"*) fail "an outsider cannot reach the socket: $out" ;;
*) expect "an outsider is refused by masd, not by the socket's mode (exit code)" 1 $rc ;;
esac

# Reload with a changed policy: the grants are swapped.
ct_sh 'install -m 0640 -o root -g masd /src/masd/tests/fixtures/systemd/policy-v2.yaml /etc/masd/policy.yaml'
ct_exec systemctl reload masd.service
expect "systemctl reload masd, policy v2 (exit code)" 0 $?
wait_verdict "after reload: alpha -> 5002" "$(agent_cg alpha)" 5002 allow
wait_verdict "after reload: beta -> 5002" "$(agent_cg beta)" 5002 deny
expect "after reload: alpha -> 5001" allow "$(verdict "$(agent_cg alpha)" 5001)"

# An invalid policy: reload fails, and a plain SIGHUP changes nothing either.
ct_sh 'install -m 0640 -o root -g masd /src/masd/tests/fixtures/systemd/policy-invalid.yaml /etc/masd/policy.yaml'
ct_exec systemctl reload masd.service 2>/dev/null
rc=$?
[ $rc -ne 0 ] && ok "systemctl reload masd, invalid policy, fails (exit $rc)" ||
	fail "systemctl reload masd with an invalid policy succeeded"
ct_exec systemctl kill -s HUP --kill-who=main masd.service
sleep 1
expect "after invalid SIGHUP: masd is active" active "$(ct_exec systemctl is-active masd.service)"
expect "after invalid reload: alpha -> 5002" allow "$(verdict "$(agent_cg alpha)" 5002)"
expect "after invalid reload: beta -> 5002" deny "$(verdict "$(agent_cg beta)" 5002)"
ct_sh 'install -m 0640 -o root -g masd /src/masd/tests/fixtures/systemd/policy-v2.yaml /etc/masd/policy.yaml'

# masctl sends the policy's text: a file masd's sandbox cannot see (ProtectHome=) still applies.
ct_sh 'mkdir -p /root && cp /src/masd/tests/fixtures/systemd/policy-v2.yaml /root/policy.yaml'
out=$(ct_exec masctl policy apply /root/policy.yaml 2>&1)
expect "masctl policy apply /root/policy.yaml (exit code)" 0 $?
expect "after apply: beta -> 5002" deny "$(verdict "$(agent_cg beta)" 5002)"

journal_has "daemon started" "$(msgid DAEMON_STARTED)"
journal_has "policy applied" "$(msgid POLICY_APPLIED)"
journal_has "policy refused" "$(msgid POLICY_REFUSED)"
journal_has "agent enrolled" "$(msgid AGENT_ENROLLED)"
journal_has "deny decision" "$(msgid DECISION_DENY)"

# Watchdog: masd pings it (no restart so far, with WatchdogSec=3s), a frozen masd is aborted and
# restarted, and the kernel keeps enforcing meanwhile.
expect "masd pinged the watchdog: restarts so far" 0 "$(unit_prop masd.service NRestarts)"
pid=$(unit_prop masd.service MainPID)
[ "$pid" -gt 1 ] 2>/dev/null || { fail "masd has no main process"; exit 1; }
ct_exec kill -STOP "$pid"
expect "masd frozen: beta -> 5002" deny "$(verdict "$(agent_cg beta)" 5002)"
if wait_restarted masd.service "$pid" 20; then ok "watchdog restarted a frozen masd"; else fail "watchdog restart"; fi
expect "after watchdog restart: beta -> 5002" deny "$(verdict "$(agent_cg beta)" 5002)"
expect "after watchdog restart: alpha -> 5002" allow "$(verdict "$(agent_cg alpha)" 5002)"

# kill -9: Restart=on-failure brings masd back; enforcement never lapses.
pid=$(unit_prop masd.service MainPID)
[ "$pid" -gt 1 ] 2>/dev/null || { fail "masd has no main process"; exit 1; }
ct_exec kill -KILL "$pid"
expect "masd killed: beta -> 5002" deny "$(verdict "$(agent_cg beta)" 5002)"
if wait_restarted masd.service "$pid" 20; then ok "masd restarted after kill -9"; else fail "restart after kill -9"; fi
expect "after kill -9 restart: beta -> 5002" deny "$(verdict "$(agent_cg beta)" 5002)"
expect "after kill -9 restart: alpha -> 5001" allow "$(verdict "$(agent_cg alpha)" 5001)"
expect "after kill -9 restart: alpha's key is the same version" "$KEY_BEFORE" "$(ct_exec readlink $key)"
agents=$(ct_exec masctl agents 2>&1)
echo "$agents" | grep -w beta | grep -qw enrolled && ok "after restart: beta enrolled" ||
	fail "after restart: beta not enrolled: $agents"

# Stopping masd is no teardown.
ct_exec systemctl stop masd.service
expect "masd stopped: beta -> 5002" deny "$(verdict "$(agent_cg beta)" 5002)"

ct_exec journalctl --sync >/dev/null 2>&1
echo "--- journalctl -u masd (last 15)"
ct_exec journalctl -q -u masd.service -n 15 --no-pager
[ $FAILED -eq 0 ]
