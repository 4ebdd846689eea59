# Integration-test harness: every test runs in its own mount namespace (so the bpffs masd
# mounts and the private journald vanish with it), under a scratch parent cgroup it creates
# and removes, against the real BPF programs. Source it first thing in a test script.
#
#   mas_setup                 namespace, scratch cgroup, temp dir; skips (77) without BPF
#   mas_cgroup NAME           create $CG/NAME (NAME may contain /)
#   mas_start [ARGS]          start masd on $CG; waits for its control socket
#   mas_stop / mas_kill9      end masd by PID (TERM / KILL)
#   probe_in NAME ARGS        run the probe in cgroup $CG/NAME; prints its verdict line
#   expect NAME want ARGS     probe_in, and check the verdict is want (allowed|denied)
#   check DESC CMD...         a named assertion; mas_done prints the summary and exits

set -u
if [ -z "${MAS_IN_NS:-}" ]; then
	exec env MAS_IN_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$HERE/tests/lib/journald.sh"
BUILD=${MASD_BUILD:-$HERE/build}
case $BUILD in /*) ;; *) BUILD=$HERE/$BUILD ;; esac
MASD=$BUILD/masd
MASCTL=$BUILD/masctl
PROBE=$BUILD/tests/integration/probe
MAS_PASS=0
MAS_FAIL=0
MASD_PID=
MAS_PIDS=()

mas_skip() {
	echo "SKIP: $*"
	exit 77
}

mas_setup() {
	[ "$(id -u)" = 0 ] || mas_skip "needs root"
	[ -x "$MASD" ] || mas_skip "no masd at $MASD (build first)"
	bpftool feature probe kernel 2>/dev/null |
		grep -q 'program_type cgroup_sock_addr is available' ||
		mas_skip "this kernel cannot load cgroup sock_addr BPF programs"
	MOUNT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	[ -n "$MOUNT" ] || mas_skip "no cgroup2 mount"
	CG=$MOUNT/masd-test-$$-$RANDOM
	mkdir "$CG" || mas_skip "cannot create a cgroup under $MOUNT"
	T=$(mktemp -d /tmp/masd-test.XXXXXX)
	BPFFS=/sys/fs/bpf/masd-test-$$
	export MASD_SOCKET=$T/run/control.sock
	trap mas_cleanup EXIT
}

mas_cgroup() {
	mkdir -p "$CG/$1"
}

mas_start() {
	: >"$T/masd.log"
	"$MASD" --state-dir "$T/state" --runtime-dir "$T/run" --bpffs-dir "$BPFFS" \
		--cgroup-root "$CG" "$@" >>"$T/masd.log" 2>&1 &
	MASD_PID=$!
	for _ in $(seq 1 100); do
		if [ -S "$MASD_SOCKET" ] && "$MASCTL" status >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$MASD_PID" 2>/dev/null; then
			echo "masd exited at start:" >&2
			cat "$T/masd.log" >&2
			MASD_PID=
			return 1
		fi
		sleep 0.1
	done
	echo "masd did not answer on $MASD_SOCKET" >&2
	cat "$T/masd.log" >&2
	return 1
}

mas_stop() {
	[ -n "$MASD_PID" ] || return 0
	kill "$MASD_PID" 2>/dev/null
	wait "$MASD_PID" 2>/dev/null
	MASD_PID=
}

mas_kill9() {
	[ -n "$MASD_PID" ] || return 0
	kill -9 "$MASD_PID" 2>/dev/null
	wait "$MASD_PID" 2>/dev/null
	MASD_PID=
}

# Whether a process is running (a zombie is not).
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

dead() {
	! alive "$1"
}

# Start a background process and remember its PID for cleanup.
mas_bg() {
	"$@" &
	MAS_PIDS+=($!)
}

probe_in() {
	local name=$1
	shift
	"$PROBE" --cgroup "$CG/$name" "$@"
}

check() {
	local desc=$1
	shift
	if "$@" >/dev/null; then
		MAS_PASS=$((MAS_PASS + 1))
		echo "ok - $desc"
	else
		MAS_FAIL=$((MAS_FAIL + 1))
		echo "not ok - $desc"
	fi
}

expect() {
	local name=$1 want=$2 got
	shift 2
	got=$(probe_in "$name" "$@" 2>&1 | awk '{print $1}')
	if [ "$got" = "$want" ]; then
		MAS_PASS=$((MAS_PASS + 1))
		echo "ok - $name: $* -> $want"
	else
		MAS_FAIL=$((MAS_FAIL + 1))
		echo "not ok - $name: $* -> got '$got', want '$want'"
	fi
}

# The exact count of one agent's decisions with a verdict, from masctl agents --json.
agent_count() { # agent field
	"$MASCTL" --json agents | jq -r --arg a "$1" --arg f "$2" '.[] | select(.agent == $a) | .[$f]'
}

mas_cleanup() {
	local p d
	mas_stop
	for p in "${MAS_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	journald_stop
	if [ -n "${CG:-}" ] && [ -d "$CG" ]; then
		# move stragglers out, then remove the tree deepest first
		for d in $(find "$CG" -depth -type d); do
			while read -r p; do
				[ -n "$p" ] && kill -9 "$p" 2>/dev/null
			done <"$d/cgroup.procs"
		done
		sleep 0.1
		find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	[ -n "${T:-}" ] && rm -rf "$T"
}

mas_done() {
	echo "$MAS_PASS passed, $MAS_FAIL failed"
	if [ "$MAS_FAIL" -ne 0 ] && [ -s "${T:-/nonexistent}/masd.log" ]; then
		echo "# the last 40 lines masd wrote ($T/masd.log):"
		tail -n 40 "$T/masd.log" | sed 's/^/#   /'
		if [ -n "$MASD_PID" ] && dead "$MASD_PID"; then
			wait "$MASD_PID" 2>/dev/null
			local rc=$?
			echo "# masd (pid $MASD_PID) has ended: status $rc$([ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
			MASD_PID=
		fi
	fi
	[ "$MAS_FAIL" -eq 0 ]
	exit $?
}
